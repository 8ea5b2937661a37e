package mcpserver_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/audit"
	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
	"github.com/example/order-mcp/internal/tools"
)

// canaryHits reads order_mcp_canary_hits_total from the server's metrics,
// as Prometheus would scrape it.
func canaryHits(t *testing.T, env *testenv.Env) float64 {
	t.Helper()
	rec := httptest.NewRecorder()
	env.Server.Metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	m := regexp.MustCompile(`(?m)^order_mcp_canary_hits_total (\S+)$`).FindStringSubmatch(rec.Body.String())
	if m == nil {
		t.Fatal("no order_mcp_canary_hits_total in the metrics")
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// canaryLines returns the ERROR lines that raise the canary alarm for the
// call with correlation id corr.
func canaryLines(t *testing.T, env *testenv.Env, corr string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range logLines(t, env) {
		msg, _ := l["msg"].(string)
		if l["level"] == "ERROR" && strings.HasPrefix(msg, "canary record reached") && l["correlation_id"] == corr {
			out = append(out, l)
		}
	}
	return out
}

// TestCanaryIsAnsweredAsMissingAndRaisesTheAlarm plays a staff key that
// reaches canary records (ids from a leaked copy of the data, or guessed)
// through every tool that names an order or a customer (tools.All()).
// Each call is answered byte for byte as the same call for an id that
// exists nowhere, after the same statements with the same
// row counts, and the canary order is left as it was; but the call, unlike
// its twin, is logged at ERROR, audited with outcome "canary" and counted
// in order_mcp_canary_hits_total. On both transports.
func TestCanaryIsAnsweredAsMissingAndRaisesTheAlarm(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	planted, err := demo.Canaries(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := env.Owner.Seed(ctx, planted); err != nil {
		t.Fatal(err)
	}
	canaryCustomer := planted.Customers[0].ID
	var canaryPending string
	for _, o := range planted.Orders {
		if o.Status == store.StatusPending {
			canaryPending = o.ID
		}
	}
	if canaryPending == "" {
		t.Fatal("test setup: no pending canary order (a cancellation would have nothing to do anyway)")
	}
	const missingCustomer = "cus_0000000000000000"
	staff, _ := env.Key(t, "", auth.ScopeRead, auth.ScopeReadAny, auth.ScopeCancel)

	// Every tool that names an order or a customer, as tools.All() lists
	// them: a new tool whose statements forget the canaries fails here.
	canaryIDs := testenv.Fixture{OrderID: canaryPending, CustomerID: canaryCustomer}
	missingIDs := testenv.Fixture{OrderID: missingOrder, CustomerID: missingCustomer}
	var targets []tools.Tool
	for _, tool := range tools.All() {
		if tool.LooksUpByID() || testenv.NamesCustomer(tool) {
			targets = append(targets, tool)
		}
	}
	if len(targets) == 0 {
		t.Fatal("no tool names an order or a customer: the attack has no target")
	}
	for _, tr := range transports {
		cs := tr.connect(t, env, staff)
		for _, tool := range targets {
			t.Run(tr.name+"/"+tool.Name(), func(t *testing.T) {
				type observed struct {
					answer string
					work   []store.QueryEvent
					record auditRow
				}
				call := func(ids testenv.Fixture) observed {
					t.Helper()
					env.Queries.Reset()
					head := auditHead(t, env)
					res, err := callTool(cs, tool.Name(), argsFor(t, tool, ids))
					if err != nil {
						t.Fatal(err)
					}
					b, err := json.Marshal(res)
					if err != nil {
						t.Fatal(err)
					}
					var w []store.QueryEvent
					for _, e := range env.Queries.Events() {
						if !slices.Contains(bookkeeping, e.Name) {
							w = append(w, e)
						}
					}
					// An answer may name the ids it was asked about;
					// nothing else may differ.
					answer := strings.NewReplacer(ids.OrderID, "<order>", ids.CustomerID, "<customer>").Replace(string(b))
					return observed{answer, w, oneRecord(t, env, head)}
				}
				missing := call(missingIDs)
				before := canaryHits(t, env)
				canary := call(canaryIDs)

				if canary.answer != missing.answer {
					t.Errorf("the canary is answered otherwise than a missing id:\ncanary:  %s\nmissing: %s", canary.answer, missing.answer)
				}
				if !eventsEqual(canary.work, missing.work) {
					t.Errorf("the canary does other work than a missing id:\ncanary:  %+v\nmissing: %+v", canary.work, missing.work)
				}
				if canary.record.Outcome != audit.OutcomeCanary || missing.record.Outcome == audit.OutcomeCanary {
					t.Errorf("audit outcomes: canary %q, missing %q; want canary and the ordinary answer's",
						canary.record.Outcome, missing.record.Outcome)
				}
				if len(canaryLines(t, env, canary.record.CorrelationID)) != 1 || len(canaryLines(t, env, missing.record.CorrelationID)) != 0 {
					t.Error("want one ERROR line for the canary call, with its correlation id, and none for the missing id")
				}
				if after := canaryHits(t, env); after != before+1 {
					t.Errorf("order_mcp_canary_hits_total went from %v to %v, want one more", before, after)
				}
			})
		}
	}
	if got := orderState(t, env, canaryPending); !strings.HasPrefix(got, store.StatusPending) {
		t.Errorf("the canary order changed: %s", got)
	}
}

func eventsEqual(a, b []store.QueryEvent) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].Rows != b[i].Rows || a[i].Code != b[i].Code {
			return false
		}
	}
	return true
}
