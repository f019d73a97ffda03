package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/rws-project/rws/tensor"
)

var update = flag.Bool("update", false, "rewrite testdata/malformed from the table in TestMalformed")

// file builds a safetensors file from a header string and a data area, with no padding.
func file(header string, data []byte) []byte {
	out := make([]byte, 8, 8+len(header)+len(data))
	binary.LittleEndian.PutUint64(out, uint64(len(header)))
	out = append(out, header...)
	return append(out, data...)
}

func f32(vals ...float32) []byte {
	b := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(v))
	}
	return b
}

// malformed has one file per validation rule. The files are committed under testdata/malformed
// (regenerate with go test ./safetensors -run TestMalformed -update).
var malformed = []struct {
	name string
	data []byte
	rule string
	says string // a fragment the message must contain
}{
	{"too_short", []byte{1, 2, 3}, RuleTooShort, "at least 8"},
	{"header_over_100mb", func() []byte {
		b := make([]byte, 16)
		binary.LittleEndian.PutUint64(b, 200_000_000)
		return b
	}(), RuleHeaderSize, "100 MB"},
	{"header_past_end", func() []byte {
		b := file(`{}`, nil)
		binary.LittleEndian.PutUint64(b, 64)
		return b
	}(), RuleHeaderSize, "past the end"},
	{"invalid_utf8", file("{\"a\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", f32(1)), RuleUTF8, "0xff"},
	{"invalid_json", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}`, f32(1)), RuleJSON, ""},
	{"not_an_object", file(`[1,2]`, nil), RuleJSON, "object"},
	{"duplicate_key", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(1, 2)), RuleDuplicate, `"a" appears twice`},
	{"duplicate_field", file(`{"a":{"dtype":"F32","dtype":"F16","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleDuplicate, `"dtype"`},
	{"case_insensitive_field", file(`{"a":{"DType":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleField, `unknown field "DType"`},
	{"missing_field", file(`{"a":{"dtype":"F32","shape":[1]}}`, f32(1)), RuleField, `missing field "data_offsets"`},
	{"empty_name", file(`{"":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleName, "empty"},
	{"nul_in_name", file(`{"a\u0000b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleName, "NUL"},
	{"unknown_dtype", file(`{"a":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleDType, `"F33"`},
	{"negative_shape", file(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, f32(1)), RuleShape, "-1"},
	{"fractional_shape", file(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, f32(1)), RuleShape, "1.5"},
	{"overflowing_shape", file(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}`, f32(1)), RuleShape, "overflows"},
	{"offsets_reversed", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, f32(1)), RuleOffsets, "end before"},
	{"offsets_three", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4,8]}}`, f32(1)), RuleOffsets, "2 numbers"},
	{"offsets_out_of_range", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, f32(1)), RuleTruncated, "needs 8 data bytes"},
	{"overlap", file(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}`, f32(1, 2)), RuleOverlap, "overlaps"},
	{"hole", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}`, f32(1, 2, 3)), RuleHole, "belong to no tensor"},
	{"span_mismatch", file(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, f32(1, 2)), RuleSpan, "needs 12 bytes"},
	{"trailing_bytes", file(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1, 2)), RuleTrailing, "4 bytes follow"},
	{"metadata_not_strings", file(`{"__metadata__":{"n":1},"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleMetadata, `"n" must be a string`},
	{"metadata_not_map", file(`{"__metadata__":["x"],"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}`, f32(1)), RuleMetadata, "an array"},
	{"metadata_nested", file(`{"__metadata__":{"n":{"x":"y"}}}`, nil), RuleMetadata, "object or array"},
	{"garbage_after_header", file(`{} x`, nil), RuleJSON, "after the header"},
}

func TestMalformed(t *testing.T) {
	dir := filepath.Join("testdata", "malformed")
	if *update {
		os.RemoveAll(dir)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for _, tc := range malformed {
			if err := os.WriteFile(filepath.Join(dir, tc.name+".safetensors"), tc.data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	rules := map[string]bool{}
	for _, tc := range malformed {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name+".safetensors")
			onDisk, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (regenerate with -update)", err)
			}
			if !bytes.Equal(onDisk, tc.data) {
				t.Fatalf("%s differs from the table (regenerate with -update)", path)
			}
			r, err := Open(path)
			if err == nil {
				r.Close()
				t.Fatal("Open accepted a malformed file")
			}
			var fe *FormatError
			if !errors.As(err, &fe) || !errors.Is(err, ErrFormat) {
				t.Fatalf("error %v is not a *FormatError", err)
			}
			if fe.Rule != tc.rule {
				t.Errorf("rule %q, want %q (%v)", fe.Rule, tc.rule, err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.says) {
				t.Errorf("message %q should name the file and say %q", err, tc.says)
			}
			// Parse applies the same rules to a file in memory.
			if _, _, err := Parse(path, onDisk); !errors.As(err, &fe) || fe.Rule != tc.rule {
				t.Errorf("Parse: error %v, want rule %q", err, tc.rule)
			}
		})
		rules[tc.rule] = true
	}
	for _, r := range []string{RuleTooShort, RuleHeaderSize, RuleUTF8, RuleJSON, RuleDuplicate, RuleName, RuleField,
		RuleDType, RuleShape, RuleOffsets, RuleOverlap, RuleHole, RuleSpan, RuleTrailing, RuleMetadata, RuleTruncated} {
		if !rules[r] {
			t.Errorf("no malformed vector for rule %q", r)
		}
	}
}

// TestParse checks that Parse of a file's bytes describes it as Open does, with offsets into the
// bytes.
func TestParse(t *testing.T) {
	for _, path := range []string{"testdata/dtypes.safetensors"} {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := Open(path)
		if err != nil {
			t.Fatal(err)
		}
		infos, meta, err := Parse(path, data)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(infos, r.Tensors()) || !reflect.DeepEqual(meta, r.Metadata()) {
			t.Errorf("%s: Parse gives %+v %v, Open %+v %v", path, infos, meta, r.Tensors(), r.Metadata())
		}
		for _, in := range infos {
			raw, err := r.ReadRaw(in.Name)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(raw, data[in.Offset:in.Offset+in.Size]) {
				t.Errorf("%s: tensor %q: Parse's offsets do not lead to its bytes", path, in.Name)
			}
		}
		r.Close()
		if _, _, err := Parse(path, data[:len(data)-1]); !errors.Is(err, ErrFormat) {
			t.Errorf("Parse of a file one byte short: %v, want a format error", err)
		}
	}
}

// TestDTypeVectors reads the file written from the raw layout by scripts/gen_dtype_vectors.py,
// checks every value, and checks that rws writes the same tensors to identical bytes.
func TestDTypeVectors(t *testing.T) {
	r, err := Open("testdata/dtypes.safetensors")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	raw, err := os.ReadFile("testdata/dtypes.json")
	if err != nil {
		t.Fatal(err)
	}
	var want struct {
		Metadata map[string]string
		Tensors  map[string]struct {
			DType  string
			Shape  []int64
			Values []float64
		}
	}
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(r.Tensors()) != len(want.Tensors) {
		t.Fatalf("%d tensors, want %d", len(r.Tensors()), len(want.Tensors))
	}
	var ts []Tensor
	for _, in := range r.Tensors() {
		w := want.Tensors[in.Name]
		if string(in.DType) != w.DType || !equalShape(in.Shape, w.Shape) {
			t.Errorf("%s: %s %v, want %s %v", in.Name, in.DType, in.Shape, w.DType, w.Shape)
		}
		vals := make([]float64, in.Elements())
		data, err := r.ReadRaw(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if err := tensor.DecodeFloat64(in.DType, data, vals); err != nil {
			t.Fatal(err)
		}
		for i, v := range vals {
			if v != w.Values[i] && !(math.IsNaN(v) && math.IsNaN(w.Values[i])) {
				t.Errorf("%s[%d] = %g, want %g", in.Name, i, v, w.Values[i])
			}
		}
		ts = append(ts, Tensor{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: data})
	}
	out := filepath.Join(t.TempDir(), "out.safetensors")
	if err := WriteFile(out, ts, r.Metadata(), WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(out)
	orig, _ := os.ReadFile("testdata/dtypes.safetensors")
	if !bytes.Equal(got, orig) {
		t.Errorf("rws wrote %d bytes that differ from the reference layout (%d bytes)", len(got), len(orig))
	}
}

func equalShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestWriterStreamsAndRefuses(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "m.safetensors")
	infos := []Info{
		{Name: "b.weight", DType: tensor.F32, Shape: []int64{2, 2}, Size: 16},
		{Name: "a.bias", DType: tensor.F16, Shape: []int64{3}, Size: 6},
	}
	w, err := Create(path, infos, map[string]string{"k": "v"}, WriteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("target visible before Commit")
	}
	if err := w.WriteTensor("a.bias", make([]byte, 6)); err == nil {
		t.Fatal("out-of-order tensor accepted")
	}
	w.Abort()
	entries, _ := os.ReadDir(dir)
	if len(entries) != 0 {
		t.Fatalf("abort left %v behind", entries)
	}

	w, _ = Create(path, infos, map[string]string{"k": "v"}, WriteOptions{})
	w.Write(f32(1, 2)) // a tensor in several writes
	w.Write(f32(3, 4))
	if err := w.Commit(); err == nil {
		t.Fatal("commit with a missing tensor succeeded")
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Fatalf("failed commit left %v behind", entries)
	}

	w, _ = Create(path, infos, map[string]string{"k": "v"}, WriteOptions{})
	w.WriteTensor("b.weight", f32(1, 2, 3, 4))
	w.WriteTensor("a.bias", []byte{0, 0x3c, 0, 0x40, 0, 0xc0})
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	raw, _ := os.ReadFile(path)
	if n := binary.LittleEndian.Uint64(raw); (8+n)%8 != 0 {
		t.Errorf("header length %d leaves the data unaligned", n)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := r.ReadFloat32("a.bias")
	if got[0] != 1 || got[1] != 2 || got[2] != -2 {
		t.Errorf("a.bias = %v", got)
	}
	if r.Metadata()["k"] != "v" || r.Names()[0] != "b.weight" {
		t.Errorf("metadata %v, names %v", r.Metadata(), r.Names())
	}
	r.Close()

	if _, err := Create(path, infos, nil, WriteOptions{}); err == nil {
		t.Error("existing file overwritten without Force")
	}
	if _, err := Create(path, []Info{{Name: "x", DType: tensor.F32, Shape: []int64{2}, Size: 4}}, nil, WriteOptions{Force: true}); err == nil {
		t.Error("declared size that contradicts the shape accepted")
	}
}

func TestSharded(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, ts ...Tensor) {
		if err := WriteFile(filepath.Join(dir, name), ts, map[string]string{"format": "pt"}, WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	write("model-00001-of-00002.safetensors", Tensor{Name: "conv1.weight", DType: tensor.F32, Shape: []int64{1}, Data: f32(1)})
	write("model-00002-of-00002.safetensors", Tensor{Name: "fc.weight", DType: tensor.F32, Shape: []int64{2}, Data: f32(2, 3)})
	index := func(m map[string]string) string {
		p := filepath.Join(dir, "model.safetensors.index.json")
		b, _ := json.Marshal(map[string]any{"metadata": map[string]any{"total_size": 12}, "weight_map": m})
		os.WriteFile(p, b, 0o644)
		return p
	}
	p := index(map[string]string{"conv1.weight": "model-00001-of-00002.safetensors", "fc.weight": "model-00002-of-00002.safetensors"})
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	v, err := r.ReadFloat32("fc.weight")
	if err != nil || v[1] != 3 || !r.Sharded() || len(r.Tensors()) != 2 {
		t.Errorf("sharded read: %v %v", v, err)
	}
	r.Close()
	for name, m := range map[string]map[string]string{
		"wrong shard":   {"conv1.weight": "model-00002-of-00002.safetensors", "fc.weight": "model-00002-of-00002.safetensors"},
		"missing entry": {"conv1.weight": "model-00001-of-00002.safetensors", "fc.weight": "model-00002-of-00002.safetensors", "fc.bias": "model-00002-of-00002.safetensors"},
		"escaping path": {"conv1.weight": "../x.safetensors"},
	} {
		if r, err := Open(index(m)); err == nil {
			r.Close()
			t.Errorf("%s: index accepted", name)
		} else if !errors.Is(err, ErrFormat) {
			t.Errorf("%s: %v is not a format error", name, err)
		}
	}
}

func TestStreamBoundedChunks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.safetensors")
	n := 3*ChunkSize/4 + 5
	data := make([]byte, 4*n)
	for i := range data {
		data[i] = byte(i)
	}
	if err := WriteFile(path, []Tensor{{Name: "x", DType: tensor.F32, Shape: []int64{int64(n)}, Data: data}}, nil, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, _ := Open(path)
	defer r.Close()
	var got []byte
	chunks := 0
	err := r.Stream("x", nil, func(c []byte) error {
		if len(c) > ChunkSize || len(c)%4 != 0 {
			t.Errorf("chunk of %d bytes", len(c))
		}
		chunks++
		got = append(got, c...)
		return nil
	})
	if err != nil || !bytes.Equal(got, data) || chunks != 4 {
		t.Errorf("stream: %d chunks, equal=%v, err=%v", chunks, bytes.Equal(got, data), err)
	}
}
