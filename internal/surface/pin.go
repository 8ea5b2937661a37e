package surface

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/example/order-mcp/internal/auth"
	"github.com/example/order-mcp/internal/tools"
)

// MetaKey is the key of the tool digest in the _meta of initialize,
// server/discover and tools/list results, namespaced as the MCP
// specification asks of _meta keys.
const MetaKey = "io.github.example.order-mcp/tool-digest"

// Canonicalization names how the digested JSON is made canonical.
const Canonicalization = "RFC 8785"

// Digest is the digest of a list of tool definitions: "sha256:" and the
// hex SHA-256 of the RFC 8785 canonical JSON of the definitions, as
// tools/list sends them, in one array sorted by tool name. The order the
// list came in, its encoding and its spacing do not change it; any change
// to a name, description, schema, annotation or _meta does.
func Digest(defs []*mcp.Tool) (string, error) {
	// An empty list is [] (what tools/list sends), never null.
	sorted := append([]*mcp.Tool{}, defs...)
	slices.SortFunc(sorted, func(a, b *mcp.Tool) int { return strings.Compare(a.Name, b.Name) })
	b, err := json.Marshal(sorted)
	if err != nil {
		return "", fmt.Errorf("tool digest: %w", err)
	}
	c, err := Canonical(b)
	if err != nil {
		return "", fmt.Errorf("tool digest: %w", err)
	}
	sum := sha256.Sum256(c)
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// Visible returns the tools a caller with scopes sees in tools/list: those
// whose every scope it holds (the gate's rule).
func Visible(all []tools.Tool, scopes []auth.Scope) []tools.Tool {
	var out []tools.Tool
	for _, t := range all {
		if !slices.ContainsFunc(t.Scopes(), func(s auth.Scope) bool { return !slices.Contains(scopes, s) }) {
			out = append(out, t)
		}
	}
	return out
}

// ScopeSets returns every set of scopes a caller can hold: each subset of
// the scopes the server defines (auth.KnownScopes; a credential's other
// scopes are dropped when it is read), each sorted by name. Which tools a
// caller sees depends on nothing else, so these are every tools/list a
// caller can get. There are 2^n of them; with the three scopes here, 8.
func ScopeSets() [][]auth.Scope {
	known := auth.KnownScopes()
	var out [][]auth.Scope
	for mask := range 1 << len(known) {
		set := []auth.Scope{}
		for i, s := range known {
			if mask&(1<<i) != 0 {
				set = append(set, s)
			}
		}
		out = append(out, sortScopes(set))
	}
	slices.SortFunc(out, func(a, b []auth.Scope) int {
		if c := len(a) - len(b); c != 0 {
			return c
		}
		return strings.Compare(scopeKey(a), scopeKey(b))
	})
	return out
}

// Document is what the server signs: the digest of what each scope set
// sees. Tool names are deliberately not in it: it is public, and which
// tools exist for which scopes is for callers holding them to see.
type Document struct {
	Canonicalization string        `json:"canonicalization"`
	Surfaces         []ScopeDigest `json:"surfaces"`
}

// ScopeDigest is the digest of the tools/list a caller with Scopes gets.
type ScopeDigest struct {
	Scopes []string `json:"scopes"`
	Digest string   `json:"digest"`
}

// Meta is the value under MetaKey in a result's _meta: the digest of the
// tools this very caller sees, for its scopes, and the signed document of
// every scope set (absent when the server has no signing key: stdio
// without TOOL_DIGEST_SIGNING_KEY).
type Meta struct {
	Digest string   `json:"digest"`
	Scopes []string `json:"scopes"`
	JWS    string   `json:"jws,omitempty"`
	KeyID  string   `json:"kid,omitempty"`
}

// Pin is the tool surface as the server publishes it, computed once at
// start-up: the definitions do not change while the process runs.
type Pin struct {
	doc      Document
	byScopes map[string]string
	jws      string
	jwk      *JWK
	document []byte // the /.well-known/mcp-tool-digest body
	keySet   []byte // the JWKS body
}

// New computes the digest of every scope set's view of all and, with a
// signer, signs the document. A nil signer publishes the digests unsigned.
func New(all []tools.Tool, signer *Signer) (*Pin, error) {
	p := &Pin{doc: Document{Canonicalization: Canonicalization}, byScopes: map[string]string{}}
	for _, set := range ScopeSets() {
		var defs []*mcp.Tool
		for _, t := range Visible(all, set) {
			defs = append(defs, t.Def())
		}
		d, err := Digest(defs)
		if err != nil {
			return nil, err
		}
		p.doc.Surfaces = append(p.doc.Surfaces, ScopeDigest{Scopes: auth.ScopeNames(set), Digest: d})
		p.byScopes[scopeKey(set)] = d
	}
	payload, err := json.Marshal(p.doc)
	if err != nil {
		return nil, err
	}
	if payload, err = Canonical(payload); err != nil {
		return nil, err
	}
	published := struct {
		JWS      string   `json:"jws,omitempty"`
		JWK      *JWK     `json:"jwk,omitempty"`
		Document Document `json:"document"`
	}{Document: p.doc}
	if signer != nil {
		jwk := signer.PublicJWK()
		p.jws, p.jwk = signer.Sign(payload), &jwk
		published.JWS, published.JWK = p.jws, p.jwk
		if p.keySet, err = json.MarshalIndent(map[string][]JWK{"keys": {jwk}}, "", "  "); err != nil {
			return nil, err
		}
		p.keySet = append(p.keySet, '\n')
	}
	if p.document, err = json.MarshalIndent(published, "", "  "); err != nil {
		return nil, err
	}
	p.document = append(p.document, '\n')
	return p, nil
}

// Document returns the signed document as /.well-known/mcp-tool-digest
// serves it and `server tools digest` prints it: the compact JWS, the
// public key as a JWK, and the payload in readable form.
func (p *Pin) Document() []byte { return slices.Clone(p.document) }

// KeySet returns the public key as a JWK Set (RFC 7517), nil when the
// digests are unsigned.
func (p *Pin) KeySet() []byte { return slices.Clone(p.keySet) }

// JWS returns the signed document as a compact JWS ("" when unsigned).
func (p *Pin) JWS() string { return p.jws }

// Surfaces returns the digest of each scope set.
func (p *Pin) Surfaces() []ScopeDigest { return slices.Clone(p.doc.Surfaces) }

// Digest returns the digest of what a caller with scopes sees.
func (p *Pin) Digest(scopes []auth.Scope) string {
	return p.byScopes[scopeKey(knownOnly(scopes))]
}

// Meta returns the _meta value for a caller with scopes.
func (p *Pin) Meta(scopes []auth.Scope) Meta {
	own := knownOnly(scopes)
	m := Meta{Digest: p.byScopes[scopeKey(own)], Scopes: auth.ScopeNames(own), JWS: p.jws}
	if p.jwk != nil {
		m.KeyID = p.jwk.Kid
	}
	return m
}

// knownOnly is scopes without unknown or repeated entries, sorted.
func knownOnly(scopes []auth.Scope) []auth.Scope {
	return sortScopes(auth.ParseScopes(auth.ScopeNames(scopes)))
}

func sortScopes(s []auth.Scope) []auth.Scope {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}

func scopeKey(s []auth.Scope) string { return strings.Join(auth.ScopeNames(s), " ") }
