package main

import (
	"encoding/json"
	"testing"

	"github.com/google/jsonschema-go/jsonschema"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// goldenPath is the real server's definition of the tool, which the bare
// server must keep matching: when the real output changes shape, this
// test says so before a benchmark run fails on the SDK's output check.
const goldenPath = "../../../internal/tools/testdata/get_order_status.json"

func TestBareOutputMatchesTheGoldenSchema(t *testing.T) {
	def, err := loadTool(goldenPath)
	if err != nil {
		t.Fatal(err)
	}
	resolved, err := def.OutputSchema.(*jsonschema.Schema).Resolve(nil)
	if err != nil {
		t.Fatal(err)
	}
	// Every optional field set, so that a field the golden schema does not
	// allow (additionalProperties: false) is caught.
	full := orderStatus{
		OrderID: "ord_7QK2M9XWBR4TZP3H", Status: "delivered", PlacedAt: "2026-01-01T00:00:00Z", UpdatedAt: "2026-01-02T00:00:00Z",
		ItemCount: 2, Total: money{"27.49", "EUR"}, Payment: "Visa ending in 4242", CancelledAt: "2026-01-02T00:00:00Z",
		Shipment: &shipment{Carrier: "DHL", TrackingNumber: "1234567890", ShippedAt: "2026-01-01T12:00:00Z",
			EstimatedDelivery: "2026-01-03", DeliveredAt: "2026-01-02T12:00:00Z"},
		Timeline:             []timelineStep{{Status: "pending", At: "2026-01-01T00:00:00Z", Description: "Order placed."}},
		Customer:             contact{Name: "Maya L.", Email: "m***@example.com", Phone: "***67", Country: "SE"},
		DeliveryInstructions: &untrusted{Text: "Leave at the door.", Warning: untrustedWarning},
	}
	for name, out := range map[string]orderStatus{"Full": full, "Minimal": {Timeline: []timelineStep{}}} {
		b, _ := json.Marshal(out)
		var v any
		_ = json.Unmarshal(b, &v)
		if err := resolved.Validate(v); err != nil {
			t.Errorf("%s output does not match the golden schema: %v", name, err)
		}
	}
	// The SDK accepts the definition as the real server's tools/list
	// shows it (AddTool panics on a schema it cannot use).
	mcp.AddTool(mcp.NewServer(&mcp.Implementation{Name: "t", Version: "0"}, nil), def, getOrderStatus(nil))
}
