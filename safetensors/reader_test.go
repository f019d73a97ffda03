package safetensors

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/rws-project/rws/tensor"
)

// TestReadFloat32At checks every range of a few tensors of several types against ReadFloat32.
func TestReadFloat32At(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.safetensors")
	vals := []float32{1.5, -2, 0.25, 3, -0.5, 8, 1024}
	var ts []Tensor
	for _, d := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.F64} {
		raw := make([]byte, len(vals)*d.Size())
		if err := tensor.EncodeFloat32(d, vals, raw); err != nil {
			t.Fatal(err)
		}
		ts = append(ts, Tensor{Name: string(d), DType: d, Shape: []int64{int64(len(vals))}, Data: raw})
	}
	if err := WriteFile(path, ts, nil, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var scratch []byte
	for _, tt := range ts {
		all, err := r.ReadFloat32(tt.Name)
		if err != nil {
			t.Fatal(err)
		}
		for at := 0; at <= len(vals); at++ {
			for n := 0; at+n <= len(vals); n++ {
				dst := make([]float32, n)
				if err := r.ReadFloat32At(tt.Name, dst, int64(at), &scratch); err != nil {
					t.Fatalf("%s [%d:%d]: %v", tt.Name, at, at+n, err)
				}
				for i := range dst {
					if dst[i] != all[at+i] {
						t.Fatalf("%s [%d:%d]: %v, want %v", tt.Name, at, at+n, dst, all[at:at+n])
					}
				}
			}
		}
		if err := r.ReadFloat32At(tt.Name, make([]float32, 2), int64(len(vals)-1), &scratch); err == nil {
			t.Errorf("%s: read past the end accepted", tt.Name)
		}
		if err := r.ReadFloat32At(tt.Name, nil, -1, &scratch); err == nil {
			t.Errorf("%s: negative offset accepted", tt.Name)
		}
	}
	if err := r.ReadFloat32At("none", nil, 0, &scratch); !errors.Is(err, ErrNoTensor) {
		t.Errorf("missing tensor: %v, want ErrNoTensor", err)
	}
	// Cut short after Open: a format error that names the rule, not a short read.
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-2); err != nil {
		t.Fatal(err)
	}
	var fe *FormatError
	if err := r.ReadFloat32At(string(tensor.F64), make([]float32, 1), int64(len(vals)-1), &scratch); !errors.As(err, &fe) || fe.Rule != RuleTruncated {
		t.Errorf("truncated: %v, want a %s error", err, RuleTruncated)
	}
}

// TestReadRawAt checks every byte range of a tensor against ReadRaw, and the range checks.
func TestReadRawAt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "f.safetensors")
	data := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}
	ts := []Tensor{{Name: "a", DType: tensor.U8, Shape: []int64{2}, Data: []byte{99, 98}},
		{Name: "b", DType: tensor.F32, Shape: []int64{3}, Data: data}}
	if err := WriteFile(path, ts, nil, WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for at := 0; at <= len(data); at++ {
		for n := 0; at+n <= len(data); n++ {
			dst := make([]byte, n)
			if err := r.ReadRawAt("b", dst, int64(at)); err != nil {
				t.Fatalf("[%d:%d]: %v", at, at+n, err)
			}
			if string(dst) != string(data[at:at+n]) {
				t.Fatalf("[%d:%d]: %v, want %v", at, at+n, dst, data[at:at+n])
			}
		}
	}
	if err := r.ReadRawAt("b", make([]byte, 2), int64(len(data)-1)); err == nil {
		t.Error("read past the end accepted")
	}
	if err := r.ReadRawAt("b", nil, -1); err == nil {
		t.Error("negative offset accepted")
	}
	if err := r.ReadRawAt("none", nil, 0); !errors.Is(err, ErrNoTensor) {
		t.Errorf("missing tensor: %v, want ErrNoTensor", err)
	}
}
