package tensor

import (
	"encoding/binary"
	"fmt"
	"math"
)

// DecodeFloat32 converts the little-endian elements in raw, of type d, into dst. len(dst) must be
// len(raw)/d.Size(). Integer and BOOL types convert to their value; F64 rounds to nearest.
func DecodeFloat32(d DType, raw []byte, dst []float32) error {
	sz := d.Size()
	if sz == 0 {
		return fmt.Errorf("tensor: unknown dtype %q", d)
	}
	if len(raw) != len(dst)*sz {
		return fmt.Errorf("tensor: %d bytes of %s do not hold %d elements", len(raw), d, len(dst))
	}
	switch d {
	case F32:
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
	case F64:
		for i := range dst {
			dst[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case F16:
		for i := range dst {
			dst[i] = F16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case BF16:
		for i := range dst {
			dst[i] = BF16ToFloat32(binary.LittleEndian.Uint16(raw[2*i:]))
		}
	case F8E4M3:
		for i := range dst {
			dst[i] = F8E4M3ToFloat32(raw[i])
		}
	case F8E5M2:
		for i := range dst {
			dst[i] = F8E5M2ToFloat32(raw[i])
		}
	case I64:
		for i := range dst {
			dst[i] = float32(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		}
	case I32:
		for i := range dst {
			dst[i] = float32(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
	case I16:
		for i := range dst {
			dst[i] = float32(int16(binary.LittleEndian.Uint16(raw[2*i:])))
		}
	case I8:
		for i := range dst {
			dst[i] = float32(int8(raw[i]))
		}
	case U8, Bool:
		for i := range dst {
			dst[i] = float32(raw[i])
		}
	}
	return nil
}

// DecodeFloat64 converts the little-endian elements in raw into dst, exactly for every type but
// I64 values beyond 2^53 (every F32/F16/BF16/F8 and smaller integer value fits in float64).
func DecodeFloat64(d DType, raw []byte, dst []float64) error {
	if sz := d.Size(); sz > 0 && len(raw) != sz*len(dst) {
		return fmt.Errorf("tensor: %d bytes of %s do not hold %d elements", len(raw), d, len(dst))
	}
	switch d {
	case I64:
		for i := range dst {
			dst[i] = float64(int64(binary.LittleEndian.Uint64(raw[8*i:])))
		}
		return nil
	case I32:
		for i := range dst {
			dst[i] = float64(int32(binary.LittleEndian.Uint32(raw[4*i:])))
		}
		return nil
	}
	if d == F64 {
		if len(raw) != 8*len(dst) {
			return fmt.Errorf("tensor: %d bytes of F64 do not hold %d elements", len(raw), len(dst))
		}
		for i := range dst {
			dst[i] = math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
		}
		return nil
	}
	tmp := make([]float32, len(dst))
	if err := DecodeFloat32(d, raw, tmp); err != nil {
		return err
	}
	for i, v := range tmp {
		dst[i] = float64(v)
	}
	return nil
}

// EncodeFloat32 converts src into little-endian elements of type d in dst, rounding to nearest
// even when narrowing. d must be F64, F32, F16 or BF16; len(dst) must be len(src)*d.Size().
func EncodeFloat32(d DType, src []float32, dst []byte) error {
	if !d.Writable() {
		return fmt.Errorf("tensor: cannot encode float32 as %q (supported: F64, F32, F16, BF16)", d)
	}
	if len(dst) != len(src)*d.Size() {
		return fmt.Errorf("tensor: %d bytes cannot hold %d elements of %s", len(dst), len(src), d)
	}
	switch d {
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(v))
		}
	case F64:
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(float64(v)))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToF16(v))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(v))
		}
	}
	return nil
}

// EncodeFloat64 converts src into little-endian elements of type d in dst, rounding each value
// once to nearest even: going through float32 first would round twice, and could then miss the
// nearest F16 or BF16 value of a float64 just off a halfway point. d must be F64, F32, F16 or
// BF16; len(dst) must be len(src)*d.Size().
func EncodeFloat64(d DType, src []float64, dst []byte) error {
	if !d.Writable() {
		return fmt.Errorf("tensor: cannot encode float64 as %q (supported: F64, F32, F16, BF16)", d)
	}
	if len(dst) != len(src)*d.Size() {
		return fmt.Errorf("tensor: %d bytes cannot hold %d elements of %s", len(dst), len(src), d)
	}
	switch d {
	case F64:
		for i, v := range src {
			binary.LittleEndian.PutUint64(dst[8*i:], math.Float64bits(v))
		}
	case F32:
		for i, v := range src {
			binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(float32(v)))
		}
	case F16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToF16(roundToOdd32(v)))
		}
	case BF16:
		for i, v := range src {
			binary.LittleEndian.PutUint16(dst[2*i:], Float32ToBF16(roundToOdd32(v)))
		}
	}
	return nil
}

