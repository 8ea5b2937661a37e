package mcpserver

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/surface"
	"github.com/example/order-mcp/internal/tools"
)

// Limiter throttles tool calls inside the MCP layer (internal/limits'
// Limits implements it).
type Limiter interface {
	// AdmitCall charges one tool call to the principal's rate and
	// concurrency budgets and returns the function that ends the call. It
	// is called only when the transport has not already charged the call
	// (the HTTP layer charges HTTP calls before MCP, to answer 429).
	AdmitCall(ctx context.Context, p *auth.Principal) (release func(), err error)
	// AdmitDestructive charges a call of a destructive tool to the
	// principal's small budget for such calls. It is charged on the round
	// that acts, from inside the tool (tools.WithCharge).
	AdmitDestructive(ctx context.Context, p *auth.Principal) error
	// CheckDestructive refuses, without charging, a principal whose budget
	// for destructive calls is spent: before any round of such a call.
	CheckDestructive(ctx context.Context, p *auth.Principal) error
	// Invalid records a call whose arguments were refused; repeated
	// malformed calls lock the caller out for a while.
	Invalid(ctx context.Context, p *auth.Principal) error
	// Missed records a lookup of an order that was not found, and
	// refuses the principal once it has missed too many in a short time:
	// guessing order ids is enumeration.
	Missed(ctx context.Context, p *auth.Principal) error
	// Probing reports whether the principal is currently throttled for
	// enumeration, so lookups are refused before they run.
	Probing(ctx context.Context, p *auth.Principal) error
}

// gate is the MCP layer's security middleware. It sees every request after
// the SDK has decoded it, on every transport, and makes every decision that
// depends on which tool is called. For tools/call, in order, with the
// first and the last two steps always run:
//
//   - panic recovery (the SDK does not recover: a panic in a handler would
//     kill the process and, over stdio, the user's session);
//   - who is calling: the principal the HTTP layer authenticated for this
//     very request, or, over stdio, the configured key authenticated again
//     now (so a revoked key stops working without a restart);
//   - the caller's rate and concurrency budgets (before anything else is
//     done for the call, so refused calls count too);
//   - the tool, the scopes it declares, a data binding (customer or
//     staff), the tool's own budget and the enumeration throttle;
//   - argument validation with fixed, non-echoing messages;
//   - the handler;
//   - one place that maps every error to what the model may see;
//   - exactly one audit record, committed before the result is released.
type gate struct {
	auth   Authenticator
	audit  *audit.Writer
	limits Limiter
	logger *slog.Logger
	tools  map[string]tools.Tool
	pin    *surface.Pin // the tool digest each caller is handed (surface.go)
	alarm  Observer     // told of every call that reaches a canary record (canary.go)
}

func (g *gate) middleware(next mcp.MethodHandler) mcp.MethodHandler {
	return func(ctx context.Context, method string, req mcp.Request) (mcp.Result, error) {
		switch {
		case method == "tools/call":
			return g.toolCall(ctx, next, req.(*mcp.CallToolRequest))
		case method == "tools/list":
			return g.toolList(ctx, next, req)
		case method == "initialize", method == "server/discover":
			return g.handOutDigest(ctx, next, method, req)
		case method == "ping", strings.HasPrefix(method, "notifications/"):
			return next(ctx, method, req)
		default:
			// Only what this server offers is reachable: no resources,
			// prompts, completions or logging.
			return nil, refusal.MethodNotFound.Error(nil)
		}
	}
}

