package security_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/example/order-mcp/internal/security"
)

func TestPrincipalAccess(t *testing.T) {
	cus := customerID()
	tests := []struct {
		name      string
		p         security.Principal
		wantCus   string
		wantStaff bool
		wantErr   error
	}{
		{"CustomerBindingReadsOnlyThatCustomer",
			security.Principal{CustomerID: cus, Scopes: []string{security.ScopeRead}}, cus, false, nil},
		{"CustomerBindingWinsOverReadAny",
			security.Principal{CustomerID: cus, Scopes: []string{security.ScopeRead, security.ScopeReadAny}}, cus, false, nil},
		{"ReadAnyWithoutBindingIsStaff",
			security.Principal{Scopes: []string{security.ScopeRead, security.ScopeReadAny}}, "", true, nil},
		{"ReadAnyAloneWithoutBindingIsStaff",
			security.Principal{Scopes: []string{security.ScopeReadAny}}, "", true, nil},
		{"NoBindingAndNoReadAnyIsRefused",
			security.Principal{Scopes: []string{security.ScopeRead, security.ScopeCancel}}, "", false, security.ErrNoBinding},
		{"NoBindingAndNoScopesIsRefused",
			security.Principal{}, "", false, security.ErrNoBinding},
		{"LookalikeOfReadAnyIsRefused",
			security.Principal{Scopes: []string{"orders:read:any ", "ORDERS:READ:ANY", "orders:read:*"}}, "", false, security.ErrNoBinding},
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
	p := &security.Principal{Scopes: []string{security.ScopeRead}}
	if !p.HasScope(security.ScopeRead) || p.HasScope(security.ScopeCancel) {
		t.Fatal("HasScope")
	}
	missing := p.MissingScopes([]string{security.ScopeRead, security.ScopeCancel, security.ScopeReadAny})
	if !slices.Equal(missing, []string{security.ScopeCancel, security.ScopeReadAny}) {
		t.Fatalf("MissingScopes = %v", missing)
	}
	if m := p.MissingScopes([]string{security.ScopeRead}); len(m) != 0 {
		t.Fatalf("MissingScopes = %v, want none", m)
	}
}

func TestPrincipalContext(t *testing.T) {
	if p := security.PrincipalFrom(context.Background()); p != nil {
		t.Fatalf("a context without a principal gave %+v", p)
	}
	p := &security.Principal{Subject: "apikey:x"}
	if got := security.PrincipalFrom(security.WithPrincipal(context.Background(), p)); got != p {
		t.Fatalf("got %+v, want %+v", got, p)
	}
}
