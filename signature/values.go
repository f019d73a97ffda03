package signature

// The loops of extraction over one block of values. Every sum is accumulated in float64 in
// element order, one block after the other, so the result does not depend on the block size or
// on the number of goroutines: it is the sum a single loop over the whole tensor gives.

// float is the element type of the values the loops read: float32 views of F32 checkpoints, or
// float64 for every other case.
type float interface{ ~float32 | ~float64 }

// projectionSums adds ⟨d, a⟩ and ⟨a, a⟩ of one block to da and aa, with d = r − z and a = c − z.
// r and c must be at least as long as z.
func projectionSums[T float](r, c, z []T, da, aa *float64) {
	r, c = r[:len(z)], c[:len(z)]
	x, y := *da, *aa
	for i := range z {
		d := float64(r[i]) - float64(z[i])
		a := float64(c[i]) - float64(z[i])
		x += d * a
		y += a * a
	}
	*da, *aa = x, y
}

// projectionValues writes d − coef·a of one block to v (d = r − z, a = c − z). r, c and v must
// be at least as long as z.
func projectionValues[T float](r, c, z []T, coef float64, v []float64) {
	r, c, v = r[:len(z)], c[:len(z)], v[:len(z)]
	for i := range z {
		d := float64(r[i]) - float64(z[i])
		a := float64(c[i]) - float64(z[i])
		v[i] = d - float64(coef*a)
	}
}

// differenceValues writes r − c of one block to v. r and v must be at least as long as c.
func differenceValues[T float](r, c []T, v []float64) {
	r, v = r[:len(c)], v[:len(c)]
	for i := range c {
		v[i] = float64(r[i]) - float64(c[i])
	}
}

// meanInto writes the mean of the robust models' blocks rs to m: summed in order, then divided.
func meanInto(m []float64, rs [][]float64) {
	copy(m, rs[0])
	for _, r := range rs[1:] {
		r = r[:len(m)]
		for i := range m {
			m[i] += r[i]
		}
	}
	k := float64(len(rs))
	for i := range m {
		m[i] /= k
	}
}

// differenceSums adds ‖mean(rs) − c‖² and ‖c‖² of one block to dd and cc (for --layers auto).
// Every block of rs must be at least as long as c.
func differenceSums(rs [][]float32, c []float32, dd, cc *float64) {
	x, y := *dd, *cc
	if len(rs) == 1 {
		// The general loop's 0 + r, divided by 1, is r but for the sign of a zero, which d·d
		// does not see.
		r := rs[0][:len(c)]
		for i, cv := range c {
			d := float64(r[i]) - float64(cv)
			x += d * d
			y += float64(cv) * float64(cv)
		}
		*dd, *cc = x, y
		return
	}
	k := float64(len(rs))
	for i, cv := range c {
		s := 0.0
		for _, r := range rs {
			s += float64(r[i])
		}
		d := s/k - float64(cv)
		x += d * d
		y += float64(cv) * float64(cv)
	}
	*dd, *cc = x, y
}
