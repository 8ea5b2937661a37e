package auth_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/example/order-mcp/internal/auth"
)

func TestPrincipalAccess(t *testing.T) {
	cus := customerID()
	tests := []struct {
		name      string
		p         auth.Principal
		wantCus   string
		wantStaff bool
		wantErr   error
	}{
		{"CustomerBindingReadsOnlyThatCustomer",
			auth.Principal{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead}}, cus, false, nil},
		{"CustomerBindingWinsOverReadAny",
			auth.Principal{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeReadAny}}, cus, false, nil},
		{"ReadAnyWithoutBindingIsStaff",
			auth.Principal{Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeReadAny}}, "", true, nil},
		{"ReadAnyAloneWithoutBindingIsStaff",
			auth.Principal{Scopes: []auth.Scope{auth.ScopeReadAny}}, "", true, nil},
		{"NoBindingAndNoReadAnyIsRefused",
			auth.Principal{Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeCancel}}, "", false, auth.ErrNoBinding},
		{"NoBindingAndNoScopesIsRefused",
			auth.Principal{}, "", false, auth.ErrNoBinding},
		{"LookalikeOfReadAnyIsRefused",
			auth.Principal{Scopes: []auth.Scope{"orders:read:any ", "ORDERS:READ:ANY", "orders:read:*"}}, "", false, auth.ErrNoBinding},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := tt.p.Access()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err %v, want %v", err, tt.wantErr)
			}
			if a.CustomerID() != tt.wantCus || a.IsStaff() != tt.wantStaff || tt.p.IsStaff() != tt.wantStaff {
				t.Fatalf("access customer %q staff %v (principal staff %v), want %q %v",
					a.CustomerID(), a.IsStaff(), tt.p.IsStaff(), tt.wantCus, tt.wantStaff)
			}
		})
	}
}

func TestPrincipalScopes(t *testing.T) {
	p := &auth.Principal{Scopes: []auth.Scope{auth.ScopeRead}}
	if !p.HasScope(auth.ScopeRead) || p.HasScope(auth.ScopeCancel) {
		t.Fatal("HasScope")
	}
	missing := p.MissingScopes([]auth.Scope{auth.ScopeRead, auth.ScopeCancel, auth.ScopeReadAny})
	if !slices.Equal(missing, []auth.Scope{auth.ScopeCancel, auth.ScopeReadAny}) {
		t.Fatalf("MissingScopes = %v", missing)
	}
	if m := p.MissingScopes([]auth.Scope{auth.ScopeRead}); len(m) != 0 {
		t.Fatalf("MissingScopes = %v, want none", m)
	}
}

func TestPrincipalContext(t *testing.T) {
	if p := auth.PrincipalFrom(context.Background()); p != nil {
		t.Fatalf("a context without a principal gave %+v", p)
	}
	p := &auth.Principal{Subject: "apikey:x"}
	if got := auth.PrincipalFrom(auth.WithPrincipal(context.Background(), p)); got != p {
		t.Fatalf("got %+v, want %+v", got, p)
	}
}
