package testenv

import (
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/example/order-mcp/internal/tools"
)

// Fixture names the objects a generated tool call refers to.
type Fixture struct {
	OrderID    string
	CustomerID string
}

// Args returns valid arguments for any tool, read off its input schema, so
// that a test attacking "every tool" iterates tools.All() and a new tool
// gets the attack without anyone editing the test: every property that
// names an order or a customer (by its id pattern) gets the fixture's id,
// every other required property the first value its schema allows. It
// fails when it cannot build a value, which means the generator needs to
// learn the new property's shape.
func Args(tool tools.Tool, f Fixture) (map[string]any, bool) {
	schema, ok := tool.Def().InputSchema.(*jsonschema.Schema)
	if !ok {
		return nil, false
	}
	args := map[string]any{}
	required := map[string]bool{}
	for _, r := range schema.Required {
		required[r] = true
	}
	for name, p := range schema.Properties {
		switch {
		case namesOrder(p):
			args[name] = f.OrderID
		case namesCustomer(p):
			args[name] = f.CustomerID
		case !required[name]:
		case len(p.Enum) > 0:
			args[name] = p.Enum[0]
		case p.Type == "integer" && p.Minimum != nil:
			args[name] = int(*p.Minimum)
		case p.Type == "boolean":
			args[name] = false
		default:
			return nil, false
		}
	}
	return args, true
}

// Required returns the arguments of args that the tool's schema requires:
// the smallest call Args can build, for attacks that must also hold when
// an optional argument (a customer id, say) is left out.
func Required(tool tools.Tool, args map[string]any) map[string]any {
	out := map[string]any{}
	if schema, ok := tool.Def().InputSchema.(*jsonschema.Schema); ok {
		for _, r := range schema.Required {
			if v, ok := args[r]; ok {
				out[r] = v
			}
		}
	}
	return out
}

// NamesCustomer reports whether the tool takes an argument naming a
// customer (recognised by its id pattern, as Args recognises it): the
// tools a customer-bound caller could point at another customer.
func NamesCustomer(tool tools.Tool) bool {
	schema, ok := tool.Def().InputSchema.(*jsonschema.Schema)
	if !ok {
		return false
	}
	for _, p := range schema.Properties {
		if namesCustomer(p) {
			return true
		}
	}
	return false
}

func namesOrder(p *jsonschema.Schema) bool    { return strings.HasPrefix(p.Pattern, "^ord_") }
func namesCustomer(p *jsonschema.Schema) bool { return strings.HasPrefix(p.Pattern, "^cus_") }
