package mcpserver

import (
	"context"
	"log/slog"

	"github.com/example/order-mcp/internal/audit"
)

// canary raises the alarm for a call that reached a canary record
// (internal/store/canaries.go): customers and orders no legitimate flow
// touches, so a call naming one is someone enumerating ids, using a leaked
// key, or working from a leaked copy of the data. The caller's answer is
// left exactly as it was ("not found", an empty list: what an id that
// exists nowhere gets, after the same statements), so nothing tells the
// caller it tripped anything. The alarm goes where only the operator
// looks: a line at ERROR with the call's correlation id and principal,
// the audit record's outcome "canary" (instead of the one the caller was
// answered with, which the log line keeps), and the metric
// order_mcp_canary_hits_total. It returns the outcome to record.
func (g *gate) canary(ctx context.Context, log logger, call *audit.Call, outcome string) string {
	if !call.ReachedCanary() {
		return outcome
	}
	log.LogAttrs(ctx, slog.LevelError, "canary record reached: no legitimate flow touches one "+
		"(ids being guessed, a leaked key, or a leaked copy of the data)", slog.String("answered_as", outcome))
	if g.alarm != nil {
		g.alarm.CanaryHit()
	}
	return audit.OutcomeCanary
}
