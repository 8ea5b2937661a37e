// Package deploy checks what ships, without a Docker engine or a cluster:
// the Dockerfile, .dockerignore, compose.yaml (both profiles), the Caddy
// configuration of the scale profile (deploy/compose/), the Kubernetes
// manifests (deploy/kubernetes/), the image references of all of them,
// and the repository itself for committed secrets.
//
// Three kinds of test, each against the real parser or the real thing:
//
//   - Static: compose.yaml through compose-spec/compose-go (as `docker
//     compose` reads it), the Dockerfile through BuildKit's parser, the
//     Kubernetes manifests strictly decoded into the upstream API types
//     (k8s.io/api), so that an unknown or misspelt field fails as the API
//     server's strict validation would. Each hardening property is then
//     asserted on the parsed result.
//   - Replay (replay_test.go): compose.yaml's default profile run without
//     Docker, service by service in dependency order, with compose's own
//     environment, the server binary built from this repository, and the
//     Postgres and Redis on this machine standing in for the db and redis
//     services. It fails where `docker compose up` would fail to start.
//     `go test -short` skips it.
//   - Image pinning (images_test.go, with the images package): every image
//     reference carries a digest, or is on deploy/images-unpinned.txt with
//     its reason. `make pin-images` (cmd/pin-images) pins them.
//
// It is a module of its own so that these parsers stay out of the server's
// go.mod. Run it with `make deploy-check` (part of `make test`). Its go
// line (1.26.8) is moby/buildkit's minimum; the server's module needs only
// 1.26.
//
// Imports: the images package and cmd/pin-images use only
// distribution/reference. The tests use compose-spec/compose-go,
// moby/buildkit's Dockerfile parser, k8s.io/api, k8s.io/apimachinery,
// sigs.k8s.io/yaml and sigs.k8s.io/json, pgx (to create and drop the
// replay's database) and go-redis (to remove the replay's keys).
package deploy
