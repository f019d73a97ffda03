package quant

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sort"
)

// ErrCorrupt is wrapped by every error about stored codes or parameters that cannot be decoded.
var ErrCorrupt = errors.New("corrupt quantized tensor")

// tanhMax is the largest float32 below 1, 1 − 2^−24: the tanh codec clamps its range to
// [−tanhMax, tanhMax] so that every level decodes to a finite value (atanh(tanhMax) ≈ 8.664).
const tanhMax = float32(1 - 1.0/(1<<24))

// TanhSaturation is the magnitude beyond which the tanh codec saturates: atanh(1 − 2^−24) ≈ 8.664.
// Values larger in magnitude decode to about ±TanhSaturation.
var TanhSaturation = math.Atanh(float64(tanhMax))

// Tensor is one quantized tensor: its packed codes and the float32 parameters of each group.
type Tensor struct {
	Spec Spec
	// Len is the number of values.
	Len int
	// Groups is the number of parameter groups: 1 for a per-tensor code, or the output channels.
	// Group g holds values g·Len/Groups … (g+1)·Len/Groups − 1; Len must be a multiple of Groups.
	Groups int
	// Codes holds PackedLen(Len, Spec.Bits) bytes of codes in Pack's layout, or for None the Len
	// values as little-endian float32.
	Codes []byte
	// Params holds Spec.ParamsPerGroup() float32 values per group, group after group, in the order
	// of Spec.ParamNames().
	Params []float32
}

// Size returns the bytes the tensor stores: its codes plus 4 bytes per parameter.
func (t *Tensor) Size() int64 { return int64(len(t.Codes)) + 4*int64(len(t.Params)) }

// Encode quantizes x with spec, with groups parameter groups (1 for per tensor, or the number of
// output channels; len(x) must be a multiple of groups). It computes each group's parameters
// (see the package documentation), then gives each value the code whose decoded float32 value
// is nearest to it among the codec's nearest code and that code's two neighbours; so the error is
// never larger than the bound the package documents, and decoded values encode to themselves.
// Non-finite values are an error.
func Encode(x []float32, groups int, spec Spec) (*Tensor, error) {
	if err := spec.Validate(); err != nil {
		return nil, err
	}
	if groups < 1 || len(x)%groups != 0 {
		return nil, fmt.Errorf("quant: %d values cannot be split into %d groups", len(x), groups)
	}
	for i, v := range x {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return nil, fmt.Errorf("quant: value %d is %v; only finite values can be encoded", i, v)
		}
	}
	t := &Tensor{Spec: spec, Len: len(x), Groups: groups}
	if spec.Codec == None {
		t.Codes = make([]byte, 4*len(x))
		for i, v := range x {
			binary.LittleEndian.PutUint32(t.Codes[4*i:], math.Float32bits(v))
		}
		return t, nil
	}
	t.Params = make([]float32, 2*groups)
	codes := make([]uint8, len(x))
	lv := make([]float32, 1<<spec.Bits)
	per := len(x) / groups
	for g := range groups {
		xs := x[g*per : (g+1)*per]
		p := t.Params[2*g : 2*g+2]
		p[0], p[1] = params(spec, xs)
		if err := levels(spec, p, lv); err != nil {
			// Only data near ±MaxFloat32 gets here: a level beyond the float32 range.
			return nil, fmt.Errorf("quant: group %d: %w", g, err)
		}
		encodeGroup(spec, p, lv, xs, codes[g*per:(g+1)*per])
	}
	t.Codes = make([]byte, PackedLen(len(x), spec.Bits))
	Pack(t.Codes, codes, spec.Bits)
	return t, nil
}

// params computes one group's parameters from its values.
func params(spec Spec, xs []float32) (float32, float32) {
	switch spec.Codec {
	case Linear, Tanh:
		if len(xs) == 0 {
			return 0, 0
		}
		lo, hi := xs[0], xs[0]
		for _, v := range xs {
			lo = min(lo, v)
			hi = max(hi, v)
		}
		if spec.Codec == Linear {
			return lo, hi
		}
		// tanh is monotone, so the range of tanh(x) is [tanh(lo), tanh(hi)].
		c := func(v float32) float32 {
			t := float32(math.Tanh(float64(v)))
			return min(max(t, -tanhMax), tanhMax)
		}
		return c(lo), c(hi)
	case Log:
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, v := range xs {
			if v != 0 {
				l := math.Log2(math.Abs(float64(v)))
				lo = math.Min(lo, l)
				hi = math.Max(hi, l)
			}
		}
		if math.IsInf(lo, 1) {
			return 0, 0
		}
		// Round outward so that every |x| lies within [2^lo, 2^hi].
		lo32, hi32 := float32(lo), float32(hi)
		if float64(lo32) > lo {
			lo32 = math.Nextafter32(lo32, float32(math.Inf(-1)))
		}
		if float64(hi32) < hi {
			hi32 = math.Nextafter32(hi32, float32(math.Inf(1)))
		}
		return lo32, hi32
	case Gauss:
		if len(xs) == 0 {
			return 0, 0
		}
		var s float64
		for _, v := range xs {
			s += float64(v)
		}
		mu := s / float64(len(xs))
		var ss float64
		for _, v := range xs {
			d := float64(v) - mu
			ss += d * d
		}
		return float32(mu), float32(math.Sqrt(ss / float64(len(xs))))
	}
	panic("quant: params: codec " + string(spec.Codec))
}

