package auth_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/dbtest"
	"github.com/example/order-mcp/internal/store"
	"github.com/example/order-mcp/internal/testenv"
)

func TestAuthenticateAcceptsValidAPIKeys(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	logger, logs := testLogger()
	authn := auth.NewAuthenticator(dbtest.App(t, dsn, store.Options{}), nil, logger)
	cus := customerID()
	future := time.Now().Add(time.Hour).Truncate(time.Microsecond)

	tests := []struct {
		name       string
		opts       dbtest.KeyOptions
		wantScopes []auth.Scope
		wantStaff  bool
	}{
		{"CustomerKeyBindsTheCustomer",
			dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeCancel}},
			[]auth.Scope{auth.ScopeRead, auth.ScopeCancel}, false},
		{"StaffKeyWithReadAnyAndNoCustomerIsStaff",
			dbtest.KeyOptions{Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeReadAny}},
			[]auth.Scope{auth.ScopeRead, auth.ScopeReadAny}, true},
		{"CustomerKeyWithReadAnyIsStillOnlyTheCustomer",
			dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeReadAny}},
			[]auth.Scope{auth.ScopeRead, auth.ScopeReadAny}, false},
		{"UnknownScopesInTheDatabaseAreDropped",
			dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{"admin", auth.ScopeRead, "orders:*", auth.ScopeRead, ""}},
			[]auth.Scope{auth.ScopeRead}, false},
		{"KeyThatExpiresLaterIsAcceptedUntilThen",
			dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead}, ExpiresAt: &future},
			[]auth.Scope{auth.ScopeRead}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			key, id := dbtest.MintKey(t, owner, tt.opts)
			p, err := authn.Authenticate(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if p.Subject != "apikey:"+id || p.Method != "api_key" || p.CredentialID != id {
				t.Errorf("principal %+v, want subject apikey:%s", p, id)
			}
			if !slices.Equal(p.Scopes, tt.wantScopes) {
				t.Errorf("scopes %v, want %v", p.Scopes, tt.wantScopes)
			}
			if p.CustomerID != tt.opts.CustomerID || p.IsStaff() != tt.wantStaff {
				t.Errorf("customer %q staff %v, want %q %v", p.CustomerID, p.IsStaff(), tt.opts.CustomerID, tt.wantStaff)
			}
			if tt.opts.ExpiresAt != nil && !p.ExpiresAt.Equal(*tt.opts.ExpiresAt) {
				t.Errorf("expires %v, want %v", p.ExpiresAt, *tt.opts.ExpiresAt)
			}
			if tt.opts.ExpiresAt == nil && !p.ExpiresAt.IsZero() {
				t.Errorf("expires %v, want never", p.ExpiresAt)
			}
			assertNoLeak(t, []string{key, secretOf(key)}, logs.String())
		})
	}
}

