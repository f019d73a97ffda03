package corrupt

import "math"

// mt19937 is NumPy's legacy RandomState stream (MT19937 seeded with init_genrand, doubles from
// two 32-bit outputs, the polar Gaussian with its cached second value), written from the
// published algorithms so that tests can replay the draws the Python references made. It is for
// tests only.
type mt19937 struct {
	mt       [624]uint32
	i        int
	hasGauss bool
	gauss    float64
}

// newMT19937 is np.random.seed(seed) for a seed below 2³².
func newMT19937(seed uint32) *mt19937 {
	r := &mt19937{i: 624}
	r.mt[0] = seed
	for i := 1; i < 624; i++ {
		r.mt[i] = 1812433253*(r.mt[i-1]^(r.mt[i-1]>>30)) + uint32(i)
	}
	return r
}

// uint32 is genrand_int32.
func (r *mt19937) uint32() uint32 {
	if r.i >= 624 {
		for k := 0; k < 624; k++ {
			y := r.mt[k]&0x80000000 | r.mt[(k+1)%624]&0x7fffffff
			v := r.mt[(k+397)%624] ^ y>>1
			if y&1 != 0 {
				v ^= 0x9908b0df
			}
			r.mt[k] = v
		}
		r.i = 0
	}
	y := r.mt[r.i]
	r.i++
	y ^= y >> 11
	y ^= y << 7 & 0x9d2c5680
	y ^= y << 15 & 0xefc60000
	return y ^ y>>18
}

// float64 is random_sample: a 53-bit double in [0, 1).
func (r *mt19937) float64() float64 {
	a, b := r.uint32()>>5, r.uint32()>>6
	return (float64(a)*67108864 + float64(b)) / 9007199254740992
}

// uniform is np.random.uniform(lo, hi).
func (r *mt19937) uniform(lo, hi float64) float64 { return lo + (hi-lo)*r.float64() }

// normal is np.random.normal(loc, scale): the legacy polar method.
func (r *mt19937) normal(loc, scale float64) float64 {
	if r.hasGauss {
		r.hasGauss = false
		return loc + scale*r.gauss
	}
	var x1, x2, r2 float64
	for {
		x1 = 2*r.float64() - 1
		x2 = 2*r.float64() - 1
		r2 = x1*x1 + x2*x2
		if r2 < 1 && r2 != 0 {
			break
		}
	}
	f := math.Sqrt(-2 * math.Log(r2) / r2)
	r.gauss, r.hasGauss = f*x1, true
	return loc + scale*f*x2
}

// seedRule is stats.json's np.random.seed((seed*100000 + index*100 + severity) % 2**32).
func seedRule(seed, index, severity int) *mt19937 {
	return newMT19937(uint32((seed*100000 + index*100 + severity) % (1 << 32)))
}
