package mcpserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/tools"
)

// Limiter throttles tool calls inside the MCP layer (internal/security's
// Limits implements it).
type Limiter interface {
	// AdmitCall charges one tool call to the principal's rate and
	// concurrency budgets and returns the function that ends the call. It
	// is called only when the transport has not already charged the call
	// (the HTTP layer charges HTTP calls before MCP, to answer 429).
	AdmitCall(ctx context.Context, p *security.Principal) (release func(), err error)
	// AdmitDestructive charges a call of a destructive tool to the
	// principal's small budget for such calls.
	AdmitDestructive(ctx context.Context, p *security.Principal) error
	// Invalid records a call whose arguments were refused; repeated
	// malformed calls lock the caller out for a while.
	Invalid(ctx context.Context, p *security.Principal) error
	// Missed records a lookup of an order that was not found, and
	// refuses the principal once it has missed too many in a short time:
	// guessing order ids is enumeration.
	Missed(ctx context.Context, p *security.Principal) error
	// Probing reports whether the principal is currently throttled for
	// enumeration, so lookups are refused before they run.
	Probing(ctx context.Context, p *security.Principal) error
}

// gate is the MCP layer's security middleware. It sees every request after
// the SDK has decoded it, on every transport, and makes every decision that
// depends on which tool is called. For tools/call, in order:
//
//  1. panic recovery (the SDK does not recover: a panic in a handler would
//     kill the process and, over stdio, the user's session);
//  2. who is calling: the principal the HTTP layer authenticated for this
//     very request, or, over stdio, the configured key authenticated again
//     now (so a revoked key stops working without a restart);
//  3. the caller's rate and concurrency budgets (so refused calls count);
//  4. the tool, the scope it declares, a data binding (customer or
//     staff), the tool's own budget and the enumeration throttle;
//  5. argument validation with fixed, non-echoing messages;
//  6. the handler;
//  7. one place that maps every error to what the model may see;
//  8. exactly one audit record, committed before the result is released.
type gate struct {
	auth   Authenticator
	audit  *audit.Writer
	limits Limiter
	logger *slog.Logger
	tools  map[string]tools.Tool
}

// JSON-RPC error codes for refusals. JSON-RPC reserves -32768..-32000 for
// the protocol, and MCP 2026-07-28 reserves -32020..-32099 for codes the
// specification defines (and says implementations MUST NOT emit others
// from it), so the application's own codes lie outside both, in a block
// whose last three digits recall the HTTP status of the same refusal. They
// are documented in the README.
const (
	CodeUnauthenticated = -31401
	CodeForbidden       = -31403
	CodeRateLimited     = -31429
	// CodeUnavailable: a dependency (the database, the credential or limit
	// store) could not answer in time; retry later.
	CodeUnavailable = -31503
)

func (g *gate) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch {
		case method == "tools/call":
			return g.toolCall(ctx, next, req.(*mcp.CallToolRequest))
		case method == "tools/list":
			return g.toolList(ctx, next, req)
		case method == "initialize", method == "ping", method == "server/discover",
			strings.HasPrefix(method, "notifications/"):
			return next(ctx, method, req)
		default:
			// Only what this server offers is reachable: no resources,
			// prompts, completions or logging.
			return nil, &jsonrpc.Error{Code: jsonrpc.CodeMethodNotFound, Message: msgMethodNotHere}
		}
	}
}

// principal returns who is calling and over which transport.
func (g *gate) principal(ctx context.Context, req mcp.Request) (*security.Principal, string, error) {
	if extra := req.GetExtra(); extra != nil && extra.TokenInfo != nil {
		p, ok := extra.TokenInfo.Extra[principalExtraKey].(*security.Principal)
		if !ok {
			return nil, "http", errUnauthenticated
		}
		return p, "http", nil
	}
	c, ok := ctx.Value(credentialKey{}).(credential)
	if !ok {
		return nil, "unknown", errUnauthenticated
	}
	p, err := g.auth.Authenticate(ctx, c.secret)
	if err != nil {
		var ae *security.AuthError
		if errors.As(err, &ae) {
			g.logger.LogAttrs(ctx, slog.LevelWarn, "credential refused", slog.String("transport", c.transport),
				slog.String("reason", ae.Reason), slog.String("key_id", ae.KeyID))
			return nil, c.transport, errUnauthenticated
		}
		return nil, c.transport, err
	}
	return p, c.transport, nil
}

