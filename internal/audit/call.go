package audit

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Call is the audit record of one tool call, filled in as the call passes
// through the MCP layer and written exactly once when it ends.
type Call struct {
	writer *Writer
	start  time.Time

	mu      sync.Mutex
	entry   store.AuditEntry
	written bool
	canary  bool // the call reached a canary record (canary.go)
}

// NewCorrelationID returns a fresh id that ties a client-visible error to
// the log lines and the audit record that hold its details.
func NewCorrelationID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

var idEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewRecordID returns a fresh record id: 128 random bits. The trail never
// holds one twice, so a record retried or replayed is recorded once.
func NewRecordID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return strings.ToLower(idEncoding.EncodeToString(b[:]))
}

// NewCall starts the record of a tool call.
func (w *Writer) NewCall(tool, transport, correlationID string) *Call {
	return &Call{
		writer: w,
		start:  time.Now(),
		entry: store.AuditEntry{
			RecordID: NewRecordID(),
			Kind:     "tool_call", Action: tool, Transport: transport, CorrelationID: correlationID,
			Decision: "denied", Outcome: "refused",
		},
	}
}

// SetPrincipal records who is calling.
func (c *Call) SetPrincipal(subject, credentialID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry.Principal, c.entry.CredentialID = subject, credentialID
}

// SetTraceID records the W3C trace id the client sent with the call.
func (c *Call) SetTraceID(traceID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry.TraceID = traceID
}

// SetArguments records the call's arguments, already redacted.
func (c *Call) SetArguments(redactedJSON string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry.Arguments = redactedJSON
}

// Touch records object ids the call read or changed.
func (c *Call) Touch(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry.ObjectIDs = append(c.entry.ObjectIDs, ids...)
}

// Decide records the access decision and, for denials, why.
func (c *Call) Decide(allowed bool, reason string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entry.Decision = "denied"
	if allowed {
		c.entry.Decision = "allowed"
	}
	c.entry.Reason = reason
}

// ForTx returns the record to commit inside a store transaction together
// with the change it describes (store.CancelRequest.Audit), and the sealer
// for it. Call Committed after that transaction commits.
func (c *Call) ForTx() (*store.AuditEntry, store.Sealer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entry
	e.ObjectIDs = append([]string(nil), c.entry.ObjectIDs...)
	e.RecordedAt = time.Now()
	e.LatencyMicros = time.Since(c.start).Microseconds()
	return &e, c.writer.sealer
}

// Committed marks the record as written by a store transaction, so Finish
// does not write it again.
func (c *Call) Committed() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.written = true
}

// Finish writes the record with its outcome, unless a store transaction
// already committed it, and waits for the commit.
func (c *Call) Finish(ctx context.Context, outcome string) error {
	c.mu.Lock()
	if c.written {
		c.mu.Unlock()
		return nil
	}
	c.written = true
	e := c.entry
	e.Outcome = outcome
	e.RecordedAt = time.Now()
	e.LatencyMicros = time.Since(c.start).Microseconds()
	c.mu.Unlock()
	return c.writer.Write(ctx, &e)
}

// errRoundAfterFinish means Round was called on a record already written.
var errRoundAfterFinish = errors.New("audit: a round of a call whose record is already written")

// Round ends one round of a call that goes on within the same request, and
// waits for its record to commit. In an older protocol's session the SDK
// asks the user to confirm a destructive call inside one tools/call and
// runs the tool again with the answer: the round that asked is recorded
// now, with outcome, and this record goes on as the next round's: the same
// caller, transport, arguments, trace and correlation id, a new record id,
// no objects or reason yet, and its latency counted from now.
func (c *Call) Round(ctx context.Context, outcome string) error {
	c.mu.Lock()
	if c.written {
		c.mu.Unlock()
		return errRoundAfterFinish
	}
	e := c.entry
	e.Outcome = outcome
	e.RecordedAt = time.Now()
	e.LatencyMicros = time.Since(c.start).Microseconds()
	c.entry.RecordID = NewRecordID()
	c.entry.ObjectIDs = nil
	c.entry.Reason = ""
	c.start = time.Now()
	c.mu.Unlock()
	return c.writer.Write(ctx, &e)
}

type callKey struct{}

// WithCall returns a context carrying c, for the tool handler.
func WithCall(ctx context.Context, c *Call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// CallFrom returns the call record in ctx, or nil.
func CallFrom(ctx context.Context) *Call {
	c, _ := ctx.Value(callKey{}).(*Call)
	return c
}

// CorrelationID returns the id that ties this call's record to its log
// lines and to the reference an internal error shows the client.
func (c *Call) CorrelationID() string { return c.entry.CorrelationID }
