package auth

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/example/order-mcp/internal/store"
)

// ErrInvalidCredential is what every refused credential unwraps to. Clients
// learn nothing more than this (HTTP 401 with error="invalid_token"); the
// AuthError's reason goes to the log and the audit trail.
var ErrInvalidCredential = errors.New("invalid credential")

// AuthError is a refused credential and why it was refused.
type AuthError struct {
	// Reason is a short fixed phrase ("unknown key", "revoked", "jwt:
	// wrong audience"...). It never contains the credential.
	Reason string
	// KeyID is the key id the credential named, when it was shaped like one
	// of our API keys. The brute-force lockout keys on it.
	KeyID string
	// KeyExists reports that a key with that id exists (the secret was
	// wrong, or the key is revoked or expired). It is for the log only: the
	// lockout counts every failure alike, so that it tells nobody which
	// key ids exist.
	KeyExists bool
}

func (e *AuthError) Error() string        { return "invalid credential: " + e.Reason }
func (e *AuthError) Is(target error) bool { return target == ErrInvalidCredential }

// KeyStore is what authentication needs from the database.
type KeyStore interface {
	LookupAPIKey(ctx context.Context, keyID string) (store.APIKey, error)
	TouchAPIKey(ctx context.Context, keyID string) error
}

// TokenVerifier verifies bearer tokens that are not API keys (OAuth JWTs,
// oauth.go). Its errors must unwrap to ErrInvalidCredential when the token
// is bad.
type TokenVerifier interface {
	Verify(ctx context.Context, token string) (*Principal, error)
}

// Authenticator turns a presented credential into a Principal.
//
// Checklist: "Authentication: restrict access to authorized clients" and
// "require API keys or bearer tokens for any client". It is called for every
// HTTP request and, over stdio, for every tools/list and tools/call, so a
// revoked or expired key stops working at the next call, without a restart.
type Authenticator struct {
	keys   KeyStore
	tokens TokenVerifier // nil when OAuth is not configured
	now    func() time.Time
	logger *slog.Logger

	touched sync.Map // key id -> time of the last recorded use, to write it at most once a minute
}

// NewAuthenticator returns an Authenticator over keys and, when tokens is
// not nil, OAuth bearer tokens as well.
func NewAuthenticator(keys KeyStore, tokens TokenVerifier, logger *slog.Logger) *Authenticator {
	return &Authenticator{keys: keys, tokens: tokens, now: time.Now, logger: logger}
}

// SetClock replaces the clock that expiry is checked against (tests; nil:
// time.Now). Call it before the Authenticator is used.
func (a *Authenticator) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	a.now = now
}

// dummyHash is compared against when a key id is unknown, so that an
// unknown id and a wrong secret take the same path.
var dummyHash = HashSecret("no such key: this value never matches a real hash")

// Authenticate returns the principal credential stands for. A refused
// credential returns an *AuthError; any other error is an infrastructure
// failure (the database is down) and must not count as a failed attempt.
func (a *Authenticator) Authenticate(ctx context.Context, credential string) (*Principal, error) {
	if strings.HasPrefix(credential, KeyPrefix+"_") {
		return a.apiKey(ctx, credential)
	}
	if a.tokens != nil && LooksLikeJWT(credential) {
		return a.tokens.Verify(ctx, credential)
	}
	return nil, &AuthError{Reason: "malformed credential"}
}

// LooksLikeJWT reports whether a credential has the shape of a JWT (three
// dot-separated parts) and not of one of our API keys: such a credential is
// checked by its signature, which needs no lookup.
func LooksLikeJWT(credential string) bool {
	return !strings.HasPrefix(credential, KeyPrefix+"_") && strings.Count(credential, ".") == 2
}

func (a *Authenticator) apiKey(ctx context.Context, key string) (*Principal, error) {
	keyID, secret, err := ParseAPIKey(key)
	if err != nil {
		return nil, &AuthError{Reason: "malformed api key"}
	}
	rec, err := a.keys.LookupAPIKey(ctx, keyID)
	stored := rec.SecretSHA256
	switch {
	case errors.Is(err, store.ErrNotFound):
		stored = dummyHash
	case err != nil:
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	// Constant-time comparison of the hashes: how long it takes says
	// nothing about how much of the secret was right.
	match := subtle.ConstantTimeCompare(HashSecret(secret), stored) == 1
	now := a.now()
	switch {
	case err != nil:
		return nil, &AuthError{Reason: "unknown api key", KeyID: keyID}
	case !match:
		return nil, &AuthError{Reason: "wrong api key secret", KeyID: keyID, KeyExists: true}
	case rec.RevokedAt != nil:
		return nil, &AuthError{Reason: "api key revoked", KeyID: keyID, KeyExists: true}
	case rec.ExpiresAt != nil && !now.Before(*rec.ExpiresAt):
		return nil, &AuthError{Reason: "api key expired", KeyID: keyID, KeyExists: true}
	}
	p := &Principal{
		Subject:      "apikey:" + keyID,
		Method:       "api_key",
		CredentialID: keyID,
		Scopes:       ParseScopes(rec.Scopes),
		CustomerID:   rec.CustomerID,
	}
	if rec.ExpiresAt != nil {
		p.ExpiresAt = *rec.ExpiresAt
	}
	if _, err := p.Access(); err != nil {
		return nil, &AuthError{Reason: "api key bound to no customer and not staff", KeyID: keyID, KeyExists: true}
	}
	a.touch(ctx, keyID, now)
	return p, nil
}

// touch records a key's last use, at most once a minute per key and
// process, so that a busy key does not add a write to every request.
func (a *Authenticator) touch(ctx context.Context, keyID string, now time.Time) {
	if last, ok := a.touched.Load(keyID); ok && now.Sub(last.(time.Time)) < time.Minute {
		return
	}
	a.touched.Store(keyID, now)
	if err := a.keys.TouchAPIKey(ctx, keyID); err != nil {
		// Last-use bookkeeping must not turn into an outage.
		a.logger.LogAttrs(ctx, slog.LevelWarn, "could not record api key use",
			slog.String("key_id", keyID), slog.String("error", err.Error()))
	}
}
