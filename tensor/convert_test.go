package tensor

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"os"
	"testing"
)

// The vectors come from scripts/gen_dtype_vectors.py (numpy astype(float16) and torch
// to(bfloat16), both round-to-nearest-even; F8 tables from the OCP FP8 specification).

func TestNarrowingMatchesNumpyAndTorch(t *testing.T) {
	raw, err := os.ReadFile("testdata/narrowing.json")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		Cases []struct{ F32, F16, BF16 uint32 }
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Cases) < 500 {
		t.Fatalf("only %d cases", len(v.Cases))
	}
	for _, c := range v.Cases {
		f := math.Float32frombits(c.F32)
		if got := Float32ToF16(f); uint32(got) != c.F16 {
			t.Errorf("Float32ToF16(%g = %#08x) = %#04x, numpy gives %#04x", f, c.F32, got, c.F16)
		}
		if got := Float32ToBF16(f); uint32(got) != c.BF16 {
			t.Errorf("Float32ToBF16(%g = %#08x) = %#04x, torch gives %#04x", f, c.F32, got, c.BF16)
		}
	}
}

func TestF16DecodeAllCodes(t *testing.T) {
	raw, err := os.ReadFile("testdata/f16_all.bin")
	if err != nil {
		t.Fatal(err)
	}
	for code := 0; code < 65536; code++ {
		want := binary.LittleEndian.Uint32(raw[4*code:])
		got := math.Float32bits(F16ToFloat32(uint16(code)))
		if math.IsNaN(float64(math.Float32frombits(want))) {
			if !math.IsNaN(float64(math.Float32frombits(got))) {
				t.Errorf("F16 %#04x: got %#08x, want NaN", code, got)
			}
			continue
		}
		if got != want {
			t.Errorf("F16 %#04x: got %#08x, numpy gives %#08x", code, got, want)
		}
		// Every F16 value survives the round trip through float32.
		if back := Float32ToF16(math.Float32frombits(got)); back != uint16(code) {
			t.Errorf("F16 %#04x: round trip gives %#04x", code, back)
		}
	}
}

func TestBF16RoundTripAllCodes(t *testing.T) {
	for code := 0; code < 65536; code++ {
		f := BF16ToFloat32(uint16(code))
		if math.IsNaN(float64(f)) {
			if !math.IsNaN(float64(BF16ToFloat32(Float32ToBF16(f)))) {
				t.Errorf("BF16 %#04x: NaN lost", code)
			}
			continue
		}
		if back := Float32ToBF16(f); back != uint16(code) {
			t.Errorf("BF16 %#04x: round trip gives %#04x", code, back)
		}
	}
}

func TestF8Tables(t *testing.T) {
	raw, err := os.ReadFile("testdata/f8.json")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]json.RawMessage
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		key string
		fn  func(uint8) float32
	}{{"F8_E4M3", F8E4M3ToFloat32}, {"F8_E5M2", F8E5M2ToFloat32}} {
		var vals []any
		if err := json.Unmarshal(v[tc.key], &vals); err != nil {
			t.Fatal(err)
		}
		for code, want := range vals {
			got := float64(tc.fn(uint8(code)))
			switch w := want.(type) {
			case string:
				ok := (w == "nan" && math.IsNaN(got)) || (w == "inf" && math.IsInf(got, 1)) || (w == "-inf" && math.IsInf(got, -1))
				if !ok {
					t.Errorf("%s %#02x = %g, want %s", tc.key, code, got, w)
				}
			case float64:
				if got != w {
					t.Errorf("%s %#02x = %g, want %g", tc.key, code, got, w)
				}
			}
		}
	}
}

func TestEncodeDecodeRoundTrip(t *testing.T) {
	src := []float32{0, 1, -2.5, 1e-3, 65504, float32(math.Inf(-1))}
	for _, d := range []DType{F64, F32, F16, BF16} {
		buf := make([]byte, len(src)*d.Size())
		if err := EncodeFloat32(d, src, buf); err != nil {
			t.Fatal(err)
		}
		got := make([]float32, len(src))
		if err := DecodeFloat32(d, buf, got); err != nil {
			t.Fatal(err)
		}
		for i := range src {
			want := src[i]
			switch d {
			case F16:
				want = F16ToFloat32(Float32ToF16(want))
			case BF16:
				want = BF16ToFloat32(Float32ToBF16(want))
			}
			if got[i] != want {
				t.Errorf("%s: element %d = %g, want %g", d, i, got[i], want)
			}
		}
	}
}

