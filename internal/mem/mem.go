// Package mem allocates large byte buffers that are cheap to touch for the first time.
//
// A fresh 4 KiB page of memory costs a page fault on first touch. In virtual machines that fault
// is slow: about 3 ms per MiB on the project's benchmark machine, so reading a 10 MB signature
// into a buffer from make cost more than the read itself. A transparent huge page costs one fault
// per 2 MiB instead. Linux gives huge pages to memory that asks for them (madvise) when
// /sys/kernel/mm/transparent_hugepage/enabled is "madvise", as it is on Debian; Go's heap does not
// ask. Bytes asks for the buffers it returns, on Go-heap memory, so they are freed by the garbage
// collector like any other slice; Mapped maps them outside the heap, for buffers freed at once.
package mem

// HugePage is the size of a transparent huge page on x86-64 and arm64 Linux.
const HugePage = 2 << 20

// Bytes returns a zeroed slice of n bytes (capacity n) from the Go heap. A slice of HugePage or
// more is placed on a huge-page boundary and backed by huge pages where the kernel allows it; the
// memory up to the next boundaries is allocated too (at most 2 × HugePage more, untouched). It
// panics if n is negative, like make.
func Bytes(n int) []byte {
	if n < HugePage {
		return make([]byte, n)
	}
	return hugeBytes(n)
}

// Mapped returns n zero bytes of private memory outside the Go heap and the function that frees
// them, which the memory must not be used after: for large scratch buffers that should go back to
// the kernel at once rather than at the next garbage collection. Like Bytes, buffers of HugePage
// and more are backed by huge pages where the kernel allows it.
func Mapped(n int) ([]byte, func()) {
	if n < HugePage {
		return make([]byte, n), func() {}
	}
	return mapped(n)
}
