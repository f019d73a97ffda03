package quant

import (
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// data returns seeded test values of the named kind.
func data(kind string, n int, seed uint64) []float32 {
	rng := rand.New(rand.NewPCG(seed, 7))
	x := make([]float32, n)
	for i := range x {
		switch kind {
		case "normal": // signature-like: small, centred
			x[i] = float32(rng.NormFloat64() * 0.01)
		case "uniform":
			x[i] = float32(rng.Float64()*4 - 1)
		case "heavy": // ratio of normals: heavy tails
			x[i] = float32(rng.NormFloat64() / (math.Abs(rng.NormFloat64()) + 0.05))
		case "sparse": // exact zeros, both signs, among values of mixed scale
			switch rng.IntN(4) {
			case 0:
				x[i] = 0
			case 1:
				x[i] = float32(math.Copysign(0, -1))
			default:
				x[i] = float32(rng.NormFloat64() * math.Pow(10, float64(rng.IntN(6)-4)))
			}
		case "large": // beyond tanh's saturation
			x[i] = float32(rng.NormFloat64() * 10)
		case "constant":
			x[i] = 0.25
		case "shifted": // far from zero, narrow: stresses float32 rounding of levels
			x[i] = float32(1000 + rng.NormFloat64()*0.01)
		}
	}
	return x
}

var dataKinds = []string{"normal", "uniform", "heavy", "sparse", "large", "constant", "shifted"}

// specs lists every codec at every width it supports.
func specs() []Spec {
	out := []Spec{{Codec: None}}
	for _, c := range []Codec{Linear, Log, Tanh, Gauss} {
		for b := 1; b <= MaxBits; b++ {
			if s := (Spec{c, b}); s.Validate() == nil {
				out = append(out, s)
			}
		}
	}
	return out
}

// TestBound checks every decoded value against the documented bound, for every codec and width,
// per tensor and per channel, on several kinds of seeded data.
func TestBound(t *testing.T) {
	const n, groups = 4096, 16
	for _, spec := range specs() {
		for _, kind := range dataKinds {
			for _, g := range []int{1, groups} {
				name := fmt.Sprintf("%s/%s/groups=%d", spec, kind, g)
				t.Run(name, func(t *testing.T) {
					x := data(kind, n, uint64(spec.Bits*100+g))
					q, err := Encode(x, g, spec)
					if err != nil {
						t.Fatal(err)
					}
					if err := q.Validate(); err != nil {
						t.Fatal(err)
					}
					y := make([]float32, n)
					if err := q.Decode(y); err != nil {
						t.Fatal(err)
					}
					per := n / g
					for i := range x {
						e := math.Abs(float64(x[i]) - float64(y[i]))
						b := q.Bound(i/per, x[i])
						if spec.Codec == None && e != 0 {
							t.Fatalf("value %d: none is not exact: %v decoded as %v", i, x[i], y[i])
						}
						if !(e <= b) {
							t.Fatalf("value %d: x=%v x̂=%v |x−x̂|=%g > bound %g (params %v)", i, x[i], y[i], e, b, q.Params[2*(i/per):2*(i/per)+2])
						}
					}
				})
			}
		}
	}
}

// TestBoundTight checks that the bounds are not vacuous: on dense uniform data the worst error
// reaches most of the linear and gauss bounds.
func TestBoundTight(t *testing.T) {
	for _, spec := range []Spec{{Linear, 2}, {Linear, 8}, {Tanh, 4}, {Gauss, 1}, {Gauss, 3}, {Log, 4}} {
		x := data("uniform", 1<<14, 3)
		q, err := Encode(x, 1, spec)
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := q.Decode(y); err != nil {
			t.Fatal(err)
		}
		worst := 0.0
		for i := range x {
			worst = max(worst, math.Abs(float64(x[i])-float64(y[i]))/q.Bound(0, x[i]))
		}
		if worst < 0.9 {
			t.Errorf("%s: worst error reaches only %.3f of the bound", spec, worst)
		}
	}
}

// TestLinearExact checks the linear codec's stated error bound (the formula) directly.
func TestLinearExact(t *testing.T) {
	x := data("normal", 1000, 9)
	for b := 1; b <= 8; b++ {
		q, err := Encode(x, 1, Spec{Linear, b})
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := q.Decode(y); err != nil {
			t.Fatal(err)
		}
		lo, hi := float64(q.Params[0]), float64(q.Params[1])
		limit := (hi-lo)/(2*float64(int(1)<<b-1)) + math.Max(math.Abs(lo), math.Abs(hi))*0x1p-23
		for i := range x {
			if e := math.Abs(float64(x[i]) - float64(y[i])); e > limit {
				t.Fatalf("%d bits: value %d error %g > (max−min)/(2(2^b−1)) + ulp = %g", b, i, e, limit)
			}
		}
	}
}

// TestStable checks that decoded values are fixed points: encoding them again with the same
// parameters gives the same codes, and (for linear, whose parameters are the extremes) that
// encoding them from scratch gives the same parameters too.
func TestStable(t *testing.T) {
	for _, spec := range specs() {
		for _, kind := range dataKinds {
			x := data(kind, 1000, 5)
			q, err := Encode(x, 10, spec)
			if err != nil {
				t.Fatal(err)
			}
			y := make([]float32, len(x))
			if err := q.Decode(y); err != nil {
				t.Fatal(err)
			}
			again := reencode(t, q, y)
			if string(again) != string(q.Codes) {
				t.Errorf("%s/%s: re-encoding decoded values with the same parameters changed the codes", spec, kind)
			}
			if spec.Codec == Linear || spec.Codec == None {
				q2, err := Encode(y, 10, spec)
				if err != nil {
					t.Fatal(err)
				}
				if string(q2.Codes) != string(q.Codes) || fmt.Sprint(q2.Params) != fmt.Sprint(q.Params) {
					t.Errorf("%s/%s: encode∘decode∘encode differs from encode", spec, kind)
				}
			}
		}
	}
}

// reencode encodes y with q's parameters and returns the packed codes.
func reencode(t *testing.T, q *Tensor, y []float32) []byte {
	t.Helper()
	if q.Spec.Codec == None {
		r, err := Encode(y, q.Groups, q.Spec)
		if err != nil {
			t.Fatal(err)
		}
		return r.Codes
	}
	codes := make([]uint8, len(y))
	lv := make([]float32, 1<<q.Spec.Bits)
	per := q.Len / q.Groups
	for g := range q.Groups {
		p := q.Params[2*g : 2*g+2]
		if err := levels(q.Spec, p, lv); err != nil {
			t.Fatal(err)
		}
		encodeGroup(q.Spec, p, lv, y[g*per:(g+1)*per], codes[g*per:(g+1)*per])
	}
	out := make([]byte, len(q.Codes))
	Pack(out, codes, q.Spec.Bits)
	return out
}

func TestLogZeros(t *testing.T) {
	negZero := float32(math.Copysign(0, -1))
	x := []float32{0, negZero, 1, -1, 0.5, -0.25, 0}
	for b := 2; b <= 8; b++ {
		q, err := Encode(x, 1, Spec{Log, b})
		if err != nil {
			t.Fatal(err)
		}
		y := make([]float32, len(x))
		if err := q.Decode(y); err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, 1, 6} {
			if math.Float32bits(y[i]) != math.Float32bits(x[i]) {
				t.Errorf("%d bits: value %d = %v decoded as %v, want the exact signed zero", b, i, x[i], y[i])
			}
		}
		for i, v := range y {
			if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
				t.Errorf("%d bits: value %d decoded as %v", b, i, v)
			}
			if x[i] != 0 && math.Signbit(float64(v)) != math.Signbit(float64(x[i])) {
				t.Errorf("%d bits: value %d = %v decoded with the wrong sign: %v", b, i, x[i], v)
			}
		}
	}
	// All zeros: parameters 0, 0 and every value exact.
	q, err := Encode(make([]float32, 9), 1, Spec{Log, 3})
	if err != nil {
		t.Fatal(err)
	}
	if q.Params[0] != 0 || q.Params[1] != 0 {
		t.Errorf("all-zero log parameters = %v, want [0 0]", q.Params)
	}
}