var errUnauthenticated = &jsonrpc.Error{Code: CodeUnauthenticated,
	Message: "Unauthenticated: the credential is missing, unknown, expired or revoked. Check the API key this client is configured with."}

// toolList shows a caller only the tools its scopes allow.
func (g *gate) toolList(ctx context.Context, next mcp.MethodHandler, req mcp.Request) (mcp.Result, error) {
	p, _, err := g.principal(ctx, req)
	if err != nil {
		return nil, publicRPCError(g.logger, ctx, err)
	}
	res, err := next(ctx, "tools/list", req)
	if err != nil {
		return nil, err
	}
	list, ok := res.(*mcp.ListToolsResult)
	if !ok {
		return res, nil
	}
	visible := *list
	visible.Tools = make([]*mcp.Tool, 0, len(list.Tools))
	for _, t := range list.Tools {
		if tool, ok := g.tools[t.Name]; ok && len(p.MissingScopes(tool.Scopes)) == 0 {
			visible.Tools = append(visible.Tools, t)
		}
	}
	return &visible, nil
}

// toolCall runs one tool call through the gate. See gate for the steps.
func (g *gate) toolCall(ctx context.Context, next mcp.MethodHandler, req *mcp.CallToolRequest) (res mcp.Result, err error) {
	if req.Params == nil { // the SDK refuses this already; never dereference on trust
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: msgInvalidParams}
	}
	corr := correlationID()
	tool, known := g.tools[req.Params.Name]
	name := "unknown_tool"
	if known {
		name = tool.Def.Name
	}
	args := logging.RedactJSON(req.Params.Arguments)
	p, transport, authErr := g.principal(ctx, req)
	call := g.audit.NewCall(name, transport, corr)
	call.SetArguments(args)
	ctx = audit.WithCall(ctx, call)
	log := g.logger.With(slog.String("correlation_id", corr), slog.String("tool", name), slog.String("transport", transport))
	outcome := "error"

	// Steps 1, 7 and 8 run last, whatever happened before.
	defer func() {
		if r := recover(); r != nil {
			log.LogAttrs(ctx, slog.LevelError, "panic in tool call", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			res, err, outcome = internalError(corr), nil, "panic"
		}
		g.finish(ctx, log, call, outcome, args, &res, &err)
	}()

	// Step 2.
	if authErr != nil {
		call.Decide(false, "unauthenticated")
		outcome = "unauthenticated"
		return nil, publicRPCError(log, ctx, authErr)
	}
	call.SetPrincipal(p.Subject, p.CredentialID)
	log = log.With(slog.String("principal", p.Subject), slog.String("auth", p.Method))

	// Step 3: the caller's rate and concurrency budgets, before anything
	// else is done for it, so that refused calls count too.
	release, err := g.admitCall(ctx, req, p)
	if err != nil {
		call.Decide(false, "rate limited")
		outcome = "rate_limited"
		return nil, publicRPCError(log, ctx, err)
	}
	defer release()

	// Step 4: the tool, its scopes, a data binding, and its own budget.
	if !known {
		call.Decide(false, "unknown tool")
		outcome = "unknown_tool"
		g.countInvalid(ctx, log, p) // guessing tool names is malformed input too
		return nil, &jsonrpc.Error{Code: jsonrpc.CodeInvalidParams, Message: msgUnknownTool}
	}
	if missing := p.MissingScopes(tool.Scopes); len(missing) > 0 {
		call.Decide(false, "missing scope "+strings.Join(missing, " "))
		outcome = "denied"
		return nil, &jsonrpc.Error{Code: CodeForbidden, Message: fmt.Sprintf(
			"Forbidden: this credential lacks the scope %s required by %s.", strings.Join(missing, " "), name)}
	}
	if _, err := p.Access(); err != nil {
		call.Decide(false, "no customer binding and not staff")
		outcome = "denied"
		return nil, &jsonrpc.Error{Code: CodeForbidden, Message: "Forbidden: this credential is bound to no customer and is not staff."}
	}
	if err := g.admitTool(ctx, p, tool); err != nil {
		call.Decide(false, "rate limited")
		outcome = "rate_limited"
		return nil, publicRPCError(log, ctx, err)
	}

	// Step 5.
	if err := tool.Check(req.Params.Arguments); err != nil {
		call.Decide(true, "")
		outcome = "invalid_input"
		g.countInvalid(ctx, log, p)
		return toolError(err.Error()), nil
	}

	// Step 6.
	call.Decide(true, "")
	res, err = next(security.WithPrincipal(ctx, p), "tools/call", req)
	if err != nil {
		outcome = "error"
		return nil, publicRPCError(log, ctx, err)
	}
	if r, ok := res.(*mcp.CallToolResult); ok && r.IsError {
		msg, out, denied := publicToolError(r.GetError())
		if out == "" {
			log.LogAttrs(ctx, slog.LevelError, "tool failed", slog.String("error", errText(r.GetError())))
			return internalError(corr), nil
		}
		if denied {
			call.Decide(false, out)
		}
		if out == "not_found" {
			if err := g.limits.Missed(ctx, p); err != nil {
				outcome = "error"
				if isLimit(err) {
					outcome = "rate_limited"
				}
				return nil, publicRPCError(log, ctx, err)
			}
		}
		outcome = out
		return toolError(msg), nil
	}
	outcome = "ok"
	return res, nil
}

