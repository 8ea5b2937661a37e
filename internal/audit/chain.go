package audit

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Sealer computes chain links with HMAC-SHA256 under a key the database
// never sees. It implements store.Sealer.
type Sealer struct{ key []byte }

// NewSealer returns a Sealer for key, which must hold at least 32 bytes.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) < 32 {
		return nil, fmt.Errorf("audit HMAC key must be at least 32 bytes, got %d", len(key))
	}
	return &Sealer{key: bytes.Clone(key)}, nil
}

// Seal returns the HMAC of e's content chained to e.PrevHMAC.
func (s *Sealer) Seal(e *store.AuditEntry) []byte {
	mac := hmac.New(sha256.New, s.key)
	mac.Write(e.PrevHMAC)
	mac.Write(canonical(e))
	return mac.Sum(nil)
}

// canonical is the byte string a row's HMAC covers: every column but the
// two links, in a fixed order, with the time at the microsecond precision
// Postgres stores.
func canonical(e *store.AuditEntry) []byte {
	b, _ := json.Marshal([]any{
		e.Seq, e.RecordedAt.UTC().Truncate(time.Microsecond).Format(time.RFC3339Nano), e.Kind,
		e.Principal, e.CredentialID, e.Transport, e.Action, e.ObjectIDs, e.Decision, e.Outcome,
		e.Reason, e.Source, e.Count, e.LatencyMicros, e.CorrelationID, e.Arguments,
	})
	return b
}

// Reader reads the trail in chain order.
type Reader interface {
	ReadAudit(ctx context.Context, fn func(*store.AuditEntry) error) error
}

// VerifyReport is the result of Verify.
type VerifyReport struct {
	// Entries is how many rows were read.
	Entries int64
	// FirstBad is the seq of the first row that breaks the chain, or 0 when
	// the chain is intact.
	FirstBad int64
	// Problem says how it is broken.
	Problem string
	// HeadSeq and HeadHMAC identify the newest row of an intact chain.
	// Recorded elsewhere, they anchor the chain: a later verify whose
	// chain no longer passes through them shows the newest rows were cut.
	HeadSeq  int64
	HeadHMAC []byte
}

// Verify walks the whole trail and reports the first row that was edited,
// inserted, deleted or reordered. Truncating the newest rows cannot be
// detected from the table alone; the README explains how to anchor the head.
func Verify(ctx context.Context, r Reader, s *Sealer) (VerifyReport, error) {
	var (
		rep  VerifyReport
		prev = store.GenesisHMAC()
		seq  int64
	)
	err := r.ReadAudit(ctx, func(e *store.AuditEntry) error {
		rep.Entries++
		seq++
		if rep.FirstBad != 0 {
			return nil
		}
		switch {
		case e.Seq != seq:
			rep.FirstBad, rep.Problem = e.Seq, fmt.Sprintf("expected seq %d: a row is missing or was inserted", seq)
		case !hmac.Equal(e.PrevHMAC, prev):
			rep.FirstBad, rep.Problem = e.Seq, "its link to the previous row does not match"
		case !hmac.Equal(e.HMAC, s.Seal(e)):
			rep.FirstBad, rep.Problem = e.Seq, "its content does not match its HMAC"
		}
		prev = e.HMAC
		return nil
	})
	if rep.FirstBad == 0 && rep.Entries > 0 {
		rep.HeadSeq, rep.HeadHMAC = seq, prev
	}
	return rep, err
}