func TestTanhSaturation(t *testing.T) {
	x := []float32{-100, -9, -1, 0, 1e-3, 9, 100}
	q, err := Encode(x, 1, Spec{Tanh, 8})
	if err != nil {
		t.Fatal(err)
	}
	y := make([]float32, len(x))
	if err := q.Decode(y); err != nil {
		t.Fatal(err)
	}
	for i, v := range y {
		if math.IsInf(float64(v), 0) || math.IsNaN(float64(v)) {
			t.Fatalf("value %v decoded as %v", x[i], v)
		}
	}
	if math.Abs(float64(y[6])-TanhSaturation) > 1e-5 || math.Abs(float64(y[0])+TanhSaturation) > 1e-5 {
		t.Errorf("±100 decoded as %v, %v; want ±%v (saturation)", y[0], y[6], TanhSaturation)
	}
}

// TestGaussCodebook checks the codebooks against the values METHODS.md quotes (four decimals)
// and checks the defining property independently: each code is the median of N(0,1) on its cell,
// the cells meeting at midpoints, i.e. Φ(c_j) = (Φ(t_j) + Φ(t_{j+1}))/2.
func TestGaussCodebook(t *testing.T) {
	paper := map[int][]float64{
		1: {0.6745},
		2: {0.3778, 1.2657},
		3: {0.2026, 0.6254, 1.1137, 1.7920},
	}
	for b, want := range paper {
		cb := GaussCodes(b)
		pos := cb[len(cb)/2:]
		for i := range want {
			if math.Abs(pos[i]-want[i]) > 0.5e-4 {
				t.Errorf("%d bits: code %d = %.6f, paper %.4f", b, i, pos[i], want[i])
			}
		}
	}
	phi := func(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }
	for b := 1; b <= MaxBits; b++ {
		cb := GaussCodes(b)
		if len(cb) != 1<<b {
			t.Fatalf("%d bits: %d codes", b, len(cb))
		}
		for j := range cb {
			if cb[j] != -cb[len(cb)-1-j] {
				t.Errorf("%d bits: codebook not symmetric at %d", b, j)
			}
			if j > 0 && !(cb[j] > cb[j-1]) {
				t.Errorf("%d bits: codebook not ascending at %d", b, j)
			}
			lo, hi := math.Inf(-1), math.Inf(1)
			if j > 0 {
				lo = (cb[j-1] + cb[j]) / 2
			}
			if j < len(cb)-1 {
				hi = (cb[j] + cb[j+1]) / 2
			}
			if d := phi(cb[j]) - (phi(lo)+phi(hi))/2; math.Abs(d) > 1e-12 {
				t.Errorf("%d bits: code %d = %v is not its cell's median: Φ differs by %g", b, j, cb[j], d)
			}
		}
	}
	if GaussCodes(0) != nil || GaussCodes(9) != nil {
		t.Error("GaussCodes outside 1–8 bits should be nil")
	}
}

