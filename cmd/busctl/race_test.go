//go:build race

package main_test

// raceEnabled builds busctl with -race when its tests run with -race.
const raceEnabled = true
