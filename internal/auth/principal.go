package auth

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// Scope is a permission a credential carries. It is a type of its own so
// that a tool's declaration can only name scopes this package defines.
type Scope string

// The scopes of the interface contract (docs/ACCESS.md, "Scopes").
const (
	// ScopeRead reads order status and lists orders.
	ScopeRead Scope = "orders:read"
	// ScopeReadAny, together with ScopeRead and no customer binding, makes a
	// caller staff: it may read any customer's orders (still masked).
	ScopeReadAny Scope = "orders:read:any"
	// ScopeCancel cancels orders.
	ScopeCancel Scope = "orders:cancel"
)

// KnownScopes lists every scope the server understands. Keys cannot be
// minted with any other; unknown scopes in a JWT are ignored. (A function,
// not a variable: no caller can widen the list by appending to it.)
func KnownScopes() []Scope { return []Scope{ScopeRead, ScopeReadAny, ScopeCancel} }

// ParseScopes keeps, of names, the scopes this server defines, each once,
// in order; unknown names are dropped.
func ParseScopes(names []string) []Scope {
	out := make([]Scope, 0, len(names))
	for _, n := range names {
		s := Scope(n)
		if slices.Contains(KnownScopes(), s) && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// ScopeNames returns scopes as plain strings, for storage and for messages.
func ScopeNames(scopes []Scope) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = string(s)
	}
	return out
}

// Principal is the authenticated caller of one request. It is rebuilt from
// the credential on every request, on every transport: nothing about a
// caller is remembered between requests.
type Principal struct {
	// Subject identifies the caller stably across requests and credential
	// refreshes: "apikey:<key id>" or "oauth:<issuer>#<sub>".
	Subject string
	// Method is how the caller authenticated: "api_key" or "oauth".
	Method string
	// CredentialID identifies the credential itself (the key id, or the
	// JWT's jti when present), for the audit trail.
	CredentialID string
	// Scopes granted to the credential.
	Scopes []Scope
	// CustomerID binds the caller to one customer; "" means unbound.
	CustomerID string
	// ExpiresAt is when the credential expires; zero means it does not.
	ExpiresAt time.Time
}

// HasScope reports whether p was granted scope.
func (p *Principal) HasScope(scope Scope) bool { return slices.Contains(p.Scopes, scope) }

// MissingScopes returns those of want that p lacks.
func (p *Principal) MissingScopes(want []Scope) []Scope {
	var missing []Scope
	for _, s := range want {
		if !p.HasScope(s) {
			missing = append(missing, s)
		}
	}
	return missing
}

// IsStaff reports whether p is staff: orders:read:any and no customer
// binding. A customer-bound caller is never staff, whatever its scopes.
func (p *Principal) IsStaff() bool { return p.CustomerID == "" && p.HasScope(ScopeReadAny) }

// ErrNoBinding refuses a caller that is neither bound to a customer nor
// staff. Such a caller is not treated as staff by omission: it is refused.
var ErrNoBinding = errors.New("credential is bound to no customer and is not staff")

// Access returns the data binding every statement made for p runs under
// (store.Access). It is the only place a principal becomes a binding, and
// it fails closed.
func (p *Principal) Access() (store.Access, error) {
	switch {
	case p.CustomerID != "":
		return store.CustomerAccess(p.CustomerID), nil
	case p.IsStaff():
		return store.StaffAccess(), nil
	default:
		return store.Access{}, ErrNoBinding
	}
}

type principalKey struct{}

// WithPrincipal returns a context carrying p, for the tool handlers of the
// current call.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal of the current call, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}