// TestLinearVectors compares codes, parameters and decoded values byte for byte with the
// independent Python implementation (scripts/gen_quant_vectors.py).
func TestLinearVectors(t *testing.T) {
	f32 := func(s string) float32 {
		u, err := strconv.ParseUint(s, 16, 32)
		if err != nil {
			t.Fatal(err)
		}
		return math.Float32frombits(uint32(u))
	}
	for _, tc := range loadVectors(t).Linear {
		x := make([]float32, len(tc.X))
		for i, s := range tc.X {
			x[i] = f32(s)
		}
		q, err := Encode(x, tc.Groups, Spec{Linear, tc.Bits})
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(q.Codes); got != tc.Packed {
			t.Errorf("bits %d groups %d: codes %s, want %s", tc.Bits, tc.Groups, got, tc.Packed)
		}
		for i, s := range tc.Params {
			if math.Float32bits(q.Params[i]) != math.Float32bits(f32(s)) {
				t.Errorf("bits %d groups %d: param %d = %v, want %v", tc.Bits, tc.Groups, i, q.Params[i], f32(s))
			}
		}
		y := make([]float32, len(x))
		if err := q.Decode(y); err != nil {
			t.Fatal(err)
		}
		for i, s := range tc.Decoded {
			if math.Float32bits(y[i]) != math.Float32bits(f32(s)) {
				t.Errorf("bits %d groups %d: decoded %d = %v, want %v", tc.Bits, tc.Groups, i, y[i], f32(s))
			}
		}
	}
}

func TestSpecValidate(t *testing.T) {
	tests := []struct {
		spec Spec
		ok   bool
	}{
		{Spec{None, 0}, true},
		{Spec{Linear, 1}, true},
		{Spec{Linear, 8}, true},
		{Spec{Linear, 0}, false},
		{Spec{Linear, 9}, false},
		{Spec{Log, 1}, false},
		{Spec{Log, 2}, true},
		{Spec{Tanh, 1}, true},
		{Spec{Gauss, 8}, true},
		{Spec{Gauss, 9}, false},
		{Spec{"mystery", 4}, false},
	}
	for _, tc := range tests {
		err := tc.spec.Validate()
		if (err == nil) != tc.ok {
			t.Errorf("%v.Validate() = %v, want ok=%v", tc.spec, err, tc.ok)
		}
	}
	if _, err := ParseCodec("lin"); !errors.Is(err, ErrUnknownCodec) {
		t.Errorf(`ParseCodec("lin") = %v, want ErrUnknownCodec`, err)
	}
	for _, c := range Codecs {
		if got, err := ParseCodec(string(c)); err != nil || got != c {
			t.Errorf("ParseCodec(%q) = %v, %v", c, got, err)
		}
	}
	if _, err := ParseGranularity("row"); err == nil {
		t.Error(`ParseGranularity("row") succeeded`)
	}
}

