package mem

import (
	"testing"
	"unsafe"
)

func TestBytes(t *testing.T) {
	for _, n := range []int{0, 1, HugePage - 1, HugePage, 5*HugePage + 3} {
		b := Bytes(n)
		if len(b) != n || cap(b) != n {
			t.Fatalf("Bytes(%d): len %d cap %d", n, len(b), cap(b))
		}
		for i, v := range b {
			if v != 0 {
				t.Fatalf("Bytes(%d): byte %d is %d, want 0", n, i, v)
			}
		}
		if n >= HugePage && uintptr(unsafe.Pointer(&b[0]))%HugePage != 0 {
			t.Errorf("Bytes(%d) does not start on a huge-page boundary", n)
		}
		// Writing every byte must stay inside the slice (the race detector and -d=checkptr
		// catch the rest).
		for i := range b {
			b[i] = byte(i)
		}
	}
}

func TestMapped(t *testing.T) {
	for _, n := range []int{0, 1, HugePage - 1, HugePage, 5*HugePage + 3} {
		b, free := Mapped(n)
		if len(b) != n || cap(b) != n {
			t.Errorf("Mapped(%d): len %d cap %d", n, len(b), cap(b))
		}
		for i := 0; i < n; i += 997 {
			if b[i] != 0 {
				t.Fatalf("Mapped(%d): byte %d is %d, want 0", n, i, b[i])
			}
			b[i] = byte(i)
		}
		free()
	}
}