// admitCall charges the call to the caller's rate and concurrency budgets,
// unless the HTTP layer already did.
func (g *gate) admitCall(ctx context.Context, req *mcp.CallToolRequest, p *security.Principal) (func(), error) {
	if chargedByHTTP(req) {
		return func() {}, nil
	}
	return g.limits.AdmitCall(ctx, p)
}

// admitTool applies what the tool declares: the budget for destructive
// tools, and for lookups by id the enumeration throttle.
func (g *gate) admitTool(ctx context.Context, p *security.Principal, tool tools.Tool) error {
	if tool.Destructive() {
		if err := g.limits.AdmitDestructive(ctx, p); err != nil {
			return err
		}
	}
	if tool.LooksUpByID {
		return g.limits.Probing(ctx, p)
	}
	return nil
}

// countInvalid counts a malformed call towards the caller's lockout.
func (g *gate) countInvalid(ctx context.Context, log *slog.Logger, p *security.Principal) {
	if err := g.limits.Invalid(ctx, p); err != nil && !isLimit(err) {
		log.LogAttrs(ctx, slog.LevelError, "could not count invalid input", slog.String("error", err.Error()))
	}
}

// finish writes the call's audit record, waits for it to commit, and logs
// the call. If the record cannot be committed the result is withheld: the
// caller gets an internal error instead (fail closed).
func (g *gate) finish(ctx context.Context, log *slog.Logger, call *audit.Call, outcome, args string, res *mcp.Result, err *error) {
	start := time.Now()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if aerr := call.Finish(actx, outcome); aerr != nil {
		log.LogAttrs(ctx, slog.LevelError, "audit record not committed; result withheld", slog.String("error", aerr.Error()))
		*res, *err = internalError(call.CorrelationID()), nil
		outcome = "audit_failed"
	}
	log.LogAttrs(ctx, slog.LevelInfo, "tool call", slog.String("outcome", outcome),
		slog.String("arguments", args), slog.Float64("audit_wait_ms", float64(time.Since(start).Microseconds())/1000))
}

// toolError is a tool result reporting a failure the model can act on.
func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// internalError is what the model sees for anything unexpected: a fixed
// text and the correlation id under which the details were logged.
func internalError(corr string) *mcp.CallToolResult {
	return toolError(fmt.Sprintf("Internal error, reference %s. Please try again later.", corr))
}

// correlationID ties a client-visible error to the log line and the audit
// record that hold the details.
func correlationID() string { return audit.NewCorrelationID() }

func isLimit(err error) bool {
	var le *security.LimitError
	return errors.As(err, &le)
}

func errText(err error) string {
	if err == nil {
		return "tool returned isError without an error"
	}
	return err.Error()
}