// principal returns who is calling and over which transport.
func (g *gate) principal(ctx context.Context, req mcp.Request) (*auth.Principal, string, error) {
	if extra := req.GetExtra(); extra != nil && extra.TokenInfo != nil {
		p, ok := extra.TokenInfo.Extra[principalExtraKey].(*auth.Principal)
		if !ok {
			return nil, "http", refusal.Unauthenticated.Error(nil)
		}
		return p, "http", nil
	}
	c, ok := ctx.Value(credentialKey{}).(credential)
	if !ok {
		return nil, "unknown", refusal.Unauthenticated.Error(nil)
	}
	p, err := g.auth.Authenticate(ctx, c.secret)
	if err != nil {
		var ae *auth.AuthError
		if errors.As(err, &ae) {
			g.logger.LogAttrs(ctx, slog.LevelWarn, "credential refused", slog.String("transport", c.transport),
				slog.String("reason", ae.Reason), slog.String("key_id", ae.KeyID))
			return nil, c.transport, refusal.Unauthenticated.Error(nil)
		}
		return nil, c.transport, err
	}
	return p, c.transport, nil
}

// toolList shows a caller only the tools its scopes allow.
func (g *gate) toolList(ctx context.Context, next mcp.MethodHandler, req mcp.Request) (mcp.Result, error) {
	p, _, err := g.principal(ctx, req)
	if err != nil {
		return nil, publicRPCError(ctx, g.logger, "", err)
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
		if tool, ok := g.tools[t.Name]; ok && len(p.MissingScopes(tool.Scopes())) == 0 {
			visible.Tools = append(visible.Tools, t)
		}
	}
	g.attachDigest(&visible, p.Scopes)
	return &visible, nil
}

// toolCall runs one tool call through the gate. See gate for the steps.
func (g *gate) toolCall(ctx context.Context, next mcp.MethodHandler, req *mcp.CallToolRequest) (res mcp.Result, err error) {
	if req.Params == nil { // the SDK refuses this already; never dereference on trust
		return nil, refusal.InvalidParams.Error(nil)
	}
	corr := audit.NewCorrelationID()
	tool, known := g.tools[req.Params.Name]
	name := "unknown_tool"
	if known {
		name = tool.Name()
	}
	args := logging.RedactJSON(req.Params.Arguments)
	p, transport, authErr := g.principal(ctx, req)
	call := g.audit.NewCall(name, transport, corr)
	call.SetArguments(args)
	ctx = audit.WithCall(ctx, call)
	log := &callLogger{base: g.logger, line: callLineOf(req),
		attrs: []slog.Attr{slog.String("correlation_id", corr), slog.String("tool", name), slog.String("transport", transport)}}
	if trace := traceID(req); trace != "" {
		call.SetTraceID(trace)
		log.add(slog.String("trace_id", trace))
	}
	outcome := "error"

	// Recovery, the error mapping and the audit record run last, whatever
	// happened before.
	defer func() {
		if r := recover(); r != nil {
			log.LogAttrs(ctx, slog.LevelError, "panic in tool call", slog.Any("panic", r), slog.String("stack", string(debug.Stack())))
			res, err, outcome = internalError(corr), nil, "panic"
		}
		g.finish(ctx, log, call, outcome, args, &res, &err)
	}()

	if authErr != nil {
		outcome = refused(call, authErr, refusal.Unauthenticated, "unauthenticated")
		return nil, publicRPCError(ctx, log, corr, authErr)
	}
	call.SetPrincipal(p.Subject, p.CredentialID)
	log.add(slog.String("principal", p.Subject), slog.String("auth", p.Method))

	// The caller's budgets, before anything else is done for it, so that
	// refused calls count too.
	release, err := g.admitCall(ctx, req, p)
	if err != nil {
		outcome = refused(call, err, refusal.RateLimited, "rate limited")
		return nil, publicRPCError(ctx, log, corr, err)
	}
	defer release()

	// The tool, its scopes, a data binding, and its own budget.
	if !known {
		call.Decide(false, "unknown tool")
		outcome = refusal.UnknownTool.Name()
		g.countInvalid(ctx, log, p) // guessing tool names is malformed input too
		return nil, refusal.UnknownTool.Error(nil)
	}
	if missing := p.MissingScopes(tool.Scopes()); len(missing) > 0 {
		scopes := strings.Join(auth.ScopeNames(missing), " ")
		call.Decide(false, "missing scope "+scopes)
		outcome = refusal.MissingScope.Name()
		return nil, refusal.MissingScope.Error(nil, scopes, name)
	}
	if _, err := p.Access(); err != nil {
		call.Decide(false, "no customer binding and not staff")
		outcome = refusal.NoBinding.Name()
		return nil, refusal.NoBinding.Error(nil)
	}
	if err := g.admitTool(ctx, p, tool); err != nil {
		outcome = refused(call, err, refusal.RateLimited, "rate limited")
		return nil, publicRPCError(ctx, log, corr, err)
	}

	// Arguments, with fixed messages that never repeat a value, decoded
	// once: the handler gets what was checked here.
	in, err := tool.Decode(req.Params.Arguments)
	if err != nil {
		call.Decide(true, "")
		outcome = refusal.InvalidArgument.Name()
		g.countInvalid(ctx, log, p)
		return toolError(err.Error()), nil
	}

	// The handler. A destructive tool charges its budget itself, on the
	// round that acts (after the user confirmed it): the charge is handed
	// to it here.
	call.Decide(true, "")
	hctx := tools.WithInput(auth.WithPrincipal(ctx, p), req, in)
	if tool.Destructive() {
		hctx = tools.WithCharge(hctx, func(ctx context.Context) error { return g.limits.AdmitDestructive(ctx, p) })
	}
	res, err = next(hctx, "tools/call", req)
	if err != nil {
		outcome = "error"
		return nil, publicRPCError(ctx, log, corr, err)
	}
	if r, ok := res.(*mcp.CallToolResult); ok && r.IsError {
		return g.toolFailed(ctx, log, call, p, corr, name, r.GetError(), &outcome)
	}
	if r, ok := res.(*mcp.CallToolResult); ok && r.InputRequests != nil {
		// The tool asks the user to confirm (2026-07-28: the client answers
		// in a new call, which is a round and a record of its own).
		outcome = tools.OutcomeConfirmationRequested
		return res, nil
	}
	outcome = "ok"
	return res, nil
}

