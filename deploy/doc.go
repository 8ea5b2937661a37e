// Package deploy checks, without a Docker engine, what ships: the
// Dockerfile, .dockerignore and compose.yaml at the repository root, and
// the repository itself for committed secrets.
//
// It is a module of its own so that the Dockerfile and compose parsers
// (moby/buildkit, compose-spec/compose-go) stay out of the server's go.mod.
// Run it with `make deploy-check` (part of `make test`). Its go line
// (1.26.8) is moby/buildkit's minimum; the server's module needs only 1.26.
//
// Imports: nothing outside its tests, which use compose-spec/compose-go and
// moby/buildkit's Dockerfile parser.
package deploy
