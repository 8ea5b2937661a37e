package confirm

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// TTL is how long a question may wait for its answer. A few minutes: long
// enough for a person to read the form, short enough that a state copied
// out of a log or a client's memory is soon worthless.
const TTL = 5 * time.Minute

// stateVersion prefixes every sealed state, so a later format can be told
// apart (and this one refused) without guessing.
const stateVersion = "v1."

// maxStateLen bounds what Open decodes: a sealed state is a few hundred
// bytes, and anything much longer is not one of ours.
const maxStateLen = 2048

// keyLabel separates the key this package derives from CONFIRMATION_SECRET
// from any other use of the same secret; aad binds every sealed state to
// this purpose and format.
const (
	keyLabel = "order-mcp confirmation state key v1"
	aad      = "order-mcp/confirmation-state/v1"
)

// Binding is what a confirmation is for: who asked, with which data
// binding, which tool, with which arguments. A state opens only for the
// binding it was issued for.
type Binding struct {
	// Subject is the caller's stable identity (auth.Principal.Subject).
	Subject string
	// Customer is the customer the caller is bound to; "" for staff.
	Customer string
	// Tool is the tool's name.
	Tool string
	// Arguments is a digest of the call's canonical arguments (Digest).
	Arguments [sha256.Size]byte
}

// Digest is the digest of a call's arguments in canonical form: the
// decoded, validated input, marshalled again by encoding/json (fields in
// declaration order, no insignificant whitespace), so two spellings of
// the same arguments agree and any other arguments do not.
func Digest(canonical any) ([sha256.Size]byte, error) {
	b, err := json.Marshal(canonical)
	if err != nil {
		return [sha256.Size]byte{}, fmt.Errorf("digest of the arguments: %w", err)
	}
	return sha256.Sum256(b), nil
}

// State is an issued confirmation, as Open returns it.
type State struct {
	Binding
	// Nonce names the confirmation: 128 random bits, base64url. Its first
	// answer is recorded once, in Postgres (confirmation_nonces).
	Nonce string
	// Expires is when the question lapses.
	Expires time.Time
}

// The ways a state is refused. Each is an *Error; test with errors.Is.
var (
	// ErrInvalid: the state was forged or altered, or issued for another
	// caller, customer, tool or arguments, or the answer is missing or
	// malformed. The client is told only that it does not fit this call.
	ErrInvalid = errors.New("confirmation state invalid")
	// ErrExpired: the state is authentic but its question lapsed.
	ErrExpired = errors.New("confirmation expired")
)

// Error is a refused state, with the precise reason for the audit trail
// (the client sees only the kind).
type Error struct {
	Kind   error // ErrInvalid or ErrExpired
	Reason string
}

func (e *Error) Error() string          { return e.Kind.Error() + ": " + e.Reason }
func (e *Error) Unwrap() error          { return e.Kind }
func (e *Error) AuditReason() string    { return e.Reason }
func invalid(reason string) *Error      { return &Error{Kind: ErrInvalid, Reason: reason} }
func expiredError(reason string) *Error { return &Error{Kind: ErrExpired, Reason: reason} }

// Sealer seals and opens confirmation states under one secret.
type Sealer struct {
	aead cipher.AEAD
	now  func() time.Time
}

