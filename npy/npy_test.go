package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/tensor"
)

// The vectors in testdata were written by scripts/gen_npy_vectors.py with NumPy 1.24.2; their
// values are the formulas of that script's docstring, recomputed here by values.

var codes = map[string]tensor.DType{
	"u1": tensor.U8, "i1": tensor.I8, "i2": tensor.I16, "i4": tensor.I32, "i8": tensor.I64,
	"f2": tensor.F16, "f4": tensor.F32, "f8": tensor.F64, "b1": tensor.Bool,
}

var shapes = map[string][]int64{
	"s0": {}, "s5": {5}, "s2x3": {2, 3}, "s2x3x4": {2, 3, 4}, "s0x3": {0, 3},
}

// values returns the data of the generator's formula for dtype d and shape.
func values(t testing.TB, d tensor.DType, shape []int64) []byte {
	n := tensor.Elements(shape)
	out := make([]byte, 0, n*int64(d.Size()))
	for i := range n {
		x := (float64(i) - 3.5) * 0.1
		switch d {
		case tensor.U8:
			out = append(out, byte((i*37+11)%256))
		case tensor.I8:
			out = append(out, byte(int8((i*37+11)%256-128)))
		case tensor.I16:
			out = binary.LittleEndian.AppendUint16(out, uint16(int16(i*1009-30000)))
		case tensor.I32:
			out = binary.LittleEndian.AppendUint32(out, uint32(int32(i*7919-100000)))
		case tensor.I64:
			out = binary.LittleEndian.AppendUint64(out, uint64(i*1000003-5000000000))
		case tensor.F16:
			out = binary.LittleEndian.AppendUint16(out, tensor.Float32ToF16(float32(x)))
		case tensor.F32:
			out = binary.LittleEndian.AppendUint32(out, math.Float32bits(float32(x)))
		case tensor.F64:
			out = binary.LittleEndian.AppendUint64(out, math.Float64bits(x))
		case tensor.Bool:
			if i%3 == 0 {
				out = append(out, 1)
			} else {
				out = append(out, 0)
			}
		default:
			t.Fatalf("no formula for %s", d)
		}
	}
	return out
}

type vector struct {
	name  string
	dtype tensor.DType
	shape []int64
	ver   int
}

func validVectors() []vector {
	var vs []vector
	for code, d := range codes {
		for sname, s := range shapes {
			vs = append(vs, vector{code + "_" + sname, d, s, 1})
		}
	}
	return append(vs,
		vector{"u1_images_3x4x5", tensor.U8, []int64{3, 4, 5}, 1},
		vector{"u1_images_2x4x5x3", tensor.U8, []int64{2, 4, 5, 3}, 1},
		vector{"v2_f4_s2x3", tensor.F32, []int64{2, 3}, 2},
		vector{"v3_u1_s2x3x4", tensor.U8, []int64{2, 3, 4}, 3},
		vector{"u1_s1x1x1x1x1x1x1x1x1x1x1x1x2", tensor.U8, []int64{1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2}, 1},
		vector{"u1_s100000x1", tensor.U8, []int64{100000, 1}, 1},
	)
}

func readVector(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name+".npy"))
	if err != nil {
		t.Fatalf("missing vector (run /usr/bin/python3 scripts/gen_npy_vectors.py): %v", err)
	}
	return b
}

// f16Close reports whether the F16 data a and b differ by at most one unit in the last place per
// element: the generator rounds float64 to float16 once, the test rounds through float32.
func f16Close(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i += 2 {
		x, y := int(binary.LittleEndian.Uint16(a[i:])), int(binary.LittleEndian.Uint16(b[i:]))
		if x-y > 1 || y-x > 1 {
			return false
		}
	}
	return true
}

