package tools

import (
	"context"
	"errors"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/confirm"
)

// A destructive tool (Tool.Destructive: by its annotations, so a new tool
// inherits all of this) acts only when two things hold, both checked by
// Call.Write, the one way a tool writes:
//
//   - the user confirmed it through the client (Call.Confirm), or the
//     operator's CANCEL_CONFIRMATION lets this client act unasked;
//   - the caller's budget for destructive calls (RATE_LIMIT_CANCEL) takes
//     one more call. It is charged here, on the round that acts, and on no
//     other: the round that only asks, the answer that declines, and the
//     answers given at once without a question ("not found", "already
//     cancelled", "no longer cancellable") cost the budget nothing. The MCP
//     layer refuses a caller whose budget is already spent before any round
//     runs, so nobody is asked to confirm what the budget would refuse.
//
// docs/BEYOND-THE-CHECKLIST.md#human-confirmation-of-destructive-calls tells the whole exchange; internal/confirm holds the
// parts that do not depend on a tool.

// Confirmation is what the tools need to ask the user.
type Confirmation struct {
	// Policy is CANCEL_CONFIRMATION.
	Policy confirm.Policy
	// Sealer seals the state a question hands the client and opens it
	// when the answer comes back. Without it no destructive tool acts
	// (unless the policy is off).
	Sealer *confirm.Sealer
}

// OutcomeConfirmationRequested is the audit outcome of a round that asked
// the user to confirm and did nothing else.
const OutcomeConfirmationRequested = "confirmation_requested"

// The refusals of Confirm; the MCP layer maps each to its catalogue entry.
var (
	// ErrCannotAsk: CANCEL_CONFIRMATION is required and this client cannot
	// be asked.
	ErrCannotAsk = errors.New("confirmation required, and this client cannot be asked")
	// ErrDeclined: the user declined, or dismissed the question.
	ErrDeclined = errors.New("the user did not confirm")
)

// declined is ErrDeclined with the answer, for the audit trail.
type declined struct{ answer confirm.Answer }

func (d *declined) Error() string       { return ErrDeclined.Error() }
func (d *declined) Unwrap() error       { return ErrDeclined }
func (d *declined) AuditReason() string { return "the user answered " + string(d.answer) }

// errUnconfirmed means a destructive tool tried to write without Confirm
// having let it: a bug in that tool, and it fails closed.
var errUnconfirmed = errors.New("a destructive tool tried to write without the user's confirmation")

// errNoCharge means a destructive tool ran without the MCP layer's charge
// for its budget: the handler was reached some other way. No write.
var errNoCharge = errors.New("a destructive tool ran without its budget charge")

// errNoSealer means confirmation is on but no sealer was configured.
var errNoSealer = errors.New("confirmation is on but has no sealer")

// question is a handler's way of saying "ask the user first": Define's
// handler turns it into an input-required result.
type question struct {
	requests mcp.InputRequestMap
	state    string
}

func (*question) Error() string { return "the user must confirm first" }

// Confirm asks the user to confirm what the call is about to do, or reads
// the answer this call carries. A destructive tool calls it after its own
// access-bound read, so that "not found", "already done" and "not
// possible" are answered at once and only a real action is asked about.
// message and title are the question: build them from fixed words and
// values the server controls (ids, statuses, counts, amounts), never from
// text a customer or the model typed, and never ask for a secret.
//
// It returns nil when the call may act: the user accepted (this is the
// call that carries the answer), or the policy lets this client act
// unasked (off; if-supported with a client that cannot be asked). It never
// asks again in a call that carries a state or an answer, whatever they
// hold: such a call acts or is refused.
func (c *Call) Confirm(ctx context.Context, message, title string) error {
	conf := c.Deps.Confirmation
	if conf.Policy == confirm.Off {
		c.allow("confirmation off (CANCEL_CONFIRMATION=off)")
		return nil
	}
	if conf.Sealer == nil {
		return errNoSealer
	}
	b, err := c.binding()
	if err != nil {
		return err
	}
	p := c.Request.Params
	if p.RequestState != "" || p.InputResponses != nil {
		return c.answered(ctx, conf.Sealer, b)
	}
	if !confirm.CanAsk(c.Request) {
		if conf.Policy == confirm.IfSupported {
			c.allow("not confirmed: the client cannot be asked (CANCEL_CONFIRMATION=if-supported)")
			return nil
		}
		return ErrCannotAsk
	}
	sealed, _, err := conf.Sealer.Issue(b)
	if err != nil {
		return err
	}
	return &question{requests: confirm.Question(message, title), state: sealed}
}

// answered checks the state and the answer a call carries: the state must
// open for this caller, tool and arguments and not have lapsed, the answer
// must be well formed, and this must be the first answer to the state's
// nonce on any replica (recorded before anything acts, whatever the
// answer, so a "decline" cannot be replayed as an "accept").
func (c *Call) answered(ctx context.Context, s *confirm.Sealer, b confirm.Binding) error {
	p := c.Request.Params
	st, err := s.Open(p.RequestState, b)
	if err != nil {
		return err
	}
	answer, err := confirm.ReadAnswer(p.InputResponses)
	if err != nil {
		return err
	}
	if err := c.Deps.Store.AnswerConfirmation(ctx, st.Nonce, string(answer), st.Expires); err != nil {
		return err
	}
	if answer != confirm.Accept {
		return &declined{answer: answer}
	}
	c.allow("confirmed by the user")
	return nil
}

// binding is what this call's confirmation is bound to.
func (c *Call) binding() (confirm.Binding, error) {
	args, err := confirm.Digest(c.input)
	if err != nil {
		return confirm.Binding{}, err
	}
	return confirm.Binding{Subject: c.Principal.Subject, Customer: c.Principal.CustomerID,
		Tool: c.Request.Params.Name, Arguments: args}, nil
}

// allow lets a destructive tool write, and says why in its audit record.
func (c *Call) allow(because string) { c.confirmed, c.because = true, because }

// ask turns a question into the result that asks it: an input-required
// result with the form and the sealed state. Over 2026-07-28 it goes to
// the client, which retries the call with the answer, and the MCP layer
// records this round when it ends. In an older protocol's session the
// SDK asks the client itself and runs the tool again with the answer,
// all inside this one call: this round's record is written here, now,
// and the answer's round gets a record of its own when the call ends.
func (c *Call) ask(ctx context.Context, q *question) (*mcp.CallToolResult, error) {
	if confirm.InSession(c.Request) {
		if c.record == nil {
			return nil, errNoRecord
		}
		if err := c.record.Round(ctx, OutcomeConfirmationRequested); err != nil {
			return nil, err
		}
	}
	return &mcp.CallToolResult{InputRequests: q.requests, RequestState: q.state}, nil
}

type chargeKey struct{}

// WithCharge hands a destructive tool's handler the function that charges
// the call to the caller's budget for destructive calls. Call.Write runs
// it on the round that acts, and only then.
func WithCharge(ctx context.Context, charge func(context.Context) error) context.Context {
	return context.WithValue(ctx, chargeKey{}, charge)
}

func chargeFrom(ctx context.Context) func(context.Context) error {
	f, _ := ctx.Value(chargeKey{}).(func(context.Context) error)
	return f
}
