package testenv

import (
	"context"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// A test client is what a user's MCP client would be, user included: it
// declares form elicitation and its user accepts every confirmation the
// server asks for (Accept), unless the test says otherwise. So every test
// that cancels an order runs through the confirmation the production
// default (CANCEL_CONFIRMATION=required) demands; nothing turns that off
// to make a test pass.

// Answer is how a test client's user answers a confirmation.
type Answer func(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error)

// Accept ticks "confirm" and submits the form: the default user.
func Accept(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	return &mcp.ElicitResult{Action: "accept", Content: map[string]any{"confirm": true}}, nil
}

// Decline declines the form.
func Decline(context.Context, *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
	return &mcp.ElicitResult{Action: "decline"}, nil
}

// Client describes a test client.
type Client struct {
	// Version is the protocol version the client asks for; "" is the
	// go-sdk's default (2026-07-28).
	Version string
	// Answer answers confirmations; nil means Accept.
	Answer Answer
	// NoElicitation makes a client that declares no elicitation capability
	// (as Claude Desktop at the time of writing): it cannot be asked.
	NoElicitation bool
	// Questions, when set, records every question the client was asked.
	Questions *Questions
	// ByHand turns off the go-sdk client's own handling of input-required
	// results (2026-07-28): CallTool returns them, and the test sends the
	// retry itself, with whatever state and answer it wants to try. The
	// client still declares form elicitation.
	ByHand bool
}

// Questions records the confirmations a client was asked.
type Questions struct {
	mu   sync.Mutex
	list []*mcp.ElicitParams
}

// All returns the questions asked so far.
func (q *Questions) All() []*mcp.ElicitParams {
	q.mu.Lock()
	defer q.mu.Unlock()
	return append([]*mcp.ElicitParams(nil), q.list...)
}

func (q *Questions) add(p *mcp.ElicitParams) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.list = append(q.list, p)
}

// options are the go-sdk client options for c.
func (c Client) options() *mcp.ClientOptions {
	if c.NoElicitation {
		return nil
	}
	answer := c.Answer
	if answer == nil {
		answer = Accept
	}
	opts := &mcp.ClientOptions{ElicitationHandler: func(ctx context.Context, req *mcp.ElicitRequest) (*mcp.ElicitResult, error) {
		if c.Questions != nil {
			c.Questions.add(req.Params)
		}
		return answer(ctx, req)
	}}
	if c.ByHand {
		opts.MultiRoundTrip = &mcp.MultiRoundTripOptions{Disabled: true}
	}
	return opts
}
