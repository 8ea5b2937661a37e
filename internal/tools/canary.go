package tools

// reachedCanary marks the call as one that reached a canary record
// (internal/store/canaries.go). The caller is answered exactly as for an
// id that does not exist; the mark is how the MCP layer learns to log,
// audit and count the call as the alarm it is. A handler whose store call
// returns store.ErrCanary is marked by Define's wrapper; one that answers
// such a call with a result of its own (list_recent_orders' empty list)
// marks it itself.
func (c *Call) reachedCanary() {
	if c.record != nil {
		c.record.MarkCanary()
	}
}
