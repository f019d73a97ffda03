package kernel

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// lengths covers empty, shorter than one vector block, not a multiple of 8 or 16, and several
// blocks.
var lengths = []int{0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 33, 64, 1001, 4099}

// values returns n seeded normal values; with bad set, some are NaN, ±Inf, ±0, subnormal or
// near the float32 limits.
func values(r *rand.Rand, n int, bad bool) []float32 {
	v := make([]float32, n)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	if !bad {
		return v
	}
	special := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)), 0,
		float32(math.Copysign(0, -1)), math.SmallestNonzeroFloat32, -math.MaxFloat32, math.MaxFloat32}
	for i := range v {
		if r.IntN(5) == 0 {
			v[i] = special[r.IntN(len(special))]
		}
	}
	return v
}

// refMoments is the plain float64 loop the kernel must agree with.
func refMoments(v []float32) Moments {
	m := NewMoments()
	for _, x := range v {
		f := float64(x)
		if math.IsNaN(f) || math.IsInf(f, 0) {
			m.NonFinite++
			continue
		}
		m.N++
		m.Sum += f
		m.SumSq += f * f
		m.Min, m.Max = math.Min(m.Min, f), math.Max(m.Max, f)
	}
	return m
}

func refPair(a, b []float32) Pair {
	var p Pair
	for i := range a {
		x, y := float64(a[i]), float64(b[i])
		p.AA += x * x
		p.BB += y * y
		p.AB += x * y
		p.DD += (y - x) * (y - x)
	}
	return p
}

// near reports whether got is within rel of want, relative to scale (a sum of magnitudes, so
// that cancellation in want does not shrink the tolerance). NaN matches NaN, ±Inf itself.
func near(got, want, scale, rel float64) bool {
	if math.IsNaN(want) || math.IsInf(want, 0) {
		return got == want || math.IsNaN(got) && math.IsNaN(want)
	}
	return math.Abs(got-want) <= rel*scale
}

// same is bit equality, NaN payloads aside.
func same(a, b float64) bool {
	return math.Float64bits(a) == math.Float64bits(b) || math.IsNaN(a) && math.IsNaN(b)
}

func TestMomentsMatchFloat64Loop(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range lengths {
		for _, bad := range []bool{false, true} {
			v := values(r, n, bad)
			m := NewMoments()
			AddMoments(&m, v)
			want := refMoments(v)
			var abs float64
			for _, x := range v {
				if f := float64(x); !math.IsInf(f, 0) && !math.IsNaN(f) {
					abs += math.Abs(f)
				}
			}
			// A sum of n terms is off by at most about n ulps in either order.
			rel := float64(n+1) * 0x1p-52
			if m.N != want.N || m.NonFinite != want.NonFinite || m.Min != want.Min || m.Max != want.Max ||
				!near(m.Sum, want.Sum, abs, rel) || !near(m.SumSq, want.SumSq, want.SumSq, rel) {
				t.Errorf("n=%d bad=%v: moments %+v, want %+v", n, bad, m, want)
			}
		}
	}
}

func TestMomentsAllNonFinite(t *testing.T) {
	for _, n := range []int{1, 16, 33} {
		v := make([]float32, n)
		for i := range v {
			v[i] = float32([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}[i%3])
		}
		m := NewMoments()
		AddMoments(&m, v)
		if want := (Moments{Min: math.Inf(1), Max: math.Inf(-1), NonFinite: int64(n)}); m != want {
			t.Errorf("n=%d: %+v, want %+v", n, m, want)
		}
	}
}

// TestVectorLoopsMatchGoLoops checks that the assembly gives the same bits as the Go loops it
// mirrors (on machines without it, both are the Go loops).
func TestVectorLoopsMatchGoLoops(t *testing.T) {
	if !useAVX2 {
		t.Log("no vector loops on this machine: the Go loops are compared with themselves")
	}
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range lengths {
		for _, bad := range []bool{false, true} {
			v := values(r, n, bad)
			m1, m2 := NewMoments(), NewMoments()
			AddMoments(&m1, v)
			addMoments(&m2, v, momentsGeneric)
			if !same(m1.N, m2.N) || !same(m1.Sum, m2.Sum) || !same(m1.SumSq, m2.SumSq) || !same(m1.Min, m2.Min) ||
				!same(m1.Max, m2.Max) || m1.NonFinite != m2.NonFinite {
				t.Errorf("n=%d bad=%v: moments %+v, Go loops %+v", n, bad, m1, m2)
			}
			w := values(r, n, bad)
			var p1, p2 Pair
			AddPair(&p1, v, w)
			addPair(&p2, v, w, pairGeneric)
			if !same(p1.AA, p2.AA) || !same(p1.BB, p2.BB) || !same(p1.AB, p2.AB) || !same(p1.DD, p2.DD) {
				t.Errorf("n=%d bad=%v: pair %+v, Go loops %+v", n, bad, p1, p2)
			}
		}
	}
}

