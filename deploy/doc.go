// Package deploy checks, without a Docker engine, what ships: the
// Dockerfile, .dockerignore and compose.yaml at the repository root, and
// the repository itself for committed secrets.
//
// It is a module of its own so that the Dockerfile and compose parsers
// (moby/buildkit, compose-spec/compose-go) stay out of the server's go.mod.
// Run it with `make deploy-check` (part of `make test`).
package deploy
