package quant

import "math"

// Bound returns the largest |x − x̂| the package guarantees when x is encoded with group g's
// parameters and decoded to x̂ (see the package documentation for each codec's formula). For
// values outside the range the parameters were computed from, it grows with the distance to
// that range. It panics if g is not a group of t.
func (t *Tensor) Bound(g int, x float32) float64 {
	if t.Spec.Codec == None {
		return 0
	}
	p := t.Params[2*g : 2*g+2]
	return bound(t.Spec, p[0], p[1], float64(x))
}

// slack covers float64 rounding in the codecs' arithmetic: a relative 2^−40.
const slack = 1 + 1.0/(1<<40)

// f32ulp is the relative float32 rounding step, 2^−23: rounding a float64 to float32 moves it by
// at most half of that relative to its magnitude, plus half the smallest subnormal, 2^−150.
const (
	f32ulp  = 1.0 / (1 << 23)
	f32tiny = 0x1p-149
)

// dist returns how far v lies outside [lo, hi].
func dist(v, lo, hi float64) float64 {
	return math.Max(0, math.Max(lo-v, v-hi))
}

func bound(spec Spec, p0, p1 float32, x float64) float64 {
	lo, hi := float64(p0), float64(p1)
	n := float64(int(1)<<spec.Bits - 1)
	switch spec.Codec {
	case Linear:
		// Half a step, plus the distance to [min, max], plus float32 rounding of the level.
		return ((hi-lo)/(2*n)+dist(x, lo, hi))*slack + f32ulp*math.Max(math.Abs(lo), math.Abs(hi)) + f32tiny
	case Log:
		if x == 0 {
			return 0
		}
		m := float64(int(1)<<(spec.Bits-1) - 1)
		ax := math.Abs(x)
		d := dist(math.Log2(ax), lo, hi)
		if m == 1 {
			// One level, 2^((lo+hi)/2): at most h = (hi−lo)/2 away in log2.
			r := math.Exp2(((hi-lo)/2 + d) * slack)
			return ax*(r-1) + f32ulp*ax*r + f32tiny
		}
		// Inside [2^lo, 2^hi], x lies between neighbouring levels a < b = a·4^h and gets the
		// nearer, at most (b−a)/2 away, which relative to x is largest at x = (a+b)/2:
		// (4^h−1)/(4^h+1). Outside, the end level is |x|·(2^d − 1) away at most.
		h := (hi - lo) / (2 * (m - 1))
		r := math.Exp2(2 * h * slack)
		rel := math.Max((r-1)/(r+1), math.Exp2(d*slack)-1)
		return ax*rel*slack + f32ulp*ax + f32tiny
	case Tanh:
		// The t-domain code lies within half a step of tanh(x) (plus the clamp distance), so the
		// decoded value lies between atanh of the ends of that interval cut to [tmin, tmax].
		t := math.Tanh(x)
		r := ((hi-lo)/(2*n) + dist(t, lo, hi)) * slack
		a := math.Atanh(math.Max(t-r, lo))
		b := math.Atanh(math.Min(t+r, hi))
		e := math.Max(math.Abs(x-a), math.Abs(x-b))
		return e*slack + f32ulp*math.Max(math.Abs(a), math.Abs(b)) + f32tiny
	case Gauss:
		cb := gaussCodebooks[spec.Bits]
		cmax := cb[len(cb)-1]
		gap := 0.0
		for j := 0; j+1 < len(cb); j++ {
			gap = math.Max(gap, cb[j+1]-cb[j])
		}
		e := math.Max(hi*gap/2, math.Abs(x-lo)-hi*cmax)
		return e*slack + f32ulp*(math.Abs(lo)+hi*cmax) + f32tiny
	}
	return math.Inf(1)
}
