package corrupt

import (
	"bytes"
	"encoding/binary"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// npyU8 is a uint8 .npy array read by readNpyU8.
type npyU8 struct {
	shape []int
	data  []uint8
}

var npyU8Header = regexp.MustCompile(`'descr':\s*'\|[ui]1',\s*'fortran_order':\s*False,\s*'shape':\s*\(([^)]*)\)`)

// readNpyU8 reads a NumPy format 1.0 file holding a C-order uint8 or int8 array (the kinds the
// corruption reference data uses; int8 values come back as their two's-complement bytes). The
// project's npy package is not used so that these tests stand alone.
func readNpyU8(t testing.TB, path string) npyU8 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 10 || !bytes.Equal(b[:6], []byte("\x93NUMPY")) || b[6] != 1 {
		t.Fatalf("%s: not a NumPy 1.0 file", path)
	}
	hl := int(binary.LittleEndian.Uint16(b[8:10]))
	if 10+hl > len(b) {
		t.Fatalf("%s: header length %d past the end", path, hl)
	}
	m := npyU8Header.FindStringSubmatch(string(b[10 : 10+hl]))
	if m == nil {
		t.Fatalf("%s: header %q: want a C-order |u1 or |i1 array", path, b[10:10+hl])
	}
	a := npyU8{data: b[10+hl:]}
	n := 1
	for _, f := range strings.Split(m[1], ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		d, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s: shape %q: %v", path, m[1], err)
		}
		a.shape = append(a.shape, d)
		n *= d
	}
	if len(a.data) != n {
		t.Fatalf("%s: %d data bytes for shape %v, want %d", path, len(a.data), a.shape, n)
	}
	return a
}

// cifarTestdata returns the path of a file in testdata/cifar10c.
func cifarTestdata(name string) string { return filepath.Join("testdata", "cifar10c", name) }

// referenceInputs returns the 16 reference RGB inputs (testdata/cifar10c/inputs_rgb32.npy).
func referenceInputs(t testing.TB) []Image {
	t.Helper()
	a := readNpyU8(t, cifarTestdata("inputs_rgb32.npy"))
	if len(a.shape) != 4 || a.shape[1] != 32 || a.shape[2] != 32 || a.shape[3] != 3 {
		t.Fatalf("inputs_rgb32.npy: shape %v, want (n, 32, 32, 3)", a.shape)
	}
	imgs := make([]Image, a.shape[0])
	for i := range imgs {
		var err error
		imgs[i], err = FromUint8(a.data[i*3072:(i+1)*3072], 32, 32, 3)
		if err != nil {
			t.Fatal(err)
		}
	}
	return imgs
}

// grayInputs returns the 16 Fashion-MNIST test images (testdata/cifar10c/inputs_gray28.npy).
func grayInputs(t testing.TB) []Image {
	t.Helper()
	a := readNpyU8(t, cifarTestdata("inputs_gray28.npy"))
	if len(a.shape) != 3 || a.shape[1] != 28 || a.shape[2] != 28 {
		t.Fatalf("inputs_gray28.npy: shape %v, want (n, 28, 28)", a.shape)
	}
	imgs := make([]Image, a.shape[0])
	for i := range imgs {
		imgs[i], _ = FromUint8(a.data[i*784:(i+1)*784], 28, 28, 1)
	}
	return imgs
}
