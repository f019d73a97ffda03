package corrupt

import "math/rand/v2"

// addNoise returns u + mult·n for every value of u, with n taken from noise in order and mult 1
// (gaussian_noise: N(0, σ) draws) or the value itself (speckle_noise: x + x·N(0, σ)). The result
// is not clipped.
func addNoise(u Image, noise func() float64, speckle bool) Image {
	out := NewImage(u.H, u.W, u.C)
	for i, x := range u.Pix {
		if speckle {
			out.Pix[i] = x + x*noise()
		} else {
			out.Pix[i] = x + noise()
		}
	}
	return out
}

// normalDraws returns a source of N(mean, sd) draws from rng.
func normalDraws(rng *rand.Rand, mean, sd float64) func() float64 {
	return func() float64 { return mean + sd*rng.NormFloat64() }
}

// fillNormal fills f with N(mean, sd) draws from rng.
func fillNormal(f []float64, rng *rand.Rand, mean, sd float64) {
	for i := range f {
		f[i] = mean + sd*rng.NormFloat64()
	}
}

// shotNoise returns Poisson(x·lam)/lam for every value x of img (one draw per value),
// unclipped. Values that are bytes divided by 255 draw from a cached alias table, grouped by byte
// value (ascending, then by position) so that each table is read once; other values then draw
// with poisson in position order.
func shotNoise(img Image, lam float64, rng *rand.Rand) Image {
	t := poissonTableFor(lam)
	out := NewImage(img.H, img.W, img.C)
	// Counting sort of the positions by byte value; other values go last.
	var count [257]int
	keys := make([]int16, len(img.Pix))
	for i, x := range img.Pix {
		k := byteOf(x)
		if k < 0 {
			k = 256
		}
		keys[i] = int16(k)
		count[k]++
	}
	var start [258]int
	for k := range count {
		start[k+1] = start[k] + count[k]
	}
	order := make([]int32, len(img.Pix))
	next := start
	for i, k := range keys {
		order[next[k]] = int32(i)
		next[k]++
	}
	for k := 0; k < 256; k++ {
		row := &t.row[k]
		for _, i := range order[start[k]:start[k+1]] {
			out.Pix[i] = t.div[row.draw(rng)]
		}
	}
	for _, i := range order[start[256]:] {
		out.Pix[i] = float64(poisson(rng, img.Pix[i]*lam)) / lam
	}
	return out
}

// Impulse codes for impulseNoise.
const (
	impulseKeep   = 0
	impulsePepper = 1
	impulseSalt   = 2
)

// impulseDraws returns a source of skimage.util.random_noise(mode='s&p', amount,
// salt_vs_pepper=0.5) decisions: each value independently is flipped with probability amount,
// to salt or pepper with equal odds.
func impulseDraws(rng *rand.Rand, amount float64) func() int {
	return func() int {
		if rng.Float64() >= amount {
			return impulseKeep
		}
		if rng.Uint64()&1 == 0 {
			return impulseSalt
		}
		return impulsePepper
	}
}

// impulseNoise applies one decision from codes (see impulseDraws) to each value of u in order:
// salt sets it to 1, pepper to 0 (skimage's low_clip for non-negative images).
func impulseNoise(u Image, codes func() int) Image {
	out := u.Clone()
	for i := range out.Pix {
		switch codes() {
		case impulseSalt:
			out.Pix[i] = 1
		case impulsePepper:
			out.Pix[i] = 0
		}
	}
	return out
}