func TestReadVectors(t *testing.T) {
	for _, v := range validVectors() {
		t.Run(v.name, func(t *testing.T) {
			file := readVector(t, v.name)
			a, err := ReadFile(filepath.Join("testdata", v.name+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != v.dtype || !reflect.DeepEqual(a.Shape, v.shape) || a.Version != v.ver {
				t.Fatalf("header = %s %v v%d, want %s %v v%d", a.DType, a.Shape, a.Version, v.dtype, v.shape, v.ver)
			}
			want := values(t, v.dtype, v.shape)
			if v.dtype == tensor.F16 {
				if !f16Close(a.Data, want) {
					t.Fatalf("data = %x, want %x within 1 ulp", a.Data, want)
				}
			} else if !bytes.Equal(a.Data, want) {
				t.Fatalf("data = %x, want %x", a.Data, want)
			}
			// Decode of the same bytes agrees with the file reader.
			d, err := Decode(file)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(d.Header, a.Header) || !bytes.Equal(d.Data, a.Data) {
				t.Fatalf("Decode = %+v, ReadFile = %+v", d.Header, a.Header)
			}
		})
	}
}

// TestWriteVectors checks that the writer reproduces NumPy's files byte for byte.
func TestWriteVectors(t *testing.T) {
	dir := t.TempDir()
	for _, v := range validVectors() {
		t.Run(v.name, func(t *testing.T) {
			file := readVector(t, v.name)
			data := values(t, v.dtype, v.shape)
			if v.dtype == tensor.F16 {
				data = file[len(file)-len(data):] // NumPy's own rounding, see f16Close
			}
			h := Header{DType: v.dtype, Shape: v.shape}
			if v.ver != 1 {
				h.Version = v.ver
			}
			enc, err := Encode(&Array{Header: h, Data: data})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(enc, file) {
				t.Fatalf("Encode:\n got %q\nwant %q", head(enc), head(file))
			}
			path := filepath.Join(dir, v.name+".npy")
			if err := WriteFile(path, h, data, WriteOptions{}); err != nil {
				t.Fatal(err)
			}
			got, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, file) {
				t.Fatalf("WriteFile:\n got %q\nwant %q", head(got), head(file))
			}
		})
	}
}

func head(b []byte) []byte {
	if len(b) > 160 {
		return b[:160]
	}
	return b
}

// TestReadOldHeaders reads headers NumPy accepts but no longer writes.
func TestReadOldHeaders(t *testing.T) {
	want := values(t, tensor.I32, []int64{2, 3})
	for _, name := range []string{"old16_i4_s2x3", "reordered_i4_s2x3"} {
		t.Run(name, func(t *testing.T) {
			a, err := ReadFile(filepath.Join("testdata", name+".npy"))
			if err != nil {
				t.Fatal(err)
			}
			if a.DType != tensor.I32 || !reflect.DeepEqual(a.Shape, []int64{2, 3}) || !bytes.Equal(a.Data, want) {
				t.Fatalf("got %s %v %x, want I32 [2 3] %x", a.DType, a.Shape, a.Data, want)
			}
		})
	}
}

func TestReadErrors(t *testing.T) {
	tests := []struct {
		name        string
		want        string // substring of the message
		unsupported bool   // errors.Is(err, ErrUnsupported)
	}{
		{"bad_fortran", "Fortran-order array; save np.ascontiguousarray(a)", true},
		{"bad_bigendian", `big-endian dtype ">f4"; save a.astype('<f4')`, true},
		{"bad_complex", `dtype "<c8"`, true},
		{"bad_structured", "structured dtype", true},
		{"bad_u2", `dtype "<u2"`, true},
		{"bad_version", "format version 4.0", true},
		{"bad_magic", `bad magic "\x93NUMPZ"`, false},
		{"bad_truncated_data", "file is truncated: shape [2 3 4] of U8 needs 24 data bytes, file has 23", false},
		{"bad_extra_data", "file has 1 extra bytes", false},
		{"bad_truncated_header", "file ends inside the 118-byte header", false},
		{"bad_short", "file too short", false},
		{"bad_no_newline", "header does not end with a newline", false},
		{"bad_shape_not_tuple", "shape: not a tuple", false},
		{"bad_negative_dim", "negative dimension", false},
		{"bad_missing_key", "no 'fortran_order' key", false},
		{"bad_extra_key", `unknown key "x"`, false},
		{"bad_duplicate_key", `key "descr" twice`, false},
		{"bad_overflow", "too large", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join("testdata", tt.name+".npy")
			_, err := ReadFile(path)
			if err == nil {
				t.Fatal("no error")
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.want) {
				t.Fatalf("error %q does not contain %q", msg, tt.want)
			}
			if !strings.HasPrefix(msg, "npy: ") || !strings.Contains(msg, path) {
				t.Errorf("error %q does not start with \"npy: \" and name the file", msg)
			}
			if got := errors.Is(err, ErrUnsupported); got != tt.unsupported {
				t.Errorf("errors.Is(err, ErrUnsupported) = %v, want %v", got, tt.unsupported)
			}
			var fe *FormatError
			if !errors.As(err, &fe) {
				t.Errorf("error %T is not a *FormatError", err)
			}
			// The in-memory decoder gives the same error, without the path.
			_, derr := Decode(readVector(t, tt.name))
			if derr == nil || !strings.Contains(derr.Error(), tt.want) {
				t.Errorf("Decode error = %v, want it to contain %q", derr, tt.want)
			}
		})
	}
}

