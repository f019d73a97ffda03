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

func mapped(n int) ([]byte, func()) {
	whole := (n + HugePage - 1) / HugePage * HugePage
	m, err := unix.Mmap(-1, 0, whole+HugePage, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	if err != nil {
		return make([]byte, n), func() {}
	}
	start := int((HugePage - uintptr(unsafe.Pointer(&m[0]))%HugePage) % HugePage)
	body := m[start : start+whole]
	unix.Madvise(body, unix.MADV_HUGEPAGE) // a hint: without it the buffer works the same
	return body[:n:n], func() { unix.Munmap(m) }
}
