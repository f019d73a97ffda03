package kernel

import (
	"math"
	"math/rand/v2"
	"testing"
)

func TestMomentsAndPairMatchFloat64Loops(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 3, 4, 5, 1001} {
		a := make([]float32, n)
		b := make([]float32, n)
		for i := range a {
			a[i], b[i] = float32(r.NormFloat64()), float32(r.NormFloat64())
		}
		if n > 3 {
			a[2] = float32(math.NaN())
			a[n-1] = float32(math.Inf(-1))
		}
		m := Moments{Min: math.Inf(1), Max: math.Inf(-1)}
		AddMoments(&m, a)
		var want Moments
		want.Min, want.Max = math.Inf(1), math.Inf(-1)
		for _, x := range a {
			f := float64(x)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				want.NonFinite++
				continue
			}
			want.N++
			want.Sum += f
			want.SumSq += f * f
			want.Min, want.Max = math.Min(want.Min, f), math.Max(want.Max, f)
		}
		if m.N != want.N || m.NonFinite != want.NonFinite || m.Min != want.Min || m.Max != want.Max ||
			math.Abs(m.Sum-want.Sum) > 1e-9*(1+math.Abs(want.Sum)) || math.Abs(m.SumSq-want.SumSq) > 1e-9*(1+want.SumSq) {
			t.Errorf("n=%d: moments %+v, want %+v", n, m, want)
		}
		for i := range a {
			if a[i]-a[i] != 0 {
				a[i] = 0
			}
		}
		var p, q Pair
		AddPair(&p, a, b)
		for i := range a {
			x, y := float64(a[i]), float64(b[i])
			q.AA += x * x
			q.BB += y * y
			q.AB += x * y
			q.DD += (y - x) * (y - x)
		}
		for _, c := range [][2]float64{{p.AA, q.AA}, {p.BB, q.BB}, {p.AB, q.AB}, {p.DD, q.DD}} {
			if math.Abs(c[0]-c[1]) > 1e-9*(1+math.Abs(c[1])) {
				t.Errorf("n=%d: pair %+v, want %+v", n, p, q)
				break
			}
		}
	}
}

// BenchmarkMoments uses normal data, whose extremes rarely change, as real weights do.
func BenchmarkMoments(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	v := make([]float32, 1<<20)
	for i := range v {
		v[i] = float32(r.NormFloat64())
	}
	b.SetBytes(4 << 20)
	for b.Loop() {
		m := Moments{Min: math.Inf(1), Max: math.Inf(-1)}
		AddMoments(&m, v)
	}
}

func BenchmarkPair(b *testing.B) {
	v := make([]float32, 1<<20)
	b.SetBytes(8 << 20)
	for b.Loop() {
		var p Pair
		AddPair(&p, v, v)
	}
}
