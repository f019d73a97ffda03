//go:build !linux

package signature

// heapBuffer returns n zero bytes of garbage-collected memory.
func heapBuffer(n int) []byte { return make([]byte, n) }
