package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/confirm"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/refusal"
	"github.com/example/order-mcp/internal/sdkfix"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/tools"
)

// This file is the one place that decides which catalogue entry
// (internal/refusal) an error becomes when a tool call fails.
//
// Checklist: "Error handling: avoid verbose errors or stack traces". Known
// errors get the catalogue's short fixed messages that help the model
// correct itself; anything else is logged with a correlation id and the
// model gets "Internal error, reference <id>." and nothing more: no SQL, no
// driver message, no path, no stack. The go-sdk puts a typed tool
// handler's err.Error() into the result verbatim, and its own errors quote
// attacker input, so this mapping is a control.

// publicToolError maps an error a tool handler returned to its catalogue
// kind and the text the model sees; kind 0 is an unknown error, which the
// caller turns into an internal error.
func publicToolError(err error, toolName string) (refusal.Kind, string) {
	var inputErr *tools.InputError
	switch {
	case errors.As(err, &inputErr):
		return refusal.InvalidArgument, inputErr.Error()
	case errors.Is(err, store.ErrNotFound):
		return refusal.NotFound, refusal.NotFound.Message()
	case errors.Is(err, store.ErrNotCancellable):
		return refusal.NotCancellable, refusal.NotCancellable.Message()
	case errors.Is(err, store.ErrCancelQuota):
		return refusal.QuotaExceeded, refusal.QuotaExceeded.Message()
	case errors.Is(err, tools.ErrForeignCustomer):
		return refusal.ForeignCustomer, refusal.ForeignCustomer.Message()
	case errors.Is(err, auth.ErrNoBinding):
		return refusal.NoBinding, refusal.NoBinding.Message()
	case errors.Is(err, store.ErrBusy):
		return refusal.Unavailable, refusal.Unavailable.Message()
	case errors.Is(err, tools.ErrCannotAsk):
		return refusal.ConfirmationUnavailable, refusal.ConfirmationUnavailable.Message(toolName)
	case errors.Is(err, tools.ErrDeclined):
		return refusal.Declined, refusal.Declined.Message()
	case errors.Is(err, confirm.ErrInvalid):
		return refusal.ConfirmationInvalid, refusal.ConfirmationInvalid.Message()
	case errors.Is(err, confirm.ErrExpired):
		return refusal.ConfirmationExpired, refusal.ConfirmationExpired.Message()
	case errors.Is(err, store.ErrAnswered):
		return refusal.ConfirmationAnswered, refusal.ConfirmationAnswered.Message()
	}
	return 0, ""
}

// auditReason is the precise reason an error carries for the audit trail
// (a refused confirmation says which check failed), or "". It is recorded,
// never shown to the client.
func auditReason(err error) string {
	var r interface{ AuditReason() string }
	if errors.As(err, &r) {
		return r.AuditReason()
	}
	return ""
}

// unavailableRetry is the Retry-After a client gets when a dependency is
// busy or down.
const unavailableRetry = 2

// publicRPCError maps an error that ends a request as a JSON-RPC error.
// corr is the call's correlation id, the reference an internal error
// names, so that it leads to the call's log line and audit record ("":
// a request that is not a tool call gets a reference of its own).
func publicRPCError(ctx context.Context, log logger, corr string, err error) error {
	var (
		rpcErr   *jsonrpc.Error
		limitErr *limits.Error
	)
	switch {
	case errors.As(err, &limitErr):
		data, _ := json.Marshal(map[string]int{"retry_after_seconds": limitErr.RetryAfterSeconds()})
		return &jsonrpc.Error{Code: refusal.CodeRateLimited, Message: limitErr.Error(), Data: data}
	case errors.Is(err, store.ErrBusy), errors.Is(err, limits.ErrUnavailable):
		log.LogAttrs(ctx, slog.LevelWarn, "dependency unavailable", slog.String("error", err.Error()))
		data, _ := json.Marshal(map[string]int{"retry_after_seconds": unavailableRetry})
		return refusal.Unavailable.Error(data)
	case errors.As(err, &rpcErr):
		if sdkfix.Ours(rpcErr) {
			return rpcErr
		}
		if rpcErr.Code == jsonrpc.CodeInvalidParams || rpcErr.Code == jsonrpc.CodeMethodNotFound {
			return sdkfix.FixedError(rpcErr.Code, nil)
		}
	}
	if corr == "" {
		corr = audit.NewCorrelationID()
	}
	log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("error_reference", corr), slog.String("error", err.Error()))
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: refusal.Internal.Message(corr)}
}

// chargedExtraKey marks a request whose tool call the HTTP layer already
// charged to the principal's rate and concurrency budgets.
const chargedExtraKey = "order-mcp/charged"

// MarkCharged records in the TokenInfo that the HTTP layer charged this
// request's tool call, so the MCP layer does not charge it twice.
func MarkCharged(extra map[string]any) { extra[chargedExtraKey] = true }

func chargedByHTTP(req *mcp.CallToolRequest) bool {
	if req.Extra == nil || req.Extra.TokenInfo == nil {
		return false
	}
	charged, _ := req.Extra.TokenInfo.Extra[chargedExtraKey].(bool)
	return charged
}
