// Package diff compares two checkpoints tensor by tensor — ‖B−A‖₂, ‖B−A‖₂/‖A‖₂ and the cosine
// between A and B — and says where the difference concentrates, layer by layer from the input.
// Tensors are read in bounded blocks on all cores and sums are accumulated in float64.
package diff

import (
	"fmt"
	"math"
	"sort"
	"strings"

	"github.com/rws-project/rws/inspect"
	"github.com/rws-project/rws/internal/kernel"
	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/safetensors"
)

// Tensor is the comparison of one tensor present in both files with the same shape.
type Tensor struct {
	Name     string  `json:"name"`
	Layer    string  `json:"layer"`
	L2       float64 `json:"l2"`       // ‖B−A‖₂
	Relative float64 `json:"relative"` // ‖B−A‖₂/‖A‖₂ (+Inf when A is zero and B is not; 0 when both are)
	Cosine   float64 `json:"cosine"`   // ⟨A,B⟩/(‖A‖‖B‖); 1 when both are zero, 0 when one is
	NormA    float64 `json:"norm_a"`
	NormB    float64 `json:"norm_b"`
}

// Mismatch is a tensor present in both files whose shape or dtype differ; it is not compared.
type Mismatch struct {
	Name   string  `json:"name"`
	DTypeA string  `json:"dtype_a"`
	DTypeB string  `json:"dtype_b"`
	ShapeA []int64 `json:"shape_a"`
	ShapeB []int64 `json:"shape_b"`
}

// LayerShare is one layer's part of the total squared difference.
type LayerShare struct {
	Layer    string  `json:"layer"`
	Share    float64 `json:"share"`    // of Σ‖B−A‖² over all compared tensors
	Relative float64 `json:"relative"` // ‖B−A‖/‖A‖ over the layer's tensors
}

// Report is the comparison of A and B.
type Report struct {
	A, B       string       `json:"-"`
	Tensors    []Tensor     `json:"tensors"`
	OnlyInA    []string     `json:"only_in_a"`
	OnlyInB    []string     `json:"only_in_b"`
	Mismatched []Mismatch   `json:"mismatched"`
	Layers     []LayerShare `json:"layers"`
	L2         float64      `json:"l2"`
	Relative   float64      `json:"relative"`
	Summary    string       `json:"summary"`
}

// Options controls Files.
type Options struct {
	Order []string // a stated module order (package layer)
}

// Files compares the checkpoints at a and b. Layer order comes from a.
func Files(a, b string, opts Options) (*Report, error) {
	ra, err := safetensors.Open(a)
	if err != nil {
		return nil, err
	}
	defer ra.Close()
	rb, err := safetensors.Open(b)
	if err != nil {
		return nil, err
	}
	defer rb.Close()
	layers, err := inspect.Layers(ra, opts.Order)
	if err != nil {
		return nil, err
	}
	rep := &Report{A: a, B: b, OnlyInA: []string{}, OnlyInB: []string{}, Mismatched: []Mismatch{}}
	var todo []Tensor
	for _, l := range layers {
		for _, name := range l.Tensors {
			ia, _ := ra.Info(name)
			ib, ok := rb.Info(name)
			switch {
			case !ok:
				rep.OnlyInA = append(rep.OnlyInA, name)
			case ia.DType != ib.DType || !sameShape(ia.Shape, ib.Shape):
				if sameShape(ia.Shape, ib.Shape) && ia.DType.IsFloat() && ib.DType.IsFloat() {
					todo = append(todo, Tensor{Name: name, Layer: l.Name}) // F16 vs F32 compares by value
					continue
				}
				rep.Mismatched = append(rep.Mismatched, Mismatch{Name: name, DTypeA: string(ia.DType),
					DTypeB: string(ib.DType), ShapeA: ia.Shape, ShapeB: ib.Shape})
			default:
				todo = append(todo, Tensor{Name: name, Layer: l.Name})
			}
		}
	}
	for _, in := range rb.Tensors() {
		if _, ok := ra.Info(in.Name); !ok {
			rep.OnlyInB = append(rep.OnlyInB, in.Name)
		}
	}
	if err := compareAll(ra, rb, todo); err != nil {
		return nil, err
	}
	rep.Tensors = todo
	rep.summarise(layers)
	return rep, nil
}

