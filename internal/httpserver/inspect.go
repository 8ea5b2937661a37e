package httpserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/sdkfix"
	"github.com/example/order-mcp/internal/tools"
)

// inspect is step 6 of the /mcp chain. It reads the JSON-RPC request the
// way the SDK will read it, so that step 7 knows whether this is a tool
// call, and step 8 can refuse a caller missing the tool's scope with a 403
// and an insufficient_scope challenge it can act on (step-up).
//
// A decision made here is only as good as the parse it rests on, so the
// parse reads keys with their exact case, as the SDK does, and anything
// that could parse differently is refused rather than waved through
// (jsonscan.go, which a differential fuzz test holds to the SDK's reading):
//
//   - a JSON-RPC batch: the SDK executes batches when the
//     MCP-Protocol-Version header is absent, and one tools/call hidden in a
//     batch must not ride on another's scope check;
//   - a body that does not decode, or holds anything after its one
//     request;
//   - an object with duplicate keys, or with keys that differ only in
//     case: encoding/json matches "NAME" to name while the SDK does not,
//     so {"name":"cancel_order","NAME":"get_order_status"} must never be
//     judged as get_order_status.
//
// The MCP layer checks scopes again on the request it decoded itself, and
// that check is the authority.
func (s *server) inspect(next http.Handler) http.Handler {
	scopes := tools.Scopes()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			next.ServeHTTP(w, r)
			return
		}
		st := state(r)
		// A caller locked out for malformed requests is refused before its
		// body is read.
		if err := s.Lockout.Check(r.Context(), limits.InvalidInputBucket(st.principal.Subject)); err != nil {
			s.refuseLimit(w, r, "locked_out", err)
			return
		}
		body, err := io.ReadAll(r.Body)
		if err != nil {
			var mbe *http.MaxBytesError
			if errors.As(err, &mbe) {
				s.refuse(w, r, refusal.BodyTooLarge, refusal.BodyTooLarge.Message())
				return
			}
			s.refuse(w, r, refusal.UnreadableBody, refusal.UnreadableBody.Message())
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		method, tool, args, err := readRequest(body)
		if err != nil {
			s.malformed(w, r)
			return
		}
		st.rpcMethod, st.tool = loggableMethod(method), loggableTool(tool, scopes)
		if method == "tools/call" {
			if want, known := scopes[tool]; known {
				st.scopes, st.args = want, args
			}
		}
		next.ServeHTTP(w, r)
	})
}

// loggableMethod and loggableTool keep attacker-chosen names out of the
// access log: only names this server knows are logged as sent.
func loggableMethod(m string) string {
	switch {
	case m == "", m == "initialize", m == "ping", m == "tools/list", m == "tools/call", m == "server/discover":
		return m
	case strings.HasPrefix(m, "notifications/") && len(m) < 64:
		return "notifications/…"
	}
	return "other"
}

func loggableTool(t string, known map[string][]auth.Scope) string {
	if _, ok := known[t]; ok || t == "" {
		return t
	}
	return "unknown_tool"
}

// errMalformed is any body this step refuses to judge.
var errMalformed = errors.New("malformed JSON-RPC request")

// readRequest returns the JSON-RPC method of body and, for tools/call, the
// tool name and raw arguments, as the SDK will decode them (jsonscan.go).
func readRequest(body []byte) (method, tool string, args json.RawMessage, err error) {
	req, err := scanRequest(body)
	if err != nil {
		return "", "", nil, errMalformed
	}
	return req.method, req.tool, req.args, nil
}

// maxDepth bounds nesting; no MCP request needs more.
const maxDepth = 64

// malformed refuses a body this layer will not judge, and counts it
// towards the caller's lockout (the same bucket as invalid tool arguments):
// repeated malformed payloads are throttled like failed logins.
func (s *server) malformed(w http.ResponseWriter, r *http.Request) {
	if err := s.Lockout.Fail(r.Context(), limits.InvalidInputBucket(state(r).principal.Subject)); err != nil {
		var le *limits.Error
		if errors.As(err, &le) {
			s.refuseLimit(w, r, "malformed_payload", err)
			return
		}
	}
	s.refuse(w, r, refusal.MalformedPayload, refusal.MalformedPayload.Message())
}

// checkScope is step 8 of the /mcp chain, after the principal's budgets
// were charged (so refused calls count): a tool call whose caller lacks
// the tool's scopes gets 403 with the insufficient_scope challenge.
func (s *server) checkScope(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		st := state(r)
		if st.scopes != nil {
			if missing := st.principal.MissingScopes(st.scopes); len(missing) > 0 {
				s.insufficientScope(w, r, st.tool, st.scopes, missing, st.args)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// insufficientScope answers 403 with the challenge that lets a client ask
// its authorization server for more scope (RFC 6750 section 3.1). The
// refused call is recorded in the audit trail as a tool call of its own,
// with the caller, the tool and the redacted arguments, exactly as the MCP
// layer records the same refusal over stdio: an attempt to reach a tool
// the caller may not use is worth a record by name.
func (s *server) insufficientScope(w http.ResponseWriter, r *http.Request, tool string, want, missing []auth.Scope, args json.RawMessage) {
	st := state(r)
	st.refusal = refusal.ScopeStepUp.Name()
	call := s.Audit.NewCall(tool, "http", audit.NewCorrelationID())
	call.SetPrincipal(st.principal.Subject, st.principal.CredentialID)
	call.SetArguments(logging.RedactJSON(args))
	call.Decide(false, "missing scope "+strings.Join(auth.ScopeNames(missing), " "))
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	if err := call.Finish(ctx, "denied"); err != nil {
		s.Logger.LogAttrs(ctx, slog.LevelError, "audit record of a scope refusal not committed", slog.String("error", err.Error()))
	}

	scopes := strings.Join(auth.ScopeNames(want), " ")
	params := []string{`realm="order-mcp"`, `error="insufficient_scope"`, `scope="` + scopes + `"`}
	if s.oauth() {
		params = append(params, `resource_metadata="`+s.metadataURL+`"`)
	}
	w.Header().Set("WWW-Authenticate", "Bearer "+strings.Join(params, ", "))
	sdkfix.WriteError(w, refusal.ScopeStepUp.HTTPStatus(), nil, refusal.ScopeStepUp.Error(nil, scopes))
}