// linearLevel returns lo + q·(hi−lo)/n in float64 with the ends exact. The explicit conversion
// keeps compilers from fusing operations, so every platform decodes the same bits.
func linearLevel(lo, hi float32, q, n int) float64 {
	switch q {
	case 0:
		return float64(lo)
	case n:
		return float64(hi)
	}
	return float64(lo) + float64(float64(q)*(float64(hi)-float64(lo))/float64(n))
}

// levels fills lv (2^bits entries) with the decoded value of every code of one group with
// parameters p, and reports parameters that are invalid or decode to non-finite values.
func levels(spec Spec, p []float32, lv []float32) error {
	for _, v := range p {
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: parameter %v is not finite", ErrCorrupt, v)
		}
	}
	n := 1<<spec.Bits - 1
	switch spec.Codec {
	case Linear:
		if p[0] > p[1] {
			return fmt.Errorf("%w: min %v > max %v", ErrCorrupt, p[0], p[1])
		}
		for q := range lv {
			lv[q] = float32(linearLevel(p[0], p[1], q, n))
		}
	case Log:
		if p[0] > p[1] {
			return fmt.Errorf("%w: log2_min %v > log2_max %v", ErrCorrupt, p[0], p[1])
		}
		half := 1 << (spec.Bits - 1)
		m := half - 1
		for c := range lv {
			mag := c & (half - 1)
			var v float64
			if mag > 0 {
				var l float64
				if m == 1 {
					l = (float64(p[0]) + float64(p[1])) / 2
				} else {
					l = linearLevel(p[0], p[1], mag-1, m-1)
				}
				v = math.Exp2(l)
			}
			if c >= half {
				v = -v
				if mag == 0 {
					v = math.Copysign(0, -1)
				}
			}
			lv[c] = float32(v)
		}
	case Tanh:
		if p[0] > p[1] || p[0] < -tanhMax || p[1] > tanhMax {
			return fmt.Errorf("%w: tanh range [%v, %v] is not inside [−%v, %v]", ErrCorrupt, p[0], p[1], tanhMax, tanhMax)
		}
		for q := range lv {
			lv[q] = float32(math.Atanh(linearLevel(p[0], p[1], q, n)))
		}
	case Gauss:
		if p[1] < 0 {
			return fmt.Errorf("%w: std %v is negative", ErrCorrupt, p[1])
		}
		for j, c := range gaussCodebooks[spec.Bits] {
			lv[j] = float32(float64(p[0]) + float64(float64(p[1])*c))
		}
	}
	for c, v := range lv {
		if math.IsInf(float64(v), 0) {
			return fmt.Errorf("%w: code %d decodes to %v with parameters %v", ErrCorrupt, c, v, p)
		}
	}
	return nil
}

// nearest returns the code among q and its neighbours within [lo, hi] whose decoded value is
// nearest to x; ties keep q.
func nearest(x float32, q, lo, hi int, lv []float32) int {
	best, bd := q, math.Abs(float64(x)-float64(lv[q]))
	if q > lo {
		if d := math.Abs(float64(x) - float64(lv[q-1])); d < bd {
			best, bd = q-1, d
		}
	}
	if q < hi {
		if d := math.Abs(float64(x) - float64(lv[q+1])); d < bd {
			best = q + 1
		}
	}
	return best
}

// linearCoder computes round((u−lo)/(hi−lo)·n) clamped to [0, n], and 0 when lo = hi. The
// result is only a starting point for nearest, so its rounding need not be exact.
type linearCoder struct {
	lo, scale float64
	n         int
}

func newLinearCoder(lo, hi float64, n int) linearCoder {
	c := linearCoder{lo: lo, n: n}
	if hi > lo {
		c.scale = float64(n) / (hi - lo)
	}
	return c
}

func (c linearCoder) code(u float64) int {
	q := (u-c.lo)*c.scale + 0.5
	if !(q > 0) {
		return 0
	}
	if q >= float64(c.n) {
		return c.n
	}
	return int(q)
}

