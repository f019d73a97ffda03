// Package kernel holds the float loops that decide the speed of reading and comparing
// checkpoints — sums in float64 spread over independent lanes, so the loops are bound by memory,
// not by the latency of one addition chain — and Blocks, which cuts tensors into fixed blocks
// that all cores work on.
//
// Every sum has a fixed lane layout: element i of a call goes to lane i mod 16 (Moments) or
// i mod 8 (Pair), products are rounded before they are added (no fused multiply-add), and the
// lanes are added in a fixed tree at the end of the call. The AVX2 loops on amd64 and the Go
// loops elsewhere follow that layout operation for operation, so both give the same bits, and a
// result depends only on how the values are cut into calls, never on the machine or on how many
// goroutines share the work.
package kernel

import (
	"math"
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

// AlignedFloat32s is Float32s(raw) when raw starts on a 4-byte boundary, where a float32 may
// lie, and nil otherwise (the caller then decodes a copy).
func AlignedFloat32s(raw []byte) []float32 {
	if len(raw) == 0 || uintptr(unsafe.Pointer(&raw[0]))%4 != 0 {
		return nil
	}
	return Float32s(raw)
}

// Moments are the float64 accumulations of a slice of values: count of finite values, sum, sum
// of squares, min and max over finite values, and the count of NaN and ±Inf values.
type Moments struct {
	N, Sum, SumSq, Min, Max float64
	NonFinite               int64
}

// NewMoments returns empty Moments: no values, Min +Inf and Max −Inf.
func NewMoments() Moments { return Moments{Min: math.Inf(1), Max: math.Inf(-1)} }

// Merge adds the accumulations of o into m, as if o's values had followed m's.
func (m *Moments) Merge(o Moments) {
	m.N += o.N
	m.Sum += o.Sum
	m.SumSq += o.SumSq
	m.Min, m.Max = min2(m.Min, o.Min), max2(m.Max, o.Max)
	m.NonFinite += o.NonFinite
}

// AddMoments accumulates v into m. m.Min and m.Max must start at +Inf and -Inf (NewMoments).
func AddMoments(m *Moments, v []float32) { addMoments(m, v, moments) }

// addMoments is AddMoments with the vector loop as a parameter, for tests.
func addMoments(m *Moments, v []float32, moments func(*momentLanes, []float32) int) {
	total := len(v)
	var l momentLanes
	for j := range l.lo {
		l.lo[j], l.hi[j] = float32(math.Inf(1)), float32(math.Inf(-1))
	}
	bad := 0
	for len(v) >= 16 {
		k := min(len(v), maxCall) &^ 15
		bad += moments(&l, v[:k])
		v = v[k:]
	}
	for t, x := range v { // the tail, in the same lanes
		f, b, h, nonFinite := split(x)
		if nonFinite {
			bad++
		}
		l.sum[t] += float64(f)
		l.sq[t] += float64(float64(f) * float64(f))
		l.lo[t%8], l.hi[t%8] = minps(l.lo[t%8], b), maxps(l.hi[t%8], h)
	}
	m.N += float64(total - bad)
	m.Sum += sum16(&l.sum)
	m.SumSq += sum16(&l.sq)
	for j := range l.lo {
		m.Min, m.Max = min2(m.Min, float64(l.lo[j])), max2(m.Max, float64(l.hi[j]))
	}
	m.NonFinite += int64(bad)
}

// maxCall bounds the elements of one call of the vector loop, so its 32-bit counters of
// non-finite values cannot overflow. It is a multiple of 16.
const maxCall = 1 << 28

// momentLanes is the state of the Moments loops; the assembly knows its layout (offsets 0, 128,
// 256, 288).
type momentLanes struct {
	sum, sq [16]float64 // of finite values, a non-finite value counting as +0
	lo, hi  [8]float32  // over finite values
}

// split returns x's contributions to the lanes: the value to sum (+0 when x is NaN or ±Inf),
// the candidates for min (+Inf when not finite) and max (−Inf), and whether x is not finite.
func split(x float32) (f, b, h float32, nonFinite bool) {
	if math.Float32bits(x)&0x7f800000 == 0x7f800000 {
		return 0, float32(math.Inf(1)), float32(math.Inf(-1)), true
	}
	return x, x, x, false
}

// minps and maxps are the x86 MINPS and MAXPS of one lane: the second operand unless the first
// is strictly smaller (larger). The loops never give them NaN.
func minps(a, b float32) float32 {
	if a < b {
		return a
	}
	return b
}

func maxps(a, b float32) float32 {
	if a > b {
		return a
	}
	return b
}

// momentsGeneric is the Go form of the vector loop: v in blocks of 16, element j of a block to
// sum lane j and to min/max lane j mod 8. It returns the number of non-finite values.
func momentsGeneric(l *momentLanes, v []float32) int {
	bad := 0
	for ; len(v) >= 16; v = v[16:] {
		for j := range 8 {
			f0, b0, h0, n0 := split(v[j])
			f1, b1, h1, n1 := split(v[8+j])
			if n0 {
				bad++
			}
			if n1 {
				bad++
			}
			d0, d1 := float64(f0), float64(f1)
			l.sum[j] += d0
			l.sq[j] += float64(d0 * d0)
			l.sum[8+j] += d1
			l.sq[8+j] += float64(d1 * d1)
			// Against the running extremes, which rarely change: the branches predict well.
			l.lo[j] = minps(minps(l.lo[j], b0), b1)
			l.hi[j] = maxps(maxps(l.hi[j], h0), h1)
		}
	}
	return bad
}

// sum16 adds 16 lanes in a fixed tree.
func sum16(s *[16]float64) float64 {
	var t [8]float64
	for j := range t {
		t[j] = s[j] + s[8+j]
	}
	return sum8(&t)
}

func sum8(s *[8]float64) float64 {
	return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]))
}