func sameShape(a, b []int64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// compareAll reads the tensors of both files in equal blocks of elements on all cores and merges
// each tensor's blocks in order, so the numbers do not depend on the number of cores.
func compareAll(ra, rb *safetensors.Reader, ts []Tensor) error {
	sizes := make([]int64, len(ts))
	for i, t := range ts {
		in, _ := ra.Info(t.Name)
		sizes[i] = in.Elements()
	}
	worker := func() func(kernel.Block) (kernel.Pair, error) {
		var scratch []byte
		va := make([]float32, kernel.BlockElems)
		vb := make([]float32, kernel.BlockElems)
		return func(b kernel.Block) (kernel.Pair, error) {
			var p kernel.Pair
			x, y := va[:b.N], vb[:b.N]
			if err := ra.ReadFloat32At(ts[b.T].Name, x, b.At, &scratch); err != nil {
				return p, err
			}
			if err := rb.ReadFloat32At(ts[b.T].Name, y, b.At, &scratch); err != nil {
				return p, err
			}
			kernel.AddPair(&p, x, y)
			return p, nil
		}
	}
	return kernel.Blocks(sizes, worker, func(i int, parts []kernel.Pair) {
		var s kernel.Pair
		for _, p := range parts {
			s.Merge(p)
		}
		t := &ts[i]
		t.NormA, t.NormB, t.L2 = math.Sqrt(s.AA), math.Sqrt(s.BB), math.Sqrt(s.DD)
		t.Relative = ratio(t.L2, t.NormA)
		switch {
		case t.NormA == 0 && t.NormB == 0:
			t.Cosine = 1
		case t.NormA == 0 || t.NormB == 0:
			t.Cosine = 0
		default:
			t.Cosine = s.AB / (t.NormA * t.NormB)
		}
	})
}

func ratio(num, den float64) float64 {
	switch {
	case den != 0:
		return num / den
	case num == 0:
		return 0
	}
	return math.Inf(1)
}

func (r *Report) summarise(layers []layer.Layer) {
	sq := map[string]float64{}
	na := map[string]float64{}
	var total, totalA float64
	for _, t := range r.Tensors {
		sq[t.Layer] += t.L2 * t.L2
		na[t.Layer] += t.NormA * t.NormA
		total += t.L2 * t.L2
		totalA += t.NormA * t.NormA
	}
	r.L2 = math.Sqrt(total)
	r.Relative = ratio(r.L2, math.Sqrt(totalA))
	r.Layers = []LayerShare{}
	for _, l := range layers {
		if _, ok := na[l.Name]; !ok {
			continue
		}
		share := 0.0
		if total > 0 {
			share = sq[l.Name] / total
		}
		r.Layers = append(r.Layers, LayerShare{Layer: l.Name, Share: share,
			Relative: ratio(math.Sqrt(sq[l.Name]), math.Sqrt(na[l.Name]))})
	}
	r.Summary = r.describe()
}

// describe says in plain words where the difference lies.
func (r *Report) describe() string {
	var b strings.Builder
	switch {
	case len(r.Tensors) == 0:
		b.WriteString("No tensor could be compared.")
	case r.L2 == 0:
		fmt.Fprintf(&b, "The %d compared tensors are identical in value.", len(r.Tensors))
	default:
		n := len(r.Layers)
		// How many layers from the input hold half and 90% of the squared difference.
		cum, half, most := 0.0, 0, 0
		for i, l := range r.Layers {
			cum += l.Share
			if half == 0 && cum >= 0.5 {
				half = i + 1
			}
			if most == 0 && cum >= 0.9 {
				most = i + 1
				break
			}
		}
		top := append([]LayerShare(nil), r.Layers...)
		sort.SliceStable(top, func(i, j int) bool { return top[i].Share > top[j].Share })
		fmt.Fprintf(&b, "Overall relative difference %.3g over %d layers. ", r.Relative, n)
		fmt.Fprintf(&b, "Counted from the input, the first %d of %d layers hold half of the squared difference and the first %d hold 90%%. ", half, n, most)
		fmt.Fprintf(&b, "Largest shares: ")
		for i := 0; i < len(top) && i < 3; i++ {
			if i > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "%s %.1f%%", top[i].Layer, 100*top[i].Share)
		}
		b.WriteString(".")
	}
	if k := len(r.OnlyInA) + len(r.OnlyInB) + len(r.Mismatched); k > 0 {
		fmt.Fprintf(&b, " Not compared: %d only in A, %d only in B, %d with another shape or dtype.",
			len(r.OnlyInA), len(r.OnlyInB), len(r.Mismatched))
	}
	return b.String()
}