// NewSealer returns a Sealer keyed by secret (CONFIRMATION_SECRET, at least
// 32 bytes): AES-256-GCM under a key derived from it with HKDF-SHA256.
// now is the clock that sets and checks expiries (time.Now in production;
// tests move it).
func NewSealer(secret []byte, now func() time.Time) (*Sealer, error) {
	if len(secret) < 32 {
		return nil, errors.New("confirmation secret: at least 32 bytes")
	}
	if now == nil {
		now = time.Now
	}
	key, err := hkdf.Key(sha256.New, secret, nil, keyLabel, 32)
	if err != nil {
		return nil, fmt.Errorf("confirmation secret: %w", err)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &Sealer{aead: aead, now: now}, nil
}

// DevelopmentSecret is the fixed, public secret used in development when
// CONFIRMATION_SECRET is not set. Anyone can forge a state sealed with it:
// it is never used outside development.
func DevelopmentSecret() []byte {
	sum := sha256.Sum256([]byte("order-mcp public development confirmation secret"))
	return sum[:]
}

// RandomSecret is a secret for one process that answers its own questions
// (stdio): no other process can open what it seals.
func RandomSecret() []byte {
	b := make([]byte, 32)
	_, _ = rand.Read(b)
	return b
}

// payload is what a sealed state carries, encrypted and authenticated.
type payload struct {
	Subject   string `json:"sub"`
	Customer  string `json:"cus"`
	Tool      string `json:"tool"`
	Arguments []byte `json:"args"`
	Nonce     string `json:"n"`
	Expires   int64  `json:"exp"` // Unix seconds
}

// Issue seals a new state for b: a fresh nonce, expiring TTL from now.
func (s *Sealer) Issue(b Binding) (sealed string, st State, err error) {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return "", State{}, err
	}
	st = State{Binding: b, Nonce: base64.RawURLEncoding.EncodeToString(n[:]), Expires: s.now().Add(TTL).Truncate(time.Second)}
	plain, err := json.Marshal(payload{
		Subject: b.Subject, Customer: b.Customer, Tool: b.Tool, Arguments: b.Arguments[:],
		Nonce: st.Nonce, Expires: st.Expires.Unix(),
	})
	if err != nil {
		return "", State{}, err
	}
	iv := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(iv); err != nil {
		return "", State{}, err
	}
	box := s.aead.Seal(iv, iv, plain, []byte(aad))
	return stateVersion + base64.RawURLEncoding.EncodeToString(box), st, nil
}

// Open authenticates and decrypts a state the client handed back and
// checks it against the call it came with. It refuses, with an *Error, a
// state that is not one of ours or was altered (ErrInvalid), one issued
// for another caller, customer, tool or arguments (ErrInvalid, with the
// reason), and one whose question lapsed (ErrExpired). It does not know
// whether the state was answered before: that is recorded in Postgres.
func (s *Sealer) Open(sealed string, want Binding) (State, error) {
	body, ok := strings.CutPrefix(sealed, stateVersion)
	if !ok || len(sealed) > maxStateLen {
		return State{}, invalid("not a state this server issued")
	}
	// Strict: a state has one spelling (no set padding bits), so an
	// altered character is never read as the same state.
	box, err := base64.RawURLEncoding.Strict().DecodeString(body)
	if err != nil || len(box) < s.aead.NonceSize()+s.aead.Overhead() {
		return State{}, invalid("not a state this server issued")
	}
	iv, ct := box[:s.aead.NonceSize()], box[s.aead.NonceSize():]
	plain, err := s.aead.Open(nil, iv, ct, []byte(aad))
	if err != nil {
		return State{}, invalid("forged or altered (does not authenticate under CONFIRMATION_SECRET)")
	}
	var p payload
	if err := json.Unmarshal(plain, &p); err != nil || len(p.Arguments) != sha256.Size || p.Nonce == "" {
		return State{}, invalid("authentic but malformed")
	}
	st := State{
		Binding: Binding{Subject: p.Subject, Customer: p.Customer, Tool: p.Tool},
		Nonce:   p.Nonce, Expires: time.Unix(p.Expires, 0),
	}
	copy(st.Arguments[:], p.Arguments)
	switch {
	case st.Subject != want.Subject:
		return State{}, invalid("issued to another caller")
	case st.Customer != want.Customer:
		return State{}, invalid("issued for another customer binding")
	case st.Tool != want.Tool:
		return State{}, invalid("issued for another tool")
	case subtle.ConstantTimeCompare(st.Arguments[:], want.Arguments[:]) != 1:
		return State{}, invalid("issued for other arguments")
	case !s.now().Before(st.Expires):
		return State{}, expiredError("answered after the question lapsed")
	}
	return st, nil
}
