// Package kernel holds the float loops that decide the speed of reading and comparing
// checkpoints: sums in float64 with several independent accumulators, so the loops are bound by
// memory, not by the latency of one addition chain.
package kernel

import (
	"unsafe"
)

// Float32s views little-endian raw bytes as float32 values without copying. The caller must not
// keep the slice beyond raw's lifetime. rws runs on little-endian machines only (amd64, arm64).
func Float32s(raw []byte) []float32 {
	if len(raw) == 0 {
		return nil
	}
	return unsafe.Slice((*float32)(unsafe.Pointer(&raw[0])), len(raw)/4)
}

// Moments are the float64 accumulations of a slice of values: count of finite values, sum, sum
// of squares, min and max over finite values, and the count of NaN and ±Inf values.
type Moments struct {
	N, Sum, SumSq, Min, Max float64
	NonFinite               int64
}

// AddMoments accumulates v into m. m.Min and m.Max must start at +Inf and -Inf.
func AddMoments(m *Moments, v []float32) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	lo, hi := m.Min, m.Max
	bad := int64(0)
	i := 0
	for ; i+4 <= len(v); i += 4 {
		a, b, c, d := v[i], v[i+1], v[i+2], v[i+3]
		// x-x is NaN exactly for NaN and ±Inf.
		if (a-a)+(b-b)+(c-c)+(d-d) != 0 {
			for _, x := range v[i : i+4] {
				if x-x != 0 {
					bad++
					continue
				}
				f := float64(x)
				s0 += f
				q0 += f * f
				lo, hi = min2(lo, f), max2(hi, f)
			}
			continue
		}
		fa, fb, fc, fd := float64(a), float64(b), float64(c), float64(d)
		s0 += fa
		s1 += fb
		s2 += fc
		s3 += fd
		q0 += fa * fa
		q1 += fb * fb
		q2 += fc * fc
		q3 += fd * fd
		// Each value against the running extremes: these branches are almost never taken, so
		// they predict well (comparing values with each other would mispredict half the time).
		lo = min2(min2(min2(min2(lo, fa), fb), fc), fd)
		hi = max2(max2(max2(max2(hi, fa), fb), fc), fd)
	}
	for _, x := range v[i:] {
		if x-x != 0 {
			bad++
			continue
		}
		f := float64(x)
		s0 += f
		q0 += f * f
		lo, hi = min2(lo, f), max2(hi, f)
	}
	m.N += float64(len(v)) - float64(bad)
	m.Sum += (s0 + s1) + (s2 + s3)
	m.SumSq += (q0 + q1) + (q2 + q3)
	m.Min, m.Max = lo, hi
	m.NonFinite += bad
}

// min2 and max2 ignore NaN handling (inputs are finite), which the builtins pay for.
func min2(a, b float64) float64 {
	if b < a {
		return b
	}
	return a
}

func max2(a, b float64) float64 {
	if b > a {
		return b
	}
	return a
}

// Pair are the float64 accumulations of two equal-length slices a and b: Σa², Σb², Σab, Σ(b−a)².
type Pair struct{ AA, BB, AB, DD float64 }

// AddPair accumulates a and b (len(b) >= len(a)) into p.
func AddPair(p *Pair, a, b []float32) {
	b = b[:len(a)]
	var aa0, aa1, bb0, bb1, ab0, ab1, dd0, dd1 float64
	i := 0
	for ; i+2 <= len(a); i += 2 {
		x0, y0 := float64(a[i]), float64(b[i])
		x1, y1 := float64(a[i+1]), float64(b[i+1])
		aa0 += x0 * x0
		aa1 += x1 * x1
		bb0 += y0 * y0
		bb1 += y1 * y1
		ab0 += x0 * y0
		ab1 += x1 * y1
		d0, d1 := y0-x0, y1-x1
		dd0 += d0 * d0
		dd1 += d1 * d1
	}
	for ; i < len(a); i++ {
		x, y := float64(a[i]), float64(b[i])
		aa0 += x * x
		bb0 += y * y
		ab0 += x * y
		dd0 += (y - x) * (y - x)
	}
	p.AA += aa0 + aa1
	p.BB += bb0 + bb1
	p.AB += ab0 + ab1
	p.DD += dd0 + dd1
}
