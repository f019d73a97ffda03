package safetensors

import (
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// encodeFile writes the canonical form of a parsed file: rws' header for the same tensors and
// metadata, followed by the same data area.
func encodeFile(t *testing.T, h *header, data []byte) []byte {
	hdr, err := EncodeHeader(h.infos, h.meta)
	if err != nil {
		t.Fatalf("a parsed header does not encode: %v", err)
	}
	return append(hdr, data...)
}

func parseBytes(b []byte) (*header, int64, error) {
	return readHeader("fuzz", bytes.NewReader(b), int64(len(b)))
}

// FuzzHeader checks that no input makes the parser panic, and that every accepted file
// round-trips: its canonical encoding parses to the same tensors and metadata and re-encodes to
// the same bytes. Files already in canonical form (all files rws writes) round-trip byte for byte.
func FuzzHeader(f *testing.F) {
	for _, tc := range malformed {
		f.Add(tc.data)
	}
	if b, err := os.ReadFile("testdata/dtypes.safetensors"); err == nil {
		f.Add(b)
	}
	f.Add(file(`{"__metadata__":{"a":"b"},"x":{"dtype":"BF16","shape":[2,1],"data_offsets":[0,4]}}`, []byte{1, 2, 3, 4}))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, start, err := parseBytes(b)
		if err != nil {
			return
		}
		data := b[start:]
		canon := encodeFile(t, h, data)
		h2, start2, err := parseBytes(canon)
		if err != nil {
			t.Fatalf("canonical form of an accepted file is rejected: %v", err)
		}
		if !reflect.DeepEqual(h.meta, h2.meta) || len(h.infos) != len(h2.infos) {
			t.Fatalf("round trip changed the header: %v %v", h, h2)
		}
		for i := range h.infos {
			a, b := h.infos[i], h2.infos[i]
			if a.Name != b.Name || a.DType != b.DType || !equalShape(a.Shape, b.Shape) || a.Offset != b.Offset || a.Size != b.Size {
				t.Fatalf("tensor %d changed: %+v -> %+v", i, a, b)
			}
		}
		if !bytes.Equal(canon[start2:], data) {
			t.Fatal("data area changed")
		}
		if again := encodeFile(t, h2, canon[start2:]); !bytes.Equal(again, canon) {
			t.Fatal("canonical encoding is not stable")
		}
	})
}

// TestCanonicalFilesRoundTripExactly: files written by rws and by the reference generator are in
// canonical form, so parse → encode gives back the same bytes.
func TestCanonicalFilesRoundTripExactly(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.safetensors")
	if len(paths) == 0 {
		t.Fatal("no test files")
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		h, start, err := parseBytes(b)
		if err != nil {
			t.Fatal(err)
		}
		if got := encodeFile(t, h, b[start:]); !bytes.Equal(got, b) {
			t.Errorf("%s: re-encoding changes the bytes", p)
		}
	}
}
