//go:build !linux

package mem

func hugeBytes(n int) []byte { return make([]byte, n) }

func mapped(n int) ([]byte, func()) { return make([]byte, n), func() {} }
