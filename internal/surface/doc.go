// Package surface pins the tool surface: what each set of scopes sees of
// the tools, reduced to one digest per scope set, and those digests signed
// with the server's Ed25519 key, so that a client, a gateway or a reviewer
// can tell when the tools a server offers change under them (a "rug pull":
// a description rewritten to carry instructions, a schema widened, a tool
// added).
//
// A digest is SHA-256 over the RFC 8785 (JCS) canonical JSON of the
// tools/list entries a caller with those scopes sees, sorted by name:
// anyone can recompute it from the tools/list they received, with any JCS
// implementation (canonical.go). The document of every scope set's digest
// is signed as a compact JWS (alg EdDSA, RFC 8037), with nothing but the
// standard library (jws.go), and published three ways: at
// /.well-known/mcp-tool-digest over HTTP with the public key as a JWK,
// under MetaKey in the _meta of initialize, server/discover and tools/list
// results (with the caller's own digest), and by `server tools digest`.
// The golden files in internal/tools/testdata pin the digests too, so a
// change to what any caller sees is a reviewable diff.
//
// What the signature proves: that the holder of the signing key published
// these definitions. A client that pinned the public key (out of band, or
// on first use) detects definitions changed by anyone without the key: an
// intermediary, a compromised gateway, a tampered cache. A client that
// pinned the digest detects any change at all, the key holder's included,
// and can ask its user before using the new tools.
//
// Imports: internal/auth (the scopes) and internal/tools (the definitions),
// and the go-sdk (the definition type). Never internal/mcpserver or
// internal/httpserver, which publish what this package computes.
package surface
