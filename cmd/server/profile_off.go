package main

// stopProfile ends a CPU profile started by profile.go (built only with
// -tags profile); otherwise it does nothing.
var stopProfile = func() {}