func TestPairMatchesFloat64Loop(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for _, n := range lengths {
		for _, bad := range []bool{false, true} {
			a, b := values(r, n, bad), values(r, n, bad)
			var p Pair
			AddPair(&p, a, b[:n:n])
			q := refPair(a, b)
			var aa, bb, ab float64
			for i := range a {
				x, y := math.Abs(float64(a[i])), math.Abs(float64(b[i]))
				aa, bb, ab = aa+x*x, bb+y*y, ab+x*y
			}
			rel := float64(n+1) * 0x1p-52
			if !near(p.AA, q.AA, aa, rel) || !near(p.BB, q.BB, bb, rel) || !near(p.AB, q.AB, ab, rel) ||
				!near(p.DD, q.DD, 2*(aa+bb), rel) {
				t.Errorf("n=%d bad=%v: pair %+v, want %+v", n, bad, p, q)
			}
		}
	}
}

// TestMerge checks that accumulating in pieces and merging agrees with one pass.
func TestMerge(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	v, w := values(r, 5000, true), values(r, 5000, false)
	for i := range v {
		if v[i]-v[i] != 0 {
			v[i] = 0
		}
	}
	whole, parts := NewMoments(), NewMoments()
	AddMoments(&whole, v)
	var pw, pp Pair
	AddPair(&pw, v, w)
	for at := 0; at < len(v); at += 999 {
		end := min(at+999, len(v))
		m := NewMoments()
		AddMoments(&m, v[at:end])
		parts.Merge(m)
		var p Pair
		AddPair(&p, v[at:end], w[at:end])
		pp.Merge(p)
	}
	const rel = 1e-12
	if whole.N != parts.N || whole.NonFinite != parts.NonFinite || whole.Min != parts.Min || whole.Max != parts.Max ||
		!near(parts.Sum, whole.Sum, whole.SumSq, rel) || !near(parts.SumSq, whole.SumSq, whole.SumSq, rel) {
		t.Errorf("merged %+v, whole %+v", parts, whole)
	}
	if !near(pp.AA, pw.AA, pw.AA, rel) || !near(pp.BB, pw.BB, pw.BB, rel) ||
		!near(pp.AB, pw.AB, pw.AA+pw.BB, rel) || !near(pp.DD, pw.DD, pw.DD, rel) {
		t.Errorf("merged %+v, whole %+v", pp, pw)
	}
}

func TestAddPairShortB(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for b shorter than a")
		}
	}()
	AddPair(&Pair{}, make([]float32, 3), make([]float32, 2))
}

// addMomentsOld and addPairOld are the scalar kernels before the vector loops (commit 2ed6e25),
// kept as the benchmark baseline.
func addMomentsOld(m *Moments, v []float32) {
	var s0, s1, s2, s3, q0, q1, q2, q3 float64
	lo, hi := m.Min, m.Max
	bad := int64(0)
	i := 0
	for ; i+4 <= len(v); i += 4 {
		a, b, c, d := v[i], v[i+1], v[i+2], v[i+3]
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

func addPairOld(p *Pair, a, b []float32) {
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

// benchSizes are one 4 MiB read chunk (in L2/L3 after the read) and a 256 KiB one.
var benchSizes = []struct {
	name string
	n    int
}{{"4MiB", 1 << 20}, {"256KiB", 1 << 16}}

// BenchmarkMoments uses normal data, whose extremes rarely change, as real weights do. Compare
// new against old within one run: go test -bench Moments ./internal/kernel.
func BenchmarkMoments(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range benchSizes {
		v := values(r, size.n, false)
		for _, k := range []struct {
			name string
			f    func(*Moments, []float32)
		}{
			{"old", addMomentsOld},
			{"go", func(m *Moments, v []float32) { addMoments(m, v, momentsGeneric) }},
			{"new", AddMoments},
		} {
			b.Run(size.name+"/"+k.name, func(b *testing.B) {
				b.SetBytes(int64(4 * len(v)))
				for b.Loop() {
					m := NewMoments()
					k.f(&m, v)
				}
			})
		}
	}
}

func BenchmarkPair(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, size := range benchSizes {
		x, y := values(r, size.n, false), values(r, size.n, false)
		for _, k := range []struct {
			name string
			f    func(*Pair, []float32, []float32)
		}{
			{"old", addPairOld},
			{"go", func(p *Pair, a, b []float32) { addPair(p, a, b, pairGeneric) }},
			{"new", AddPair},
		} {
			b.Run(size.name+"/"+k.name, func(b *testing.B) {
				b.SetBytes(int64(8 * len(x)))
				for b.Loop() {
					var p Pair
					k.f(&p, x, y)
				}
			})
		}
	}
}

// TestAlignedFloat32s views aligned bytes in place and refuses a misaligned start.
func TestAlignedFloat32s(t *testing.T) {
	buf := make([]byte, 12)
	binary.LittleEndian.PutUint32(buf[4:], math.Float32bits(1.5))
	v := AlignedFloat32s(buf)
	if len(v) != 3 || v[1] != 1.5 {
		t.Fatalf("aligned view %v, want [0 1.5 0]", v)
	}
	v[2] = 2 // a view, not a copy
	if math.Float32frombits(binary.LittleEndian.Uint32(buf[8:])) != 2 {
		t.Errorf("AlignedFloat32s copied the bytes")
	}
	if AlignedFloat32s(buf[1:9]) != nil || AlignedFloat32s(nil) != nil {
		t.Errorf("a misaligned or empty slice was viewed")
	}
}
