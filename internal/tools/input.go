package tools

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/google/jsonschema-go/jsonschema"

	"github.com/example/order-mcp/internal/refusal"
)

// InputError is an argument the tool refuses. Its message names the field
// and the rule and never repeats the value, so it is safe to send back to
// the model, which can then correct the call.
type InputError struct {
	Field string
	Rule  string
}

func (e *InputError) Error() string { return refusal.InvalidArgument.Message(e.Field, e.Rule) }

// Ids are prefix_ followed by 16 Crockford base32 characters (digits and
// capital letters without I, L, O, U). They are ASCII by construction, so
// there is nothing to normalise: anything else is refused.
const (
	idBody            = `[0-9A-HJKMNP-TV-Z]{16}`
	orderIDPattern    = `^ord_` + idBody + `$`
	customerIDPattern = `^cus_` + idBody + `$`
	idLength          = 20
	orderIDRule       = `must be "ord_" followed by 16 characters from 0-9 and A-Z without I, L, O or U.`
	customerIDRule    = `must be "cus_" followed by 16 characters from 0-9 and A-Z without I, L, O or U.`
)

var (
	orderIDRE    = regexp.MustCompile(orderIDPattern)
	customerIDRE = regexp.MustCompile(customerIDPattern)
)

// OrderID is a validated order id. The only way to make one is
// ParseOrderID, so a handler holding an OrderID holds a valid one.
type OrderID struct{ s string }

// ParseOrderID validates s as an order id.
func ParseOrderID(s string) (OrderID, error) {
	if len(s) != idLength || !orderIDRE.MatchString(s) {
		return OrderID{}, &InputError{Field: "order_id", Rule: orderIDRule}
	}
	return OrderID{s}, nil
}

func (id OrderID) String() string { return id.s }

// CustomerID is a validated customer id.
type CustomerID struct{ s string }

// ParseCustomerID validates s as a customer id.
func ParseCustomerID(s string) (CustomerID, error) {
	if len(s) != idLength || !customerIDRE.MatchString(s) {
		return CustomerID{}, &InputError{Field: "customer_id", Rule: customerIDRule}
	}
	return CustomerID{s}, nil
}

func (id CustomerID) String() string { return id.s }

// Schema builders. The go-sdk infers schemas from Go types, but its
// jsonschema struct tag carries only a description, so the constraints are
// built here, explicitly, and each input type's schema function sits next
// to the type.

// strictObject is an object schema that refuses properties it does not
// name.
func strictObject(props map[string]*jsonschema.Schema, required ...string) *jsonschema.Schema {
	return &jsonschema.Schema{
		Type:                 "object",
		Properties:           props,
		Required:             required,
		AdditionalProperties: &jsonschema.Schema{Not: &jsonschema.Schema{}},
	}
}

func idSchema(pattern, description string) *jsonschema.Schema {
	n := idLength
	return &jsonschema.Schema{Type: "string", Pattern: pattern, MinLength: &n, MaxLength: &n, Description: description}
}

func enumSchema(description string, def string, values ...string) *jsonschema.Schema {
	s := &jsonschema.Schema{Type: "string", Description: description}
	for _, v := range values {
		s.Enum = append(s.Enum, v)
	}
	if def != "" {
		s.Default = json.RawMessage(`"` + def + `"`)
	}
	return s
}

func intSchema(description string, min, max, def int) *jsonschema.Schema {
	lo, hi := float64(min), float64(max)
	return &jsonschema.Schema{Type: "integer", Minimum: &lo, Maximum: &hi, Description: description,
		Default: json.RawMessage(fmt.Sprint(def))}
}

// decodeInput decodes raw arguments into In and validates them against
// schema and In's domain rules, returning an *InputError with fixed text.
// The MCP layer runs it instead of the SDK's schema validation, whose
// errors quote the offending value (`pattern: "<value>" does not match
// ...`) and would hand attacker text back to the model. The accepted and
// required arguments are the schema's, so nothing repeats its property
// names. Unknown keys are found on the raw object, because encoding/json
// would match "ORDER_ID" to order_id case-insensitively. It is at least as
// strict as the schema: a fuzz test holds it to that.
func decodeInput[In input](raw json.RawMessage, schema *jsonschema.Schema) (In, error) {
	var in In
	if len(raw) == 0 || string(raw) == "null" {
		raw = json.RawMessage("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err != nil {
		return in, &InputError{Field: "arguments", Rule: "must be a JSON object."}
	}
	for name, value := range fields {
		if _, known := schema.Properties[name]; !known {
			return in, &InputError{Field: "arguments", Rule: "unknown argument; accepted arguments are " + accepted(schema) + "."}
		}
		if string(value) == "null" { // the schema refuses null: so does this check
			return in, &InputError{Field: name, Rule: "must not be null; omit it instead."}
		}
	}
	for _, name := range schema.Required {
		if _, present := fields[name]; !present {
			return in, &InputError{Field: name, Rule: "required."}
		}
	}
	if err := json.Unmarshal(raw, &in); err != nil {
		return in, &InputError{Field: "arguments", Rule: "an argument has the wrong type; see the tool's input schema."}
	}
	return in, in.validate()
}

// accepted lists a schema's properties, sorted, for the message.
func accepted(schema *jsonschema.Schema) string {
	names := make([]string, 0, len(schema.Properties))
	for name := range schema.Properties {
		names = append(names, name)
	}
	slices.Sort(names)
	return strings.Join(names, ", ")
}