func TestEncodeErrors(t *testing.T) {
	tests := []struct {
		name   string
		x      []float32
		groups int
		spec   Spec
	}{
		{"nan", []float32{1, float32(math.NaN())}, 1, Spec{Linear, 4}},
		{"inf", []float32{float32(math.Inf(1))}, 1, Spec{None, 0}},
		{"groups do not divide", make([]float32, 10), 3, Spec{Gauss, 2}},
		{"zero groups", make([]float32, 10), 0, Spec{Gauss, 2}},
		{"bad bits", make([]float32, 10), 1, Spec{Log, 1}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := Encode(tc.x, tc.groups, tc.spec); err == nil {
				t.Fatal("Encode succeeded")
			}
		})
	}
}

// TestDecodeCorrupt checks that damaged tensors are refused with ErrCorrupt.
func TestDecodeCorrupt(t *testing.T) {
	good := func(spec Spec) *Tensor {
		q, err := Encode(data("normal", 64, 1), 4, spec)
		if err != nil {
			t.Fatal(err)
		}
		return q
	}
	nan := float32(math.NaN())
	tests := []struct {
		name   string
		spec   Spec
		damage func(q *Tensor)
	}{
		{"codes truncated", Spec{Linear, 3}, func(q *Tensor) { q.Codes = q.Codes[:len(q.Codes)-1] }},
		{"codes extended", Spec{Linear, 3}, func(q *Tensor) { q.Codes = append(q.Codes, 0) }},
		{"params missing", Spec{Gauss, 2}, func(q *Tensor) { q.Params = q.Params[:7] }},
		{"param nan", Spec{Gauss, 2}, func(q *Tensor) { q.Params[3] = nan }},
		{"min above max", Spec{Linear, 2}, func(q *Tensor) { q.Params[0], q.Params[1] = 1, -1 }},
		{"log overflow", Spec{Log, 4}, func(q *Tensor) { q.Params[1] = 200 }},
		{"tanh at 1", Spec{Tanh, 4}, func(q *Tensor) { q.Params[1] = 1 }},
		{"negative std", Spec{Gauss, 3}, func(q *Tensor) { q.Params[1] = -1 }},
		{"gauss overflow", Spec{Gauss, 3}, func(q *Tensor) { q.Params[1] = 3e38 }},
		{"groups do not divide", Spec{Linear, 8}, func(q *Tensor) { q.Groups = 5 }},
		{"negative length", Spec{Linear, 8}, func(q *Tensor) { q.Len = -64 }},
		{"huge length", Spec{Linear, 8}, func(q *Tensor) { q.Len = math.MaxInt - 3; q.Groups = 1 }},
		{"bad bits", Spec{Linear, 8}, func(q *Tensor) { q.Spec.Bits = 12 }},
		{"none nan", Spec{None, 0}, func(q *Tensor) { q.Codes[3] = 0x7F; q.Codes[2] = 0xC0 }},
		{"none truncated", Spec{None, 0}, func(q *Tensor) { q.Codes = q.Codes[:5] }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			q := good(tc.spec)
			tc.damage(q)
			if err := q.Validate(); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Validate = %v, want ErrCorrupt", err)
			}
			if err := q.Decode(make([]float32, 64)); !errors.Is(err, ErrCorrupt) {
				t.Errorf("Decode = %v, want ErrCorrupt", err)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	x := data("normal", 1<<20, 1)
	for _, spec := range []Spec{{None, 0}, {Linear, 2}, {Linear, 8}, {Log, 8}, {Tanh, 8}, {Gauss, 2}, {Gauss, 8}} {
		b.Run(spec.String(), func(b *testing.B) {
			b.SetBytes(4 * int64(len(x)))
			for b.Loop() {
				if _, err := Encode(x, 64, spec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	x := data("normal", 1<<20, 1)
	y := make([]float32, len(x))
	for _, spec := range []Spec{{None, 0}, {Linear, 2}, {Linear, 8}, {Log, 8}, {Tanh, 8}, {Gauss, 2}, {Gauss, 8}} {
		q, err := Encode(x, 64, spec)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(spec.String(), func(b *testing.B) {
			b.SetBytes(4 * int64(len(x)))
			for b.Loop() {
				if err := q.Decode(y); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