// roundToOdd32 rounds v to float32 toward zero and, when that is inexact, sets the lowest
// significand bit. A float32 rounded that way, then rounded to nearest even into a format with at
// least two fewer significand bits at every magnitude (F16, BF16), gives the nearest-even
// rounding of v itself (Boldo and Melquiond, "Emulation of FMA and correctly rounded sums:
// proved algorithms using rounding to odd", IEEE Trans. Computers 57(4), 2008).
func roundToOdd32(v float64) float32 {
	f := float32(v)
	if float64(f) == v || v != v {
		return f
	}
	if math.Abs(float64(f)) > math.Abs(v) {
		f = math.Nextafter32(f, 0)
	}
	return math.Float32frombits(math.Float32bits(f) | 1)
}

// F16ToFloat32 converts IEEE 754 half-precision bits to float32 exactly.
func F16ToFloat32(h uint16) float32 {
	sign := uint32(h>>15) << 31
	exp := uint32(h>>10) & 0x1f
	man := uint32(h) & 0x3ff
	switch {
	case exp == 0x1f: // Inf or NaN
		return math.Float32frombits(sign | 0x7f800000 | man<<13)
	case exp == 0:
		if man == 0 {
			return math.Float32frombits(sign)
		}
		// Subnormal: value = man · 2^-24.
		f := float32(man) * (1.0 / (1 << 24))
		if sign != 0 {
			f = -f
		}
		return f
	}
	return math.Float32frombits(sign | (exp+127-15)<<23 | man<<13)
}

// Float32ToF16 converts f to half-precision bits, rounding to nearest even; overflow gives ±Inf,
// NaN gives a quiet NaN that keeps the top payload bits.
func Float32ToF16(f float32) uint16 {
	b := math.Float32bits(f)
	sign := uint16(b>>16) & 0x8000
	exp := int32(b>>23) & 0xff
	man := b & 0x7fffff
	if exp == 0xff {
		if man != 0 {
			return sign | 0x7e00 | uint16(man>>13)
		}
		return sign | 0x7c00
	}
	e := exp - 127 + 15
	if e >= 0x1f {
		return sign | 0x7c00
	}
	if e <= 0 {
		// Subnormal or zero in half precision: shift the full mantissa (with the implicit 1).
		if e < -10 {
			return sign // rounds to zero (below half the smallest subnormal)
		}
		m := man | 0x800000
		shift := uint32(14 - e)
		half := uint32(1) << (shift - 1)
		rest := m & (1<<shift - 1)
		r := m >> shift
		if rest > half || (rest == half && r&1 == 1) {
			r++
		}
		return sign | uint16(r)
	}
	r := uint32(e)<<10 | man>>13
	rest := man & 0x1fff
	if rest > 0x1000 || (rest == 0x1000 && r&1 == 1) {
		r++ // may carry into the exponent, up to Inf: that is correct rounding
	}
	return sign | uint16(r)
}

// BF16ToFloat32 converts bfloat16 bits to float32 exactly.
func BF16ToFloat32(h uint16) float32 { return math.Float32frombits(uint32(h) << 16) }

// Float32ToBF16 converts f to bfloat16 bits, rounding to nearest even; NaN stays a quiet NaN.
func Float32ToBF16(f float32) uint16 {
	b := math.Float32bits(f)
	if b&0x7fffffff > 0x7f800000 {
		return uint16(b>>16) | 0x40
	}
	rest := b & 0xffff
	r := b >> 16
	if rest > 0x8000 || (rest == 0x8000 && r&1 == 1) {
		r++
	}
	return uint16(r)
}

// F8E4M3ToFloat32 converts an OCP FP8 E4M3 (“fn”: no infinities, 0x7f/0xff are NaN) byte.
func F8E4M3ToFloat32(v uint8) float32 {
	sign := float32(1)
	if v&0x80 != 0 {
		sign = -1
	}
	exp := int(v>>3) & 0xf
	man := float32(v & 7)
	if exp == 0xf && v&7 == 7 {
		return float32(math.NaN())
	}
	if exp == 0 {
		return sign * man / 8 * float32(math.Ldexp(1, -6))
	}
	return sign * (1 + man/8) * float32(math.Ldexp(1, exp-7))
}

// F8E5M2ToFloat32 converts an FP8 E5M2 byte (IEEE-like, with infinities and NaN).
func F8E5M2ToFloat32(v uint8) float32 { return F16ToFloat32(uint16(v) << 8) }
