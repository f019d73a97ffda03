package corrupt

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"math/rand/v2"
	"sync"
)

// NewRand returns the random stream for image number index of a dataset corrupted with
// corruption at severity in suite, from the user's seed. The stream is PCG (math/rand/v2) seeded
// with (s1, s2), where s1 = splitmix64(h), s2 = splitmix64(s1) and h is the 64-bit FNV-1a hash of
// the bytes suite, 0x00, corruption, 0x00, then seed, severity and index as little-endian 64-bit
// integers. Every image has its own stream, so results do not depend on how images are split
// among workers.
func NewRand(seed uint64, suite, corruption string, severity, index int) *rand.Rand {
	h := fnv.New64a()
	h.Write([]byte(suite))
	h.Write([]byte{0})
	h.Write([]byte(corruption))
	h.Write([]byte{0})
	var b [24]byte
	binary.LittleEndian.PutUint64(b[0:], seed)
	binary.LittleEndian.PutUint64(b[8:], uint64(int64(severity)))
	binary.LittleEndian.PutUint64(b[16:], uint64(int64(index)))
	h.Write(b[:])
	s1 := splitmix64(h.Sum64())
	return rand.New(rand.NewPCG(s1, splitmix64(s1)))
}

// splitmix64 is the finaliser of SplitMix64 (Steele, Lea & Flood 2014).
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// uniform returns a number uniform in [lo, hi), as numpy.random.uniform(lo, hi).
func uniform(rng *rand.Rand, lo, hi float64) float64 {
	return lo + (hi-lo)*rng.Float64()
}

// randint returns an integer uniform in [lo, hi), as numpy.random.randint(lo, hi): the upper
// bound is exclusive. It returns lo when hi <= lo.
func randint(rng *rand.Rand, lo, hi int) int {
	if hi <= lo {
		return lo
	}
	return lo + rng.IntN(hi-lo)
}

// logFactTable[k] = log(k!) for the Poisson sampler.
var (
	logFactOnce  sync.Once
	logFactTable []float64
)

const logFactN = 1024

func logFactorial(k int) float64 {
	logFactOnce.Do(func() {
		logFactTable = make([]float64, logFactN)
		for i := 1; i < logFactN; i++ {
			logFactTable[i] = logFactTable[i-1] + math.Log(float64(i))
		}
	})
	if k < logFactN {
		return logFactTable[k]
	}
	lg, _ := math.Lgamma(float64(k) + 1)
	return lg
}

// poisson returns a draw of Poisson(lam). For lam < 10 it multiplies uniforms (Knuth); above, it
// uses the transformed rejection with squeeze of Hörmann (1993, "PTRS"), the method NumPy uses
// for the same range. lam <= 0 gives 0.
func poisson(rng *rand.Rand, lam float64) int {
	if !(lam > 0) {
		return 0
	}
	if lam < 10 {
		limit := math.Exp(-lam)
		k := 0
		p := rng.Float64()
		for p > limit {
			k++
			p *= rng.Float64()
		}
		return k
	}
	slam := math.Sqrt(lam)
	loglam := math.Log(lam)
	b := 0.931 + 2.53*slam
	a := -0.059 + 0.02483*b
	invalpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := rng.Float64() - 0.5
		v := rng.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lam + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		if math.Log(v)+math.Log(invalpha)-math.Log(a/(us*us)+b) <= -lam+k*loglam-logFactorial(int(k)) {
			return int(k)
		}
	}
}

// poissonTable holds, for one rate lam and every byte k, the distribution of Poisson(μ),
// μ = k/255·lam, over the counts that can matter: from lo[k] = μ − 8√μ − 8 (at least 0) to
// min(ceil(lam), μ + 8√μ + 8). Larger counts clip to 1 like ceil(lam) does, or lie in a tail
// whose probability (below 1e-14, like that of the counts under lo[k]) is folded into the last
// count. Rows are alias tables (Walker 1977, Vose 1991), so a draw takes one uniform number and
// no search.
type poissonTable struct {
	lam float64
	row [256]poissonRow
	div []float64 // div[n] = n/lam
}

// poissonRow is the alias table of one byte value: count lo+j has probability
// (col[j].prob + Σ_{col[i].alias=j} (1 − col[i].prob))/len(col). A column's threshold and alias
// share a cache line (the tables are large and drawn from at random), and the thresholds are
// float32: their rounding moves probabilities by about 1e-8 of a column's mass.
type poissonRow struct {
	lo  int
	col []aliasColumn
}

type aliasColumn struct {
	prob  float32
	alias uint16
}

var poissonTables sync.Map // float64 → *poissonTable

// poissonTableFor returns the (cached) table for lam (at most 60000).
func poissonTableFor(lam float64) *poissonTable {
	if t, ok := poissonTables.Load(lam); ok {
		return t.(*poissonTable)
	}
	t := &poissonTable{lam: lam}
	top := int(math.Ceil(lam))
	t.div = make([]float64, top+1)
	for n := range t.div {
		t.div[n] = float64(n) / lam
	}
	for k := range t.row {
		mu := unitTable[k] * lam
		if mu == 0 {
			t.row[k] = poissonRow{col: []aliasColumn{{1, 0}}}
			continue
		}
		sd := 8*math.Sqrt(mu) + 8
		lo := max(0, int(math.Floor(mu-sd)))
		hi := max(min(top, int(math.Ceil(mu+sd))), lo)
		p := make([]float64, hi-lo+1)
		acc := 0.0
		for n := lo; n < hi; n++ {
			p[n-lo] = math.Exp(float64(n)*math.Log(mu) - mu - logFactorial(n))
			acc += p[n-lo]
		}
		p[hi-lo] = max(1-acc, 0) // the rest of the mass
		t.row[k] = newAliasRow(lo, p)
	}
	got, _ := poissonTables.LoadOrStore(lam, t)
	return got.(*poissonTable)
}

// newAliasRow builds the alias table of the distribution p (summing to 1) over lo, lo+1, ….
func newAliasRow(lo int, p []float64) poissonRow {
	m := len(p)
	r := poissonRow{lo: lo, col: make([]aliasColumn, m)}
	scaled := make([]float64, m)
	var small, large []int
	for j, v := range p {
		scaled[j] = v * float64(m)
		if scaled[j] < 1 {
			small = append(small, j)
		} else {
			large = append(large, j)
		}
	}
	for len(small) > 0 && len(large) > 0 {
		s, l := small[len(small)-1], large[len(large)-1]
		small = small[:len(small)-1]
		r.col[s] = aliasColumn{float32(scaled[s]), uint16(l)}
		scaled[l] -= 1 - scaled[s]
		if scaled[l] < 1 {
			large = large[:len(large)-1]
			small = append(small, l)
		}
	}
	for _, j := range large {
		r.col[j] = aliasColumn{1, uint16(j)}
	}
	for _, j := range small { // rounding leftovers
		r.col[j] = aliasColumn{1, uint16(j)}
	}
	return r
}

// draw returns a Poisson(k/255·lam) count, capped as the table is: one uniform picks a column
// (its integer part) and between the column and its alias (its fraction).
func (r *poissonRow) draw(rng *rand.Rand) int {
	u := rng.Float64() * float64(len(r.col))
	j := int(u)
	if c := r.col[j]; u-float64(j) >= float64(c.prob) {
		j = int(c.alias)
	}
	return r.lo + j
}
