package mcpserver

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/security"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/tools"
)

// This file is the one place that decides what the model sees when
// something fails.
//
// Checklist: "Error handling: avoid verbose errors or stack traces". Known
// errors get short fixed messages that help the model correct itself;
// anything else is logged with a correlation id and the model gets
// "Internal error, reference <id>." and nothing more: no SQL, no driver
// message, no path, no stack. This matters more than it looks: the go-sdk
// puts a typed tool handler's err.Error() into the result verbatim, and its
// own errors quote attacker input ("unknown tool \"<name>\"", schema errors
// quoting the value).

// publicToolError maps an error a tool handler returned. outcome is "" for
// an unknown error, which the caller turns into an internal error. denied
// reports refusals that are access decisions, for the audit trail.
func publicToolError(err error) (msg, outcome string, denied bool) {
	var inputErr *tools.InputError
	switch {
	case errors.As(err, &inputErr):
		return inputErr.Error(), "invalid_input", false
	case errors.Is(err, store.ErrNotFound):
		return "Order not found. Check the order id; only orders this credential may see can be looked up.", "not_found", false
	case errors.Is(err, store.ErrNotCancellable):
		return "This order has already shipped (or was delivered or returned) and can no longer be cancelled.", "not_cancellable", false
	case errors.Is(err, store.ErrCancelQuota):
		return "The daily cancellation limit for this customer has been reached. Try again tomorrow or contact support.", "quota_exceeded", true
	case errors.Is(err, tools.ErrForeignCustomer):
		return "Not allowed: this credential can only list its own customer's orders. Omit customer_id.", "foreign_customer", true
	case errors.Is(err, security.ErrNoBinding):
		return "Not allowed: this credential is bound to no customer and is not staff.", "denied", true
	}
	return "", "", false
}

// publicRPCError maps an error that ends a request as a JSON-RPC error.
func publicRPCError(log *slog.Logger, ctx context.Context, err error) error {
	var (
		rpcErr   *jsonrpc.Error
		limitErr *security.LimitError
	)
	switch {
	case errors.As(err, &limitErr):
		data, _ := json.Marshal(map[string]int{"retry_after_seconds": limitErr.RetryAfterSeconds()})
		return &jsonrpc.Error{Code: CodeRateLimited, Message: limitErr.Error(), Data: data}
	case errors.As(err, &rpcErr):
		switch rpcErr.Code {
		case CodeUnauthenticated, CodeForbidden, CodeRateLimited:
			return rpcErr // ours: fixed texts
		case jsonrpc.CodeInvalidParams, jsonrpc.CodeMethodNotFound:
			return FixedError(rpcErr.Code, nil)
		}
	}
	corr := correlationID()
	log.LogAttrs(ctx, slog.LevelError, "request failed", slog.String("error_reference", corr), slog.String("error", err.Error()))
	return &jsonrpc.Error{Code: jsonrpc.CodeInternalError, Message: msgInternalPrefix + corr + ". Please try again later."}
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
