// Package archtest holds tests of the code's shape rather than its
// behaviour: each package's doc.go says what it may import, and
// imports_test.go holds every package to it, so the layering a reader is
// told about is the layering the compiler sees.
//
// Imports: the standard library only.
package archtest
