package quant

import (
	"errors"
	"fmt"
	"strings"
)

// Codec names a quantization scheme for signature tensors.
type Codec string

// The codecs. None stores float32 values unchanged; the others store b-bit codes (see the
// package documentation for each one's levels, parameters and error bound).
const (
	None   Codec = "none"
	Linear Codec = "linear"
	Log    Codec = "log"
	Tanh   Codec = "tanh"
	Gauss  Codec = "gauss"
)

// Codecs lists every codec in the order the CLI shows them.
var Codecs = []Codec{None, Linear, Log, Tanh, Gauss}

// ErrUnknownCodec is wrapped by ParseCodec for a name that is not a codec.
var ErrUnknownCodec = errors.New("unknown codec")

// ErrUnsupportedBits is wrapped by Spec.Validate when a codec cannot use the requested bits.
var ErrUnsupportedBits = errors.New("unsupported bit width")

// ParseCodec returns the codec named s.
func ParseCodec(s string) (Codec, error) {
	for _, c := range Codecs {
		if string(c) == s {
			return c, nil
		}
	}
	return "", fmt.Errorf("quant: %w %q (use one of %s)", ErrUnknownCodec, s, codecList())
}

func codecList() string {
	names := make([]string, len(Codecs))
	for i, c := range Codecs {
		names[i] = string(c)
	}
	return strings.Join(names, ", ")
}

// Granularity says how values share quantization parameters.
type Granularity string

// The granularities. PerChannel groups the values of each output channel: the first dimension
// of a row-major tensor, so each group is a contiguous run of Len/channels values.
const (
	PerTensor  Granularity = "tensor"
	PerChannel Granularity = "channel"
)

// ParseGranularity returns the granularity named s ("tensor" or "channel").
func ParseGranularity(s string) (Granularity, error) {
	switch Granularity(s) {
	case PerTensor, PerChannel:
		return Granularity(s), nil
	}
	return "", fmt.Errorf("quant: unknown granularity %q (use tensor or channel)", s)
}

// MaxBits is the widest code any codec accepts.
const MaxBits = 8

// Spec is a codec with its code width.
type Spec struct {
	Codec Codec
	// Bits is the code width: 1–8 (2–8 for Log). It is ignored for None, whose values are
	// float32 (CodeBits reports 32).
	Bits int
}

// Validate reports whether s names a known codec with a bit width it supports.
func (s Spec) Validate() error {
	switch s.Codec {
	case None:
		return nil
	case Linear, Tanh, Gauss:
		if s.Bits < 1 || s.Bits > MaxBits {
			return fmt.Errorf("quant: %s: %w %d (use 1 to %d bits)", s.Codec, ErrUnsupportedBits, s.Bits, MaxBits)
		}
		return nil
	case Log:
		if s.Bits < 2 || s.Bits > MaxBits {
			return fmt.Errorf("quant: log: %w %d (use 2 to %d bits: one sign bit plus at least one magnitude bit)", ErrUnsupportedBits, s.Bits, MaxBits)
		}
		return nil
	}
	return fmt.Errorf("quant: %w %q (use one of %s)", ErrUnknownCodec, s.Codec, codecList())
}

// CodeBits returns the bits stored per value: Bits, or 32 for None.
func (s Spec) CodeBits() int {
	if s.Codec == None {
		return 32
	}
	return s.Bits
}

// ParamsPerGroup returns how many float32 parameters each group stores: 0 for None, else 2.
func (s Spec) ParamsPerGroup() int {
	if s.Codec == None {
		return 0
	}
	return 2
}

// ParamNames names the float32 parameters of one group, in storage order.
func (s Spec) ParamNames() []string {
	switch s.Codec {
	case Linear:
		return []string{"min", "max"}
	case Log:
		return []string{"log2_min", "log2_max"}
	case Tanh:
		return []string{"tanh_min", "tanh_max"}
	case Gauss:
		return []string{"mean", "std"}
	}
	return nil
}

// String returns "none" or "codec/bits", e.g. "linear/8".
func (s Spec) String() string {
	if s.Codec == None {
		return string(None)
	}
	return fmt.Sprintf("%s/%d", s.Codec, s.Bits)
}

// GaussCodes returns a copy of the b-bit Gaussian-median codebook in ascending order, for
// 1 ≤ b ≤ 8, or nil for other b.
func GaussCodes(bits int) []float64 {
	if bits < 1 || bits > MaxBits {
		return nil
	}
	return append([]float64(nil), gaussCodebooks[bits]...)
}
