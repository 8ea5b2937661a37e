// Package demo is the demo dataset: six customers with full contact data,
// eight orders each covering every status, timelines and shipments,
// internal notes that must never come out, and delivery instructions that
// try prompt injection (some of it hidden in invisible Unicode). It is
// built to be attacked: the tests plant their expectations on it. Canaries
// (canaries.go) is a customer and orders with random ids, planted beside
// real data by `server seed --canary`, that no legitimate flow touches.
//
// It only describes rows; internal/store loads them (Store.Seed).
//
// Imports: internal/store (the row types and statuses).
package demo
