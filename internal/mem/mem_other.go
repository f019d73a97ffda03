//go:build !linux

package mem

func hugeBytes(n int) []byte { return make([]byte, n) }
