// A Go program with cgo for tests/test-go-runtime.sh: under LD_PRELOAD of
// the agent it must run unchanged, and its own CPU profile (runtime/pprof,
// which uses SIGPROF) must still work. It burns CPU in goBurn for SECONDS,
// calls C once, and writes the profile to PROFILE.
package main

// #include <stdlib.h>
// static int c_abs(int v) { return abs(v); }
import "C"

import (
	"fmt"
	"os"
	"runtime/pprof"
	"strconv"
	"time"
)

var sink float64

//go:noinline
func goBurn(d time.Duration) {
	end := time.Now().Add(d)
	for time.Now().Before(end) {
		for i := 0; i < 100000; i++ {
			sink += float64(i) * 1.0000001
		}
	}
}

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: go-cgo SECONDS PROFILE")
		os.Exit(2)
	}
	secs, err := strconv.ParseFloat(os.Args[1], 64)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	f, err := os.Create(os.Args[2])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	goBurn(time.Duration(secs * float64(time.Second)))
	pprof.StopCPUProfile()
	f.Close()
	fmt.Println("cgo says", C.c_abs(-42))
}
