//go:build race

package worker_test

// backlogSize is the backlog TestRecovererWorksThroughABacklog recovers:
// smaller under the race detector, which slows every Redis call several
// times over.
const backlogSize = 20_000
