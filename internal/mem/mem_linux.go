package mem

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

func hugeBytes(n int) []byte {
	// A large allocation gets spans of its own, fresh from the kernel and so not yet touched
	// when the heap grows; the advice must come before the first touch to take effect.
	whole := (n + HugePage - 1) / HugePage * HugePage
	b := make([]byte, whole+HugePage)
	start := int((HugePage - uintptr(unsafe.Pointer(&b[0]))%HugePage) % HugePage)
	body := b[start : start+whole]
	unix.Madvise(body, unix.MADV_HUGEPAGE) // a hint: without it the buffer works the same
	return body[:n:n]
}