func TestParseHeaderSyntax(t *testing.T) {
	wrap := func(dict string) []byte {
		b := []byte(Magic + "\x01\x00")
		b = binary.LittleEndian.AppendUint16(b, uint16(len(dict)+1))
		return append(append(b, dict...), '\n')
	}
	tests := []struct {
		dict  string
		shape []int64 // nil: want an error containing err
		err   string
	}{
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (), }", []int64{}, ""},
		{`{"descr":"<i8","fortran_order":False,"shape":(7,)}`, []int64{7}, ""},
		{"{'descr': 'u1', 'fortran_order': False, 'shape': (2, 3,), }", []int64{2, 3}, ""},
		{"{'descr': '>u1', 'fortran_order': False, 'shape': (2,3)}  ", []int64{2, 3}, ""},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (7), }", nil, "(n) is an integer"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (2 3), }", nil, "want ','"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (2,,3), }", nil, "non-negative integer"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (07,), }", nil, "leading zero"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999,), }", nil, "too large"},
		{"{'descr': '|u1', 'fortran_order': Falsey, 'shape': (1,), }", nil, "not True or False"},
		{"{'descr': '|u1', 'fortran_order': 0, 'shape': (1,), }", nil, "not True or False"},
		{"{'descr': '=f4', 'fortran_order': False, 'shape': (1,), }", nil, "no explicit byte order"},
		{"{'descr': '<u1\\x', 'fortran_order': False, 'shape': (1,), }", nil, "escapes"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (1,), } x", nil, "text after the dict"},
		{"{'descr': '|u1' 'fortran_order': False, 'shape': (1,), }", nil, "want ',' or '}'"},
		{"['descr']", nil, "does not start with '{'"},
		{"{descr: '|u1'}", nil, "want a quoted string"},
		{"{'descr': '|u1", nil, "unterminated string"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (1,), }\x00", nil, "not printable ASCII"},
		{"{'descr': '|u1', 'fortran_order': False, 'shape': (" + strings.Repeat("1,", 33) + "), }", nil, "more than 32 dimensions"},
	}
	for _, tt := range tests {
		t.Run(tt.dict, func(t *testing.T) {
			h, _, err := ParseHeader(wrap(tt.dict))
			if tt.shape == nil {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(h.Shape, tt.shape) {
				t.Fatalf("shape = %v, want %v", h.Shape, tt.shape)
			}
		})
	}
}

// TestMarshalVersions checks that each version writes its own version byte, a 64-byte aligned
// header, and parses back.
func TestMarshalVersions(t *testing.T) {
	for v := MinVersion; v <= MaxVersion; v++ {
		h := Header{DType: tensor.F64, Shape: []int64{3, 1, 4}, Version: v}
		b, err := h.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		if len(b)%64 != 0 || b[6] != byte(v) {
			t.Fatalf("v%d: header of %d bytes, version byte %d", v, len(b), b[6])
		}
		g, n, err := ParseHeader(b)
		if err != nil || n != len(b) || !reflect.DeepEqual(g, h) {
			t.Fatalf("v%d: ParseHeader = %+v, %d, %v; want %+v, %d", v, g, n, err, h, len(b))
		}
	}
}