// encodeGroup writes the code of each value of xs into codes.
func encodeGroup(spec Spec, p []float32, lv []float32, xs []float32, codes []uint8) {
	n := 1<<spec.Bits - 1
	lo, hi := float64(p[0]), float64(p[1])
	switch spec.Codec {
	case Linear:
		lc := newLinearCoder(lo, hi, n)
		for i, x := range xs {
			codes[i] = uint8(nearest(x, lc.code(float64(x)), 0, n, lv))
		}
	case Tanh:
		lc := newLinearCoder(lo, hi, n)
		for i, x := range xs {
			codes[i] = uint8(nearest(x, lc.code(math.Tanh(float64(x))), 0, n, lv))
		}
	case Log:
		half := 1 << (spec.Bits - 1)
		m := half - 1
		lc := newLinearCoder(lo, hi, m-1)
		for i, x := range xs {
			sign := 0
			if math.Signbit(float64(x)) {
				sign = half
			}
			if x == 0 {
				codes[i] = uint8(sign)
				continue
			}
			mag := 1
			if m > 1 {
				mag = 1 + lc.code(math.Log2(math.Abs(float64(x))))
			}
			codes[i] = uint8(nearest(x, sign+mag, sign+1, sign+m, lv))
		}
	case Gauss:
		cb := gaussCodebooks[spec.Bits]
		th := gaussThresholds[spec.Bits]
		for i, x := range xs {
			j := len(cb) / 2 // with std 0 every code decodes to the mean
			if hi > 0 {
				j = sort.SearchFloat64s(th, (float64(x)-lo)/hi) // the thresholds below z
			}
			codes[i] = uint8(nearest(x, j, 0, len(cb)-1, lv))
		}
	}
}

// gaussThresholds[b] holds the midpoints between neighbouring b-bit codes.
var gaussThresholds = func() (th [MaxBits + 1][]float64) {
	for b := 1; b <= MaxBits; b++ {
		cb := gaussCodebooks[b]
		for j := 0; j+1 < len(cb); j++ {
			th[b] = append(th[b], (cb[j]+cb[j+1])/2)
		}
	}
	return th
}()

// check reports a tensor whose fields do not fit together. It does not look at the parameters.
func (t *Tensor) check() error {
	if err := t.Spec.Validate(); err != nil {
		return fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if t.Len < 0 || t.Groups < 1 || t.Len%t.Groups != 0 {
		return fmt.Errorf("quant: %w: %d values cannot be split into %d groups", ErrCorrupt, t.Len, t.Groups)
	}
	wantCodes := PackedLen(t.Len, t.Spec.CodeBits())
	if t.Spec.Codec == None {
		wantCodes = -1
		if t.Len <= math.MaxInt/4 {
			wantCodes = 4 * t.Len
		}
	}
	if len(t.Codes) != wantCodes {
		return fmt.Errorf("quant: %w: %d bytes of codes, want %d for %d values of %d bits", ErrCorrupt, len(t.Codes), wantCodes, t.Len, t.Spec.CodeBits())
	}
	if want := t.Groups * t.Spec.ParamsPerGroup(); len(t.Params) != want {
		return fmt.Errorf("quant: %w: %d parameters, want %d for %d groups of %s", ErrCorrupt, len(t.Params), want, t.Groups, t.Spec)
	}
	return nil
}

// Validate reports, wrapping ErrCorrupt, whether t can be decoded: consistent lengths, zero
// padding bits, and parameters that are finite, ordered and decode to finite values.
func (t *Tensor) Validate() error {
	if err := t.check(); err != nil {
		return err
	}
	if t.Spec.Codec == None {
		return checkFinite(t.Codes)
	}
	bits := t.Spec.Bits
	if pad := len(t.Codes)*8 - t.Len*bits; pad > 0 && t.Codes[len(t.Codes)-1]>>(8-pad) != 0 {
		return fmt.Errorf("quant: %w: padding bits of the last byte are set", ErrCorrupt)
	}
	lv := make([]float32, 1<<bits)
	for g := range t.Groups {
		if err := levels(t.Spec, t.Params[2*g:2*g+2], lv); err != nil {
			return fmt.Errorf("quant: group %d: %w", g, err)
		}
	}
	return nil
}

func checkFinite(raw []byte) error {
	for i := 0; i+4 <= len(raw); i += 4 {
		v := math.Float32frombits(binary.LittleEndian.Uint32(raw[i:]))
		if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
			return fmt.Errorf("quant: %w: value %d is %v", ErrCorrupt, i/4, v)
		}
	}
	return nil
}

// Decode writes the t.Len decoded values into dst, which must have exactly that length. It
// returns an error wrapping ErrCorrupt, and never panics, for any t that Validate rejects.
func (t *Tensor) Decode(dst []float32) error {
	if err := t.check(); err != nil {
		return err
	}
	if len(dst) != t.Len {
		return fmt.Errorf("quant: decode: destination holds %d values, want %d", len(dst), t.Len)
	}
	if t.Spec.Codec == None {
		if err := checkFinite(t.Codes); err != nil {
			return err
		}
		for i := range dst {
			dst[i] = math.Float32frombits(binary.LittleEndian.Uint32(t.Codes[4*i:]))
		}
		return nil
	}
	codes := make([]uint8, t.Len)
	if err := Unpack(codes, t.Codes, t.Spec.Bits); err != nil {
		return err
	}
	lv := make([]float32, 1<<t.Spec.Bits)
	per := t.Len / t.Groups
	for g := range t.Groups {
		if err := levels(t.Spec, t.Params[2*g:2*g+2], lv); err != nil {
			return fmt.Errorf("quant: group %d: %w", g, err)
		}
		out := dst[g*per : (g+1)*per]
		for i, c := range codes[g*per : (g+1)*per] {
			out[i] = lv[c]
		}
	}
	return nil
}