// min2 and max2 ignore NaN handling (inputs are never NaN), which the builtins pay for.
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

// Merge adds the accumulations of o into p.
func (p *Pair) Merge(o Pair) {
	p.AA += o.AA
	p.BB += o.BB
	p.AB += o.AB
	p.DD += o.DD
}

// AddPair accumulates a and b into p. It panics if b is shorter than a.
func AddPair(p *Pair, a, b []float32) { addPair(p, a, b, pair) }

// addPair is AddPair with the vector loop as a parameter, for tests.
func addPair(p *Pair, a, b []float32, pair func(*pairLanes, []float32, []float32)) {
	b = b[:len(a)]
	var l pairLanes
	n := len(a) &^ 7
	if n > 0 {
		pair(&l, a[:n], b[:n])
	}
	for t := range a[n:] {
		x, y := float64(a[n+t]), float64(b[n+t])
		d := y - x
		l.aa[t] += float64(x * x)
		l.bb[t] += float64(y * y)
		l.ab[t] += float64(x * y)
		l.dd[t] += float64(d * d)
	}
	p.AA += sum8(&l.aa)
	p.BB += sum8(&l.bb)
	p.AB += sum8(&l.ab)
	p.DD += sum8(&l.dd)
}

// pairLanes is the state of the Pair loops; the assembly knows its layout (offsets 0, 64, 128,
// 192).
type pairLanes struct{ aa, bb, ab, dd [8]float64 }

// pairGeneric is the Go form of the vector loop: element j of each block of 8 to lane j.
// len(a) == len(b) is a multiple of 8.
func pairGeneric(l *pairLanes, a, b []float32) {
	for ; len(a) >= 8; a, b = a[8:], b[8:] {
		for j := range 8 {
			x, y := float64(a[j]), float64(b[j])
			d := y - x
			l.aa[j] += float64(x * x)
			l.bb[j] += float64(y * y)
			l.ab[j] += float64(x * y)
			l.dd[j] += float64(d * d)
		}
	}
}