// toolFailed maps the error a handler returned to what the model sees
// (see errors.go), records the outcome, and counts a miss towards the
// enumeration throttle.
func (g *gate) toolFailed(ctx context.Context, log logger, call *audit.Call, p *auth.Principal, corr, name string, herr error, outcome *string) (mcp.Result, error) {
	if isLimit(herr) || errors.Is(herr, limits.ErrUnavailable) {
		// The budget for destructive calls, charged by the tool on the
		// round that acts: refused as the gate refuses a spent budget.
		*outcome = refused(call, herr, refusal.RateLimited, "rate limited")
		return nil, publicRPCError(ctx, log, corr, herr)
	}
	kind, msg := publicToolError(herr, name)
	switch {
	case kind == 0:
		log.LogAttrs(ctx, slog.LevelError, "tool failed", slog.String("error", errText(herr)))
		return internalError(corr), nil
	case kind.Code() != 0: // a refusal the protocol carries (an unavailable dependency)
		*outcome = kind.Name()
		return nil, publicRPCError(ctx, log, corr, herr)
	}
	switch reason := auditReason(herr); {
	case kind.Denied() && reason != "":
		call.Decide(false, kind.Name()+": "+reason)
	case kind.Denied():
		call.Decide(false, kind.Name())
	case reason != "":
		call.Decide(true, reason)
	}
	if kind == refusal.NotFound {
		if err := g.limits.Missed(ctx, p); err != nil {
			*outcome = "error"
			if isLimit(err) {
				*outcome = refusal.RateLimited.Name()
			}
			return nil, publicRPCError(ctx, log, corr, err)
		}
	}
	*outcome = kind.Name()
	return toolError(msg), nil
}

