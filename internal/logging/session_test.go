package logging_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/demo"
	"github.com/example/order-mcp/internal/limits"
	"github.com/example/order-mcp/internal/logging"
	"github.com/example/order-mcp/internal/testenv"
)

// noLockout keeps the brute-force lockout out of a session that fails on
// purpose; the lockout has tests of its own.
var noLockout = func() limits.Policy {
	p := limits.DefaultPolicy()
	p.Threshold = 1_000_000
	return p
}()

// TestRealisticSessionLeavesNoSecretInTheLogs assembles the whole server,
// drives a realistic session over Streamable HTTP and in memory (the stdio
// code path): listing, reading orders with delivery instructions, a
// cancellation, invalid input, foreign and unknown orders, credentials that
// fail in every way, and arguments that carry personal data and
// credentials. It then searches everything logged for every secret and
// every piece of personal data the session touched.
func TestRealisticSessionLeavesNoSecretInTheLogs(t *testing.T) {
	ctx := context.Background()
	env := testenv.New(t, dsn, testenv.Options{Lockout: &noLockout})
	customers := demo.Customers()
	alice, bob := customers[0], customers[1]

	aliceKey, aliceID := env.Key(t, alice.ID, auth.ScopeRead, auth.ScopeCancel)
	bobKey, bobID := env.Key(t, bob.ID, auth.ScopeRead)
	revokedKey, revokedID := env.Key(t, alice.ID, auth.ScopeRead)
	if err := env.Owner.RevokeAPIKey(ctx, revokedID); err != nil {
		t.Fatal(err)
	}
	other := newAPIKey(t)
	wrongSecretKey := "osmcp_" + aliceID + "_" + other.Key[len(other.Key)-52:] // alice's id, someone else's secret
	garbageKey := "osmcp_" + randomHex(t, 24)
	garbageToken := "sk-live-" + randomHex(t, 24)
	jwt, jwtPayload, jwtSignature := newJWT(t)

	ordersOf := func(c demo.Customer, where string) []string {
		ids, err := env.OwnerQueryStrings(t, "SELECT id FROM orders WHERE customer_id = $1 AND "+where+" ORDER BY id", c.ID)
		if err != nil || len(ids) == 0 {
			t.Fatalf("orders of %s where %s: %v %v", c.Name, where, ids, err)
		}
		return ids
	}
	aliceWithInstructions := ordersOf(alice, "delivery_instructions <> ''")
	bobWithInstructions := ordersOf(bob, "delivery_instructions <> ''")
	// A pending order, or one this test cancelled on an earlier run
	// (-count=N): cancelling it again is the idempotent success path.
	alicePending := ordersOf(alice, "(status = 'pending' OR cancel_reason = 'ordered_by_mistake')")

	// Alice's assistant over HTTP, in both protocol generations.
	for _, version := range []string{testenv.Protocol20251125, testenv.Protocol20260728} {
		cs := env.ConnectHTTP(t, aliceKey, version)
		if _, err := cs.ListTools(ctx, nil); err != nil {
			t.Fatal(err)
		}
		mustCall(t, cs, "list_recent_orders", map[string]any{"limit": 8}, false)
		for _, id := range aliceWithInstructions {
			mustCall(t, cs, "get_order_status", map[string]any{"order_id": id}, false)
		}
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": "not-an-order"}, true)
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": "ord_0000000000000000"}, true) // not found
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": bobWithInstructions[0]}, true) // foreign
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": alice.Email}, true)
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": alice.Phone}, true)
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": aliceKey}, true) // a pasted key
		mustCall(t, cs, "get_order_status", map[string]any{"order_id": jwt}, true)
		mustCall(t, cs, "get_order_status", map[string]any{ // unknown arguments carrying personal data
			"order_id": aliceWithInstructions[0], "email": alice.Email, "phone": alice.Phone, "address": alice.Address}, true)
		mustCall(t, cs, "list_recent_orders", map[string]any{"customer_id": bob.ID}, true) // another customer's list
	}
	cs := env.ConnectHTTP(t, aliceKey, "")
	mustCall(t, cs, "cancel_order", map[string]any{"order_id": alicePending[0], "reason": "ordered_by_mistake"}, false)

	// Bob's assistant in memory, as over stdio.
	bobSession := env.Connect(t, bobKey, "")
	if _, err := bobSession.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	for _, id := range bobWithInstructions {
		mustCall(t, bobSession, "get_order_status", map[string]any{"order_id": id}, false)
	}
	mustCall(t, bobSession, "get_order_status", map[string]any{"order_id": aliceWithInstructions[0]}, true) // foreign
	if _, err := bobSession.CallTool(ctx, &mcp.CallToolParams{Name: "cancel_order",                         // without the cancel scope
		Arguments: map[string]any{"order_id": ordersOf(bob, "status IN ('pending', 'processing')")[0]}}); err == nil {
		t.Fatal("cancel_order without the cancel scope succeeded")
	}
	mustCall(t, bobSession, "get_order_status", map[string]any{"order_id": "call me at " + bob.Phone + " or " + bob.Email}, true)

	// Credentials that fail: in memory (stdio re-checks the key on every call)...
	for _, bad := range []string{garbageKey, revokedKey, wrongSecretKey, jwt, garbageToken} {
		s := env.Connect(t, bad, "")
		if _, err := s.ListTools(ctx, nil); err == nil {
			t.Fatalf("tools/list with a bad credential succeeded")
		}
		if _, err := s.CallTool(ctx, &mcp.CallToolParams{Name: "list_recent_orders", Arguments: map[string]any{}}); err == nil {
			t.Fatalf("tools/call with a bad credential succeeded")
		}
	}
	// ... and over HTTP, in the Authorization header.
	for _, header := range []string{"Bearer " + garbageKey, "Bearer " + revokedKey, "Bearer " + wrongSecretKey,
		"Bearer " + jwt, "Bearer " + garbageToken, jwt, "Basic " + aliceKey} {
		if status := rawPost(t, env.URL(t), header); status != http.StatusUnauthorized {
			t.Fatalf("Authorization %.20s...: status %d, want 401", header, status)
		}
	}

	logs := env.Logs.String()
	lines := jsonLines(t, logs) // every line must be JSON

	t.Run("NoSecretOrPersonalDataIsLogged", func(t *testing.T) {
		forbidden := env.Secrets(t, aliceKey, bobKey, revokedKey, wrongSecretKey, garbageKey)
		forbidden = append(forbidden, garbageToken, jwt, jwtPayload, jwtSignature)
		notes, err := env.OwnerQueryStrings(t, "SELECT internal_note FROM orders WHERE internal_note <> ''")
		if err != nil || len(notes) == 0 {
			t.Fatalf("internal notes: %v %v", notes, err)
		}
		forbidden = append(forbidden, notes...)
		instructions, err := env.OwnerQueryStrings(t, "SELECT delivery_instructions FROM orders WHERE delivery_instructions <> ''")
		if err != nil || len(instructions) == 0 {
			t.Fatalf("delivery instructions: %v %v", instructions, err)
		}
		forbidden = append(forbidden, instructions...)
		for _, c := range customers {
			forbidden = append(forbidden, c.Email, c.Phone, c.Address, strings.Split(c.Email, "@")[0])
		}
		// Raw text, then every string with JSON escaping undone.
		var decoded []string
		for _, line := range lines {
			decoded = append(decoded, allStrings(line)...)
		}
		for _, f := range forbidden {
			if strings.Contains(logs, f) {
				t.Errorf("logs contain %q", f)
			}
			for _, s := range decoded {
				if strings.Contains(s, f) {
					t.Errorf("a log value contains %q: %q", f, s)
					break
				}
			}
		}
	})

	t.Run("LogsStillSayWhatHappened", func(t *testing.T) {
		var (
			corrIDs, tools, outcomes, principals, reasons, refusedIDs []string
			status401                                                 int
		)
		for _, l := range lines {
			switch l["msg"] {
			case "tool call":
				corrIDs = append(corrIDs, str(l["correlation_id"]))
				tools = append(tools, str(l["tool"]))
				outcomes = append(outcomes, str(l["outcome"]))
				principals = append(principals, str(l["principal"]))
			case "credential refused":
				reasons = append(reasons, str(l["reason"]))
				refusedIDs = append(refusedIDs, str(l["key_id"]))
			case "http request":
				if l["status"] == float64(http.StatusUnauthorized) {
					status401++
				}
			}
		}
		if len(corrIDs) == 0 || slices.Contains(corrIDs, "") {
			t.Errorf("tool call lines without a correlation id: %q", corrIDs)
		}
		for _, want := range []string{"list_recent_orders", "get_order_status", "cancel_order"} {
			if !slices.Contains(tools, want) {
				t.Errorf("no tool call line for %s", want)
			}
		}
		for _, want := range []string{"ok", "invalid_input", "not_found", "foreign_customer", "unauthenticated"} {
			if !slices.Contains(outcomes, want) {
				t.Errorf("no tool call line with outcome %s (got %q)", want, outcomes)
			}
		}
		for _, want := range []string{"apikey:" + aliceID, "apikey:" + bobID} {
			if !slices.Contains(principals, want) {
				t.Errorf("no tool call line for principal %s", want)
			}
		}
		for _, want := range []string{"api key revoked", "wrong api key secret", "malformed api key", "malformed credential"} {
			if !slices.Contains(reasons, want) {
				t.Errorf("no refusal logged with reason %q (got %q)", want, reasons)
			}
		}
		for _, want := range []string{revokedID, aliceID} {
			if !slices.Contains(refusedIDs, want) {
				t.Errorf("no refusal logged for key id %s", want)
			}
		}
		if status401 == 0 {
			t.Errorf("no http request line with status 401")
		}
		if want := "osmcp_" + aliceID + "_" + logging.Redacted; !strings.Contains(logs, want) {
			t.Errorf("the pasted key's id is not in the logs as %s", want)
		}
	})
}

func str(v any) string { s, _ := v.(string); return s }

// mustCall calls a tool; the call must succeed as a protocol exchange, and
// come back as a tool error exactly when wantErr.
func mustCall(t *testing.T, cs *mcp.ClientSession, name string, args map[string]any, wantErr bool) {
	t.Helper()
	res, err := cs.CallTool(context.Background(), &mcp.CallToolParams{Name: name, Arguments: args})
	if err != nil {
		t.Fatalf("%s %v: %v", name, args, err)
	}
	if res.IsError != wantErr {
		t.Fatalf("%s %v: IsError = %v, want %v", name, args, res.IsError, wantErr)
	}
}

// rawPost sends an MCP initialize request with the given Authorization
// header, as a scanner or a misconfigured client would, and returns the
// status.
func rawPost(t *testing.T, url, authorization string) int {
	t.Helper()
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":%q,"capabilities":{},"clientInfo":{"name":"probe","version":"1"}}}`,
		testenv.Protocol20251125)
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("Authorization", authorization)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}
