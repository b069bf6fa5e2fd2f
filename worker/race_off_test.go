//go:build !race

package worker_test

// backlogSize: see race_on_test.go.
const backlogSize = 100_000