// TestEncodeFloat64RoundsOnce checks EncodeFloat64 at every halfway point between adjacent
// positive and negative finite F16 and BF16 values: a float64 a hair above (below) the midpoint
// must round up (down) in magnitude, exactly on it to the even code. The hair is far below
// float32's resolution there, so rounding through float32 first turns it into a tie; the test
// counts the cases where that double rounding would be wrong, to show that it can tell.
func TestEncodeFloat64RoundsOnce(t *testing.T) {
	formats := []struct {
		d      DType
		last   uint16 // the largest finite code
		decode func(uint16) float32
	}{
		{F16, 0x7bff, F16ToFloat32},
		{BF16, 0x7f7f, BF16ToFloat32},
	}
	enc := func(d DType, v float64) uint16 {
		b := make([]byte, 2)
		if err := EncodeFloat64(d, []float64{v}, b); err != nil {
			t.Fatal(err)
		}
		return binary.LittleEndian.Uint16(b)
	}
	for _, f := range formats {
		twice := 0
		for h := uint16(0); h < f.last; h++ {
			for _, sign := range []uint16{0, 0x8000} {
				lo, hi := float64(f.decode(h|sign)), float64(f.decode((h+1)|sign))
				mid := (lo + hi) / 2 // exact: both have few significand bits
				hair := (hi - lo) * 0x1p-30
				even := h | sign
				if h&1 == 1 {
					even = (h + 1) | sign
				}
				for _, c := range []struct {
					v    float64
					want uint16
				}{{mid + hair, (h + 1) | sign}, {mid - hair, h | sign}, {mid, even}} {
					if got := enc(f.d, c.v); got != c.want {
						t.Fatalf("%s: EncodeFloat64(%v) = %#04x, want %#04x (between %#04x and %#04x)", f.d, c.v, got, c.want, h|sign, (h+1)|sign)
					}
					b := make([]byte, 2)
					EncodeFloat32(f.d, []float32{float32(c.v)}, b)
					if binary.LittleEndian.Uint16(b) != c.want {
						twice++
					}
				}
			}
		}
		if twice == 0 {
			t.Errorf("%s: rounding through float32 was never wrong here, so this test cannot tell", f.d)
		}
	}
	// Above the largest finite value by more than half a step: infinity; F32 and F64 as Go
	// converts them.
	if got := enc(F16, 65520.000001); got != 0x7c00 {
		t.Errorf("F16 overflow: %#04x, want +Inf", got)
	}
	if got := enc(BF16, -math.MaxFloat64); got != 0xff80 {
		t.Errorf("BF16 overflow: %#04x, want -Inf", got)
	}
	src := []float64{0, math.Copysign(0, -1), 1.0000000001, -3.3e-39, 1e300, math.Inf(1)}
	b32, b64 := make([]byte, 4*len(src)), make([]byte, 8*len(src))
	if err := EncodeFloat64(F32, src, b32); err != nil {
		t.Fatal(err)
	}
	if err := EncodeFloat64(F64, src, b64); err != nil {
		t.Fatal(err)
	}
	for i, v := range src {
		if got := binary.LittleEndian.Uint32(b32[4*i:]); got != math.Float32bits(float32(v)) {
			t.Errorf("F32(%v) = %#08x", v, got)
		}
		if got := binary.LittleEndian.Uint64(b64[8*i:]); got != math.Float64bits(v) {
			t.Errorf("F64(%v) = %#x", v, got)
		}
	}
	if err := EncodeFloat64(I64, []float64{1}, make([]byte, 8)); err == nil {
		t.Error("EncodeFloat64 to I64 succeeded")
	}
	if err := EncodeFloat64(F32, []float64{1}, make([]byte, 3)); err == nil {
		t.Error("EncodeFloat64 with a wrong length succeeded")
	}
}

func TestErrors(t *testing.T) {
	if _, err := ParseDType("F33"); err == nil {
		t.Error("ParseDType(F33) succeeded")
	}
	if err := EncodeFloat32(I8, []float32{1}, make([]byte, 1)); err == nil {
		t.Error("EncodeFloat32 to I8 succeeded")
	}
	if err := DecodeFloat32(F32, make([]byte, 5), make([]float32, 1)); err == nil {
		t.Error("DecodeFloat32 with a wrong length succeeded")
	}
	if Elements([]int64{1 << 40, 1 << 40}) != -1 || Elements([]int64{-1}) != -1 || Elements(nil) != 1 {
		t.Error("Elements does not flag overflow, negatives or scalars")
	}
}

func BenchmarkDecodeF16(b *testing.B) {
	raw := make([]byte, 2<<20)
	dst := make([]float32, 1<<20)
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		DecodeFloat32(F16, raw, dst)
	}
}

func BenchmarkEncodeBF16(b *testing.B) {
	src := make([]float32, 1<<20)
	dst := make([]byte, 2<<20)
	b.SetBytes(int64(len(dst)))
	for b.Loop() {
		EncodeFloat32(BF16, src, dst)
	}
}
