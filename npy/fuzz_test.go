package npy

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func addSeeds(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.npy"))
	if len(files) == 0 {
		f.Fatal("no seed vectors in testdata")
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		if len(b) > 4096 {
			b = b[:4096]
		}
		f.Add(b)
	}
}

// FuzzParseHeader checks that the header parser never panics, and that every header it accepts
// marshals to a header that parses back to the same value, and that marshalling is stable.
func FuzzParseHeader(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := ParseHeader(b)
		if err != nil {
			return
		}
		if n > len(b) {
			t.Fatalf("header length %d > input %d", n, len(b))
		}
		m, err := h.Marshal()
		if err != nil {
			t.Fatalf("Marshal(%+v): %v", h, err)
		}
		h2, n2, err := ParseHeader(m)
		if err != nil || n2 != len(m) || !reflect.DeepEqual(h, h2) {
			t.Fatalf("round trip: %+v → %q → %+v, %d, %v", h, m, h2, n2, err)
		}
		m2, err := h2.Marshal()
		if err != nil || !bytes.Equal(m, m2) {
			t.Fatalf("Marshal not stable: %q vs %q (%v)", m, m2, err)
		}
	})
}

// FuzzDecode checks that decoding never panics and that an accepted file in NumPy's own layout
// re-encodes byte for byte.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		a, err := Decode(b)
		if err != nil {
			return
		}
		enc, err := Encode(a)
		if err != nil {
			t.Fatalf("Encode: %v", err)
		}
		a2, err := Decode(enc)
		if err != nil || !reflect.DeepEqual(a.Header, a2.Header) || !bytes.Equal(a.Data, a2.Data) {
			t.Fatalf("round trip changed the array: %v", err)
		}
		hb, _ := a.Header.Marshal()
		if bytes.HasPrefix(b, hb) && !bytes.Equal(enc, b) {
			t.Fatalf("canonical input did not re-encode byte for byte")
		}
	})
}
