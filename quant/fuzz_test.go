package quant

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"testing"
)

// FuzzDecode feeds untrusted codes and parameters to Validate and Decode: they must never panic,
// must agree, and a tensor they accept must round-trip: its codes re-pack to the same bytes and
// its decoded values encode (with its parameters) to themselves.
func FuzzDecode(f *testing.F) {
	for _, spec := range []Spec{{None, 0}, {Linear, 3}, {Log, 4}, {Tanh, 2}, {Gauss, 1}, {Gauss, 8}} {
		q, err := Encode(data("normal", 24, 3), 2, spec)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(codecIndex(spec.Codec), uint8(spec.Bits), uint16(q.Len), uint8(q.Groups), q.Codes, paramBytes(q.Params))
	}
	f.Add(uint8(1), uint8(5), uint16(3), uint8(1), []byte{0xFF, 0x7F}, []byte{0, 0, 0x80, 0x7F, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, codec, bits uint8, n uint16, groups uint8, codes, params []byte) {
		q := &Tensor{
			Spec:   Spec{Codecs[int(codec)%len(Codecs)], int(bits % 10)},
			Len:    int(n),
			Groups: int(groups),
			Codes:  codes,
		}
		for i := 0; i+4 <= len(params); i += 4 {
			q.Params = append(q.Params, math.Float32frombits(binary.LittleEndian.Uint32(params[i:])))
		}
		verr := q.Validate()
		y := make([]float32, q.Len)
		derr := q.Decode(y)
		if (verr == nil) != (derr == nil) {
			t.Fatalf("Validate = %v but Decode = %v", verr, derr)
		}
		if derr != nil {
			if !errors.Is(derr, ErrCorrupt) {
				t.Fatalf("Decode error %v does not wrap ErrCorrupt", derr)
			}
			return
		}
		for i, v := range y {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				t.Fatalf("value %d decoded as %v", i, v)
			}
		}
		if q.Spec.Codec == None {
			return
		}
		c := make([]uint8, q.Len)
		if err := Unpack(c, q.Codes, q.Spec.Bits); err != nil {
			t.Fatal(err)
		}
		re := make([]byte, len(q.Codes))
		Pack(re, c, q.Spec.Bits)
		if !bytes.Equal(re, q.Codes) {
			t.Fatalf("codes %x re-pack as %x", q.Codes, re)
		}
		again := &Tensor{Spec: q.Spec, Len: q.Len, Groups: q.Groups, Codes: reencode(t, q, y), Params: q.Params}
		z := make([]float32, q.Len)
		if err := again.Decode(z); err != nil {
			t.Fatal(err)
		}
		for i := range y {
			if y[i] != z[i] {
				t.Fatalf("value %d: decoded %v re-encodes to %v", i, y[i], z[i])
			}
		}
	})
}

func codecIndex(c Codec) uint8 {
	for i, k := range Codecs {
		if k == c {
			return uint8(i)
		}
	}
	return 0
}

func paramBytes(p []float32) []byte {
	out := make([]byte, 4*len(p))
	for i, v := range p {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}