func TestAuthenticateRefusesBadAPIKeys(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	logger, logs := testLogger()
	authn := auth.NewAuthenticator(dbtest.App(t, dsn, store.Options{}), nil, logger)
	cus := customerID()
	past := time.Now().Add(-time.Minute)

	realKey, realID := dbtest.MintKey(t, owner, dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead}})
	otherKey, _ := dbtest.MintKey(t, owner, dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead}})
	unstored := newKey(t)

	tests := []struct {
		name string
		// credential returns the credential to present and the key id the
		// refusal must name ("" for none).
		credential func(t *testing.T) (credential, keyID string)
		reason     string
	}{
		{"UnknownKeyIDIsRefused", func(t *testing.T) (string, string) {
			return unstored.Key, unstored.KeyID
		}, "unknown api key"},
		{"WrongSecretForARealKeyIDIsRefused", func(t *testing.T) (string, string) {
			return "osmcp_" + realID + "_" + secretOf(unstored.Key), realID
		}, "wrong api key secret"},
		{"AnotherKeysSecretUnderARealKeyIDIsRefused", func(t *testing.T) (string, string) {
			return "osmcp_" + realID + "_" + secretOf(otherKey), realID
		}, "wrong api key secret"},
		{"RealSecretWithOneCharacterChangedIsRefused", func(t *testing.T) (string, string) {
			// The last character but one: the last carries only one bit, and
			// most changes to it make a spelling no key has (malformed).
			b := []byte(realKey)
			if i := len(b) - 2; b[i] == 'a' {
				b[i] = 'b'
			} else {
				b[i] = 'a'
			}
			return string(b), realID
		}, "wrong api key secret"},
		{"ExpiredKeyIsRefused", func(t *testing.T) (string, string) {
			return dbtest.MintKey(t, owner, dbtest.KeyOptions{CustomerID: cus, Scopes: []auth.Scope{auth.ScopeRead}, ExpiresAt: &past})
		}, "api key expired"},
		{"KeyWithNoCustomerAndNoReadAnyIsRefused", func(t *testing.T) (string, string) {
			return dbtest.MintKey(t, owner, dbtest.KeyOptions{Scopes: []auth.Scope{auth.ScopeRead, auth.ScopeCancel}})
		}, "api key bound to no customer and not staff"},
		{"KeyWithReadAnyOnlyAmongUnknownScopesStillNeedsIt", func(t *testing.T) (string, string) {
			return dbtest.MintKey(t, owner, dbtest.KeyOptions{Scopes: []auth.Scope{auth.ScopeRead, "orders:read:any "}})
		}, "api key bound to no customer and not staff"},
		{"EmptyCredentialIsRefused", func(t *testing.T) (string, string) { return "", "" }, "malformed credential"},
		{"GarbageIsRefused", func(t *testing.T) (string, string) { return "garbage", "" }, "malformed credential"},
		{"UppercaseKeyIsRefused", func(t *testing.T) (string, string) { return strings.ToUpper(realKey), "" }, "malformed credential"},
		{"PrefixAloneIsRefused", func(t *testing.T) (string, string) { return "osmcp_", "" }, "malformed api key"},
		{"TruncatedKeyIsRefused", func(t *testing.T) (string, string) { return realKey[:len(realKey)-1], "" }, "malformed api key"},
		{"KeyIDWithoutSecretIsRefused", func(t *testing.T) (string, string) { return "osmcp_" + realID + "_", "" }, "malformed api key"},
		{"WrongAlphabetIsRefused", func(t *testing.T) (string, string) {
			return "osmcp_" + realID + "_" + strings.ToUpper(secretOf(realKey)), ""
		}, "malformed api key"},
		{"ExtraUnderscoresAreRefused", func(t *testing.T) (string, string) {
			s := secretOf(realKey)
			return "osmcp_" + realID + "_" + s[:10] + "_" + s[11:], ""
		}, "malformed api key"},
		{"SQLInTheKeyIDIsRefused", func(t *testing.T) (string, string) {
			return "osmcp_' OR ''='_" + secretOf(realKey), ""
		}, "malformed api key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			credential, keyID := tt.credential(t)
			p, err := authn.Authenticate(ctx, credential)
			if p != nil {
				t.Fatalf("accepted as %+v", p)
			}
			secrets := []string{credential}
			if i := strings.LastIndex(credential, "_"); i >= 0 && len(credential)-i > 8 {
				secrets = append(secrets, credential[i+1:])
			}
			ae := refusedWith(t, err, tt.reason, secrets...)
			if ae.KeyID != keyID {
				t.Errorf("key id %q, want %q", ae.KeyID, keyID)
			}
			assertNoLeak(t, secrets, logs.String())
		})
	}
}

func TestAuthenticateRevokedKeyIsRefusedAtTheNextCall(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	logger, logs := testLogger()
	authn := auth.NewAuthenticator(dbtest.App(t, dsn, store.Options{}), nil, logger)
	key, id := dbtest.MintKey(t, owner, dbtest.KeyOptions{CustomerID: customerID(), Scopes: []auth.Scope{auth.ScopeRead}})

	if _, err := authn.Authenticate(ctx, key); err != nil {
		t.Fatalf("before revocation: %v", err)
	}
	if err := owner.RevokeAPIKey(ctx, id); err != nil {
		t.Fatal(err)
	}
	p, err := authn.Authenticate(ctx, key)
	if p != nil {
		t.Fatalf("revoked key accepted as %+v", p)
	}
	ae := refusedWith(t, err, "api key revoked", key, secretOf(key))
	if ae.KeyID != id {
		t.Errorf("key id %q, want %q", ae.KeyID, id)
	}
	assertNoLeak(t, []string{key, secretOf(key)}, logs.String())
}

