// Package images finds the container image references the repository
// ships and pins them to digests; see images.go. cmd/pin-images is its
// command line (`make pin-images`), and the deploy package's tests use it
// to require a digest or a listed reason for every reference.
//
// Imports: the standard library and distribution/reference (the grammar
// Docker and containerd parse references with).
package images
