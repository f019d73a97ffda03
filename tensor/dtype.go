// Package tensor names the element types of checkpoint tensors and converts raw little-endian
// tensor bytes to and from float32 and float64. It does no I/O.
//
// Narrowing conversions (float32 to F16 or BF16) round to nearest, ties to even, as PyTorch and
// NumPy do; NaN stays NaN (quiet) and values beyond the largest finite number become ±Inf.
package tensor

import (
	"fmt"
	"strings"
)

// DType is a safetensors element type name, e.g. "F32".
type DType string

// The element types rws knows. F8 types are read-only.
const (
	F64    DType = "F64"
	F32    DType = "F32"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I64    DType = "I64"
	I32    DType = "I32"
	I16    DType = "I16"
	I8     DType = "I8"
	U8     DType = "U8"
	Bool   DType = "BOOL"
	F8E4M3 DType = "F8_E4M3"
	F8E5M2 DType = "F8_E5M2"
)

var sizes = map[DType]int{
	F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, Bool: 1, F8E4M3: 1, F8E5M2: 1,
}

// All lists every known DType in a fixed order.
var All = []DType{F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool, F8E4M3, F8E5M2}

// ParseDType returns the DType named s (exact, upper case as in safetensors headers).
func ParseDType(s string) (DType, error) {
	d := DType(s)
	if _, ok := sizes[d]; !ok {
		names := make([]string, len(All))
		for i, k := range All {
			names[i] = string(k)
		}
		return "", fmt.Errorf("unknown dtype %q (known: %s)", s, strings.Join(names, ", "))
	}
	return d, nil
}

// Size is the number of bytes of one element, or 0 for an unknown type.
func (d DType) Size() int { return sizes[d] }

// Valid reports whether d is a known type.
func (d DType) Valid() bool { return sizes[d] != 0 }

// IsFloat reports whether d is a floating-point type.
func (d DType) IsFloat() bool {
	switch d {
	case F64, F32, F16, BF16, F8E4M3, F8E5M2:
		return true
	}
	return false
}

// Writable reports whether EncodeFloat32 and EncodeFloat64 support d.
func (d DType) Writable() bool {
	switch d {
	case F64, F32, F16, BF16:
		return true
	}
	return false
}

// Elements is the product of shape, or -1 when a dimension is negative or the product overflows
// int64.
func Elements(shape []int64) int64 {
	n := int64(1)
	for _, s := range shape {
		if s < 0 {
			return -1
		}
		if s != 0 && n > (1<<62)/s {
			return -1
		}
		n *= s
	}
	return n
}
