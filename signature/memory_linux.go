package signature

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// heapBuffer returns n zero bytes of ordinary garbage-collected memory, so unlike bigBuffer's it
// may outlive the call that made it (a signature keeps its values in it). The huge-page-aligned
// middle of a large buffer is marked for transparent huge pages before it is first touched:
// fresh memory costs a page fault per 4 KiB page, about 4 ms per MiB in the virtual machines
// we measured, against one fault per 2 MiB with huge pages. The hint is only a hint: the
// memory works the same without it.
func heapBuffer(n int) []byte {
	b := make([]byte, n)
	if n < 2*hugePage {
		return b
	}
	p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
	beg := (p + hugePage - 1) &^ (hugePage - 1)
	end := (p + uintptr(n)) &^ (hugePage - 1)
	if beg < end {
		unix.Madvise(b[beg-p:end-p], unix.MADV_HUGEPAGE)
	}
	return b
}
