//go:build race

package verify_test

// raceEnabled is true when the race detector is on: it slows the pure-Go
// SQLite driver by an order of magnitude, so the longest simulations run
// smaller (their bounds are the same).
const raceEnabled = true