// refused records a call refused before its handler ran and returns its
// outcome: the refusal kind when err is one (a bad credential, a limit
// reached), "unavailable" when a dependency could not decide (the
// database busy, Redis down: the client is told to retry, and nobody is
// charged with a refusal it did not earn), and "error" otherwise.
func refused(call *audit.Call, err error, kind refusal.Kind, reason string) string {
	var rpcErr *jsonrpc.Error
	switch {
	case isLimit(err), errors.As(err, &rpcErr) && rpcErr.Code == kind.Code():
		call.Decide(false, reason)
		return kind.Name()
	case errors.Is(err, store.ErrBusy), errors.Is(err, limits.ErrUnavailable):
		call.Decide(false, "dependency unavailable")
		return refusal.Unavailable.Name()
	}
	call.Decide(false, "error")
	return "error"
}

// admitCall charges the call to the caller's rate and concurrency budgets,
// unless the HTTP layer already did.
func (g *gate) admitCall(ctx context.Context, req *mcp.CallToolRequest, p *auth.Principal) (func(), error) {
	if chargedByHTTP(req) {
		return func() {}, nil
	}
	return g.limits.AdmitCall(ctx, p)
}

// admitTool applies what the tool declares: the budget for destructive
// tools (checked here, charged by the round that acts), and for lookups by
// id the enumeration throttle.
func (g *gate) admitTool(ctx context.Context, p *auth.Principal, tool tools.Tool) error {
	if tool.Destructive() {
		if err := g.limits.CheckDestructive(ctx, p); err != nil {
			return err
		}
	}
	if tool.LooksUpByID() {
		return g.limits.Probing(ctx, p)
	}
	return nil
}

// countInvalid counts a malformed call towards the caller's lockout.
func (g *gate) countInvalid(ctx context.Context, log logger, p *auth.Principal) {
	if err := g.limits.Invalid(ctx, p); err != nil && !isLimit(err) {
		log.LogAttrs(ctx, slog.LevelError, "could not count invalid input", slog.String("error", err.Error()))
	}
}

// finish writes the call's audit record, waits for it to commit, and logs
// the call. If the record cannot be committed the result is withheld: the
// caller gets an internal error instead (fail closed).
func (g *gate) finish(ctx context.Context, log *callLogger, call *audit.Call, outcome, args string, res *mcp.Result, err *error) {
	outcome = g.canary(ctx, log, call, outcome)
	start := time.Now()
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if aerr := call.Finish(actx, outcome); aerr != nil {
		if released(*res, *err) {
			log.LogAttrs(ctx, slog.LevelError, "audit record not committed; result withheld", slog.String("error", aerr.Error()))
			*res, *err = internalError(call.CorrelationID()), nil
			outcome = "audit_failed"
		} else {
			// A refusal carries nothing to withhold: the caller gets it as
			// it is (a 503 stays a 503, and says when to retry).
			log.LogAttrs(ctx, slog.LevelError, "audit record of a refused call not committed", slog.String("error", aerr.Error()))
		}
	}
	log.done(ctx, slog.String("outcome", outcome),
		slog.String("arguments", args), slog.Float64("audit_wait_ms", float64(time.Since(start).Microseconds())/1000))
}

// released reports whether a call's answer carries a tool's result: a
// result that is not an error. Only such an answer waits for its audit
// record and is withheld when the record cannot be committed.
func released(res mcp.Result, err error) bool {
	r, ok := res.(*mcp.CallToolResult)
	return err == nil && ok && r != nil && !r.IsError
}

// toolError is a tool result reporting a failure the model can act on.
func toolError(msg string) *mcp.CallToolResult {
	return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: msg}}}
}

// internalError is what the model sees for anything unexpected: a fixed
// text and the correlation id under which the details were logged.
func internalError(corr string) *mcp.CallToolResult {
	return toolError(refusal.Internal.Message(corr))
}

func isLimit(err error) bool {
	var le *limits.Error
	return errors.As(err, &le)
}

func errText(err error) string {
	if err == nil {
		return "tool returned isError without an error"
	}
	return err.Error()
}