func TestAuthenticateDatabaseDownIsNotABadCredential(t *testing.T) {
	// An outage must not count as a failed attempt (that would lock every
	// client out) nor let anyone in.
	owner := dbtest.Owner(t, dsn)
	key, _ := dbtest.MintKey(t, owner, dbtest.KeyOptions{CustomerID: customerID(), Scopes: []auth.Scope{auth.ScopeRead}})
	app := dbtest.App(t, dsn, store.Options{})
	logger, logs := testLogger()
	authn := auth.NewAuthenticator(app, nil, logger)
	app.Close()

	p, err := authn.Authenticate(context.Background(), key)
	if p != nil {
		t.Fatalf("accepted with the database down: %+v", p)
	}
	var ae *auth.AuthError
	if err == nil || errors.As(err, &ae) || errors.Is(err, auth.ErrInvalidCredential) {
		t.Fatalf("err %v, want an infrastructure error that is not a refused credential", err)
	}
	assertNoLeak(t, []string{key, secretOf(key)}, err.Error(), logs.String())
}

func TestAuthenticateRoutesJWTsToTheTokenVerifier(t *testing.T) {
	ctx := context.Background()
	issuer := testenv.NewIssuer(t)
	app := dbtest.App(t, dsn, store.Options{})
	logger, _ := testLogger()
	token := issuer.Token(t, with(issuer.Claims(audience, "user-1", auth.ScopeRead), "customer_id", customerID()))

	t.Run("JWTIsVerifiedWhenOAuthIsConfigured", func(t *testing.T) {
		authn := auth.NewAuthenticator(app, issuer.Verifier(t, audience), logger)
		p, err := authn.Authenticate(ctx, token)
		if err != nil {
			t.Fatal(err)
		}
		if p.Method != "oauth" || p.CustomerID != customerID() {
			t.Fatalf("principal %+v", p)
		}
	})
	t.Run("JWTForAnotherAudienceIsRefused", func(t *testing.T) {
		authn := auth.NewAuthenticator(app, issuer.Verifier(t, "https://other.example/mcp"), logger)
		p, err := authn.Authenticate(ctx, token)
		if p != nil {
			t.Fatalf("accepted as %+v", p)
		}
		refusedWith(t, err, "jwt: wrong audience", jwtParts(token)...)
	})
	t.Run("JWTIsRefusedWhenOAuthIsNotConfigured", func(t *testing.T) {
		authn := auth.NewAuthenticator(app, nil, logger)
		p, err := authn.Authenticate(ctx, token)
		if p != nil {
			t.Fatalf("accepted as %+v", p)
		}
		refusedWith(t, err, "malformed credential", jwtParts(token)...)
	})
}

// TestAuthenticateChecksACachedKeyAtEveryUse: a key answered from the
// cache is still checked against the presented secret and its expiry at
// the time of each call, with no database read.
func TestAuthenticateChecksACachedKeyAtEveryUse(t *testing.T) {
	ctx := context.Background()
	owner := dbtest.Owner(t, dsn)
	var lookups atomic.Int64
	s := dbtest.App(t, dsn, store.Options{Observe: func(e store.QueryEvent) {
		if e.Name == "lookup_api_key" {
			lookups.Add(1)
		}
	}})
	w := s.NewWatcher(nil)
	cache := store.NewKeyCache(s, w, time.Hour, nil)
	w.Start()
	t.Cleanup(w.Close)
	for deadline := time.Now().Add(20 * time.Second); !w.Healthy(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the watcher never listened")
		}
	}
	logger, logs := testLogger()
	authn := auth.NewAuthenticator(cache, nil, logger)
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	authn.SetClock(func() time.Time { return time.Unix(0, now.Load()) })
	expires := time.Now().Add(time.Hour)
	key, _ := dbtest.MintKey(t, owner, dbtest.KeyOptions{CustomerID: customerID(), Scopes: []auth.Scope{auth.ScopeRead}, ExpiresAt: &expires})

	if _, err := authn.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	if _, err := authn.Authenticate(ctx, key); err != nil {
		t.Fatal(err)
	}
	// The same key id with another secret: refused although the key is cached.
	i := strings.LastIndexByte(key, '_') + 1
	swap := byte('a')
	if key[i] == 'a' {
		swap = 'b'
	}
	wrong := key[:i] + string(swap) + key[i+1:]
	_, err := authn.Authenticate(ctx, wrong)
	refusedWith(t, err, "wrong api key secret", key, secretOf(key))
	now.Add(int64(2 * time.Hour))
	_, err = authn.Authenticate(ctx, key)
	refusedWith(t, err, "api key expired", key, secretOf(key))
	if n := lookups.Load(); n != 1 {
		t.Fatalf("%d database lookups, want 1: the rest come from the cache", n)
	}
	assertNoLeak(t, []string{key, secretOf(key)}, logs.String())
}
