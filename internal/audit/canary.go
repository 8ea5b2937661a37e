package audit

// OutcomeCanary is the outcome of a call that reached a canary record
// (internal/store/canaries.go): whatever the caller was answered ("not
// found", an empty list), the record says what happened.
const OutcomeCanary = "canary"

// MarkCanary records that the call reached a canary record.
func (c *Call) MarkCanary() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.canary = true
}

// ReachedCanary reports whether the call reached a canary record.
func (c *Call) ReachedCanary() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.canary
}
