// Package archtest holds tests of the code's shape rather than its
// behaviour, and of the documentation's hold on it: each package's doc.go
// says what it may import, and imports_test.go holds every package to it,
// so the layering a reader is told about is the layering the compiler
// sees; docs_test.go checks that every relative link in the README and
// docs/ resolves (files and #anchors) and that every test the pages name
// exists, so the documentation cannot point at code that moved.
//
// Imports: the standard library only.
package archtest
