package inspect

import (
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/rws-project/rws/internal/kernel"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// spec is one tensor of a test checkpoint: its type, length and whether it holds NaN and ±Inf.
type spec struct {
	name  string
	dtype tensor.DType
	n     int
	bad   bool
}

// specs cover empty and one-element tensors, lengths that are no multiple of the vector width,
// tensors of several blocks with a short last one, and every float type.
var specs = []spec{
	{"a.weight", tensor.F32, 3*kernel.BlockElems + 7, true},
	{"a.bias", tensor.F32, 7, false},
	{"b.weight", tensor.F16, kernel.BlockElems + 1, true},
	{"b.bias", tensor.BF16, 1, false},
	{"c.weight", tensor.F64, 2*kernel.BlockElems - 3, false},
	{"c.bias", tensor.F32, 0, false},
	{"d.weight", tensor.BF16, kernel.BlockElems, true},
}

// writeSpecs writes a checkpoint of seeded normal values (with NaN and ±Inf where asked) and
// returns the values as the file stores them, decoded to float32.
func writeSpecs(t *testing.T, path string, seed uint64, specs []spec) map[string][]float32 {
	t.Helper()
	r := rand.New(rand.NewPCG(seed, 1))
	vals := map[string][]float32{}
	var ts []safetensors.Tensor
	for _, s := range specs {
		v := make([]float32, s.n)
		for i := range v {
			v[i] = float32(r.NormFloat64()*0.1 + 0.01)
			if s.bad && r.IntN(1000) == 0 {
				v[i] = float32([]float64{math.NaN(), math.Inf(1), math.Inf(-1)}[r.IntN(3)])
			}
		}
		raw := make([]byte, s.n*s.dtype.Size())
		if err := tensor.EncodeFloat32(s.dtype, v, raw); err != nil {
			t.Fatal(err)
		}
		if err := tensor.DecodeFloat32(s.dtype, raw, v); err != nil {
			t.Fatal(err)
		}
		vals[s.name] = v
		ts = append(ts, safetensors.Tensor{Name: s.name, DType: s.dtype, Shape: []int64{int64(s.n)}, Data: raw})
	}
	if err := safetensors.WriteFile(path, ts, nil, safetensors.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	return vals
}

// withProcs runs f with GOMAXPROCS set to n.
func withProcs(n int, f func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	f()
}

// TestStatsMatchFloat64Loop checks the statistics against a plain float64 loop, and that they
// are the same bits with one core as with several.
func TestStatsMatchFloat64Loop(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	vals := writeSpecs(t, path, 1, specs)
	var reps []*Report
	for _, procs := range []int{1, 2, 3} {
		withProcs(procs, func() {
			rep, err := File(path, Options{Stats: true})
			if err != nil {
				t.Fatal(err)
			}
			reps = append(reps, rep)
		})
	}
	for i, procs := range []int{2, 3} {
		if !reflect.DeepEqual(reps[i+1], reps[0]) {
			t.Errorf("GOMAXPROCS=%d gives another report than GOMAXPROCS=1", procs)
		}
	}
	for _, tt := range reps[0].Tensors {
		v := vals[tt.Name]
		var n, sum, sq, abs float64
		lo, hi, bad := math.Inf(1), math.Inf(-1), int64(0)
		for _, x := range v {
			f := float64(x)
			if math.IsNaN(f) || math.IsInf(f, 0) {
				bad++
				continue
			}
			n, sum, sq, abs = n+1, sum+f, sq+f*f, abs+math.Abs(f)
			lo, hi = math.Min(lo, f), math.Max(hi, f)
		}
		want := Stats{NonFinite: bad, L2: math.Sqrt(sq)}
		if n > 0 {
			want.Min, want.Max, want.Mean = lo, hi, sum/n
			want.Std = math.Sqrt(sq/n - want.Mean*want.Mean)
		}
		s := tt.Stats
		// Sums of n terms in another order differ by about n ulps of the sum of magnitudes.
		tol := float64(len(v)+1) * 0x1p-52
		if s == nil || s.NonFinite != want.NonFinite || s.Min != want.Min || s.Max != want.Max ||
			math.Abs(s.Mean-want.Mean) > tol*abs/max(n, 1) || math.Abs(s.L2-want.L2) > tol*want.L2 ||
			math.Abs(s.Std-want.Std) > 1e-9*(want.Std+math.Abs(want.Mean)) {
			t.Errorf("%s: stats %+v, want %+v", tt.Name, s, want)
		}
	}
}

// TestStatsTruncatedUnderUs checks that a file cut short after it was opened is an error, not
// a crash or silent zeros.
func TestStatsTruncatedUnderUs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "m.safetensors")
	writeSpecs(t, path, 2, specs[:2])
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()-1000); err != nil {
		t.Fatal(err)
	}
	ts := []Tensor{{Name: "a.weight", Parameters: int64(specs[0].n)}, {Name: "a.bias", Parameters: int64(specs[1].n)}}
	var fe *safetensors.FormatError
	if err := addStats(r, ts); !errors.As(err, &fe) || fe.Rule != safetensors.RuleTruncated {
		t.Errorf("error %v, want a %s format error", err, safetensors.RuleTruncated)
	}
}