func TestMarshalErrors(t *testing.T) {
	tests := []struct {
		h    Header
		want string
	}{
		{Header{DType: tensor.BF16, Shape: []int64{1}}, `dtype "BF16" cannot be stored`},
		{Header{DType: "X", Shape: []int64{1}}, `dtype "X" cannot be stored`},
		{Header{DType: tensor.U8, Shape: []int64{-1}}, "negative or too large"},
		{Header{DType: tensor.F64, Shape: []int64{1 << 40, 1 << 40}}, "negative or too large"},
		{Header{DType: tensor.U8, Shape: make([]int64, 33)}, "33 dimensions"},
		{Header{DType: tensor.U8, Shape: []int64{1}, Version: 4}, "version 4"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			_, err := tt.h.Marshal()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestReader(t *testing.T) {
	r, err := Open(filepath.Join("testdata", "u1_images_2x4x5x3.npy"))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	all := values(t, tensor.U8, []int64{2, 4, 5, 3})
	if r.RowSize() != 60 {
		t.Fatalf("RowSize = %d, want 60", r.RowSize())
	}
	row, err := r.ReadRows(1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(row, all[60:]) {
		t.Fatalf("ReadRows(1, 1) = %x, want %x", row, all[60:])
	}
	if _, err := r.ReadRows(1, 2); err == nil || !strings.Contains(err.Error(), "rows [1, 3) are outside the first dimension of 2") {
		t.Fatalf("ReadRows(1, 2) err = %v", err)
	}
	if _, err := Open("testdata"); err == nil || !strings.Contains(err.Error(), "is a folder") {
		t.Fatalf("Open(folder) err = %v", err)
	}
	if _, err := Open(filepath.Join("testdata", "missing.npy")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Open(missing) err = %v, want ErrNotExist", err)
	}
}

func TestInts(t *testing.T) {
	for code, d := range codes {
		t.Run(code, func(t *testing.T) {
			a, err := ReadFile(filepath.Join("testdata", code+"_s5.npy"))
			if err != nil {
				t.Fatal(err)
			}
			got, err := a.Ints()
			if d.IsFloat() {
				if err == nil {
					t.Fatalf("Ints of %s: no error", d)
				}
				f, err := a.Float32s()
				if err != nil {
					t.Fatal(err)
				}
				for i, x := range f {
					if w := (float64(i) - 3.5) * 0.1; math.Abs(float64(x)-w) > 1e-3*math.Abs(w) {
						t.Fatalf("Float32s[%d] = %v, want %v", i, x, w)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, x := range got {
				var w int
				switch d {
				case tensor.U8:
					w = (i*37 + 11) % 256
				case tensor.I8:
					w = (i*37+11)%256 - 128
				case tensor.I16:
					w = i*1009 - 30000
				case tensor.I32:
					w = i*7919 - 100000
				case tensor.I64:
					w = i*1000003 - 5000000000
				case tensor.Bool:
					if i%3 == 0 {
						w = 1
					}
				}
				if x != w {
					t.Fatalf("Ints[%d] = %d, want %d", i, x, w)
				}
			}
		})
	}
}

func TestWriterErrors(t *testing.T) {
	dir := t.TempDir()
	h := Header{DType: tensor.I32, Shape: []int64{2}}
	path := filepath.Join(dir, "a.npy")

	w, err := Create(path, h, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err == nil || !strings.Contains(err.Error(), "only 4 of 8 data bytes written") {
		t.Fatalf("short Commit err = %v", err)
	}
	noFiles(t, dir)

	w, err = Create(path, h, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(make([]byte, 9)); err == nil || !strings.Contains(err.Error(), "1 bytes past the 8 data bytes") {
		t.Fatalf("long Write err = %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after a failed Write: no error")
	}
	noFiles(t, dir)

	w, err = Create(path, h, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w.Abort()
	noFiles(t, dir)

	if err := WriteFile(path, h, make([]byte, 7), WriteOptions{}); err == nil || !strings.Contains(err.Error(), "7 data bytes do not match") {
		t.Fatalf("WriteFile short err = %v", err)
	}
	if err := WriteFile(path, h, make([]byte, 8), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := WriteFile(path, h, make([]byte, 8), WriteOptions{}); !errors.Is(err, atomicfile.ErrExists) {
		t.Fatalf("overwrite without Force: err = %v, want ErrExists", err)
	}
	if err := WriteFile(path, Header{DType: tensor.U8, Shape: []int64{1}}, []byte{7}, WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	a, err := ReadFile(path)
	if err != nil || a.DType != tensor.U8 || !bytes.Equal(a.Data, []byte{7}) {
		t.Fatalf("after Force: %+v, %v", a, err)
	}
}

// noFiles fails when dir holds any file (a failed write must leave nothing behind).
func noFiles(t *testing.T, dir string) {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range es {
		t.Errorf("left behind: %s", e.Name())
	}
}

// BenchmarkWriteRead writes and reads a 16 MiB uint8 array (the size of 5000 32×32×3 images)
// through a file; the baseline is os.WriteFile/os.ReadFile of the same bytes.
func BenchmarkWriteRead(b *testing.B) {
	dir := b.TempDir()
	h := Header{DType: tensor.U8, Shape: []int64{5461, 32, 32, 3}}
	data := make([]byte, h.DataSize())
	b.Run("npy", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			p := filepath.Join(dir, "a.npy")
			if err := WriteFile(p, h, data, WriteOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
			if _, err := ReadFile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("os", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			p := filepath.Join(dir, "a.bin")
			if err := os.WriteFile(p, data, 0o644); err != nil {
				b.Fatal(err)
			}
			if _, err := os.ReadFile(p); err != nil {
				b.Fatal(err)
			}
		}
	})
}
