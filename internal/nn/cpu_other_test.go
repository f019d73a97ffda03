//go:build !unix

package nn

// cpuNanos returns −1: this system's CPU time is not read here.
func cpuNanos() int64 { return -1 }
