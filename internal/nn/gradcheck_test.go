package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
)

// TestFiniteDifferences compares back-propagated gradients with central differences of the
// loss, for every parameter kind and the input, on a small network that chains the layer kinds
// (fused conv+ReLU+pool, strided conv without bias, batch norm in both modes, ReLU, residual
// block with projection shortcut, global pool, linear, cross-entropy).
func TestFiniteDifferences(t *testing.T) {
	for _, train := range []bool{true, false} {
		t.Run(fmt.Sprintf("train=%v", train), func(t *testing.T) {
			net, in := fdNet(t)
			r := rand.New(rand.NewPCG(7, 8))
			n := 3
			x := make([]float32, n*in.size())
			for i := range x {
				x[i] = float32(r.NormFloat64())
			}
			labels := []int{0, 2, 1}
			for _, p := range net.state() {
				switch {
				case p.kind == kindParam && len(p.shape) > 1:
					for i := range p.w {
						p.w[i] = float32(r.NormFloat64() * math.Sqrt(2/float64(prod(p.shape[1:]))))
					}
				case p.kind == kindParam:
					for i := range p.w {
						p.w[i] = float32(1 + 0.2*r.NormFloat64())
					}
				case p.kind == kindBuffer && p.name[len(p.name)-3:] == "var":
					for i := range p.w {
						p.w[i] = float32(0.5 + r.Float64())
					}
				}
			}
			k := net.out().size()
			loss := func() float64 {
				logits := net.forward(x, n, train)
				l, _ := crossEntropy(logits, labels, k, nil)
				return l
			}
			// Analytic gradients.
			for _, p := range net.state() {
				if p.g != nil {
					clear(p.g)
				}
			}
			logits := net.forward(x, n, train)
			dl := make([]float32, len(logits))
			crossEntropy(logits, labels, k, dl)
			dx := append([]float32(nil), net.backward(dl, true)...)

			const h = 1e-3
			check := func(what string, v []float32, grad []float32) {
				t.Helper()
				scale := 1e-3
				for _, g := range grad {
					scale = max(scale, math.Abs(float64(g)))
				}
				for _, i := range r.Perm(len(v))[:min(len(v), 12)] {
					old := v[i]
					v[i] = old + h
					lp := loss()
					v[i] = old - h
					lm := loss()
					v[i] = old
					l0 := loss()
					// A ReLU or max-pool kink within h on one side spoils the central difference;
					// the other side's one-sided difference is then still exact to O(h).
					ok := false
					for _, fd := range []float64{(lp - lm) / (2 * h), (lp - l0) / h, (l0 - lm) / h} {
						ok = ok || math.Abs(fd-float64(grad[i])) <= 2e-2*scale
					}
					if !ok {
						t.Errorf("%s[%d]: back-propagated %.6g, finite differences %.6g (right %.6g, left %.6g; scale %.3g)",
							what, i, grad[i], (lp-lm)/(2*h), (lp-l0)/h, (l0-lm)/h, scale)
					}
				}
			}
			for _, p := range net.state() {
				if p.kind == kindParam {
					check(p.name, p.w, p.g)
				}
			}
			check("input", x, dx)
		})
	}
}

func fdNet(t *testing.T) (*sequential, shape) {
	in := shape{2, 8, 8}
	s := &sequential{in: in}
	c1, err := newConv("c1", in, 4, 3, 1, 1, true)
	if err != nil {
		t.Fatal(err)
	}
	c1.fuse(newMaxPool(c1.co, 2, 2, false))
	c2, err := newConv("c2", c1.out(), 6, 3, 2, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	bn := newBatchNorm("bn", c2.out())
	blk, err := newBasicBlock("blk", c2.out(), 8, 2)
	if err != nil {
		t.Fatal(err)
	}
	s.layers = []layer{c1, c2, bn, newReLU(c2.out()), blk, &globalAvgPool{in: blk.out()}, newLinear("fc", shape{8, 1, 1}, 3)}
	return s, in
}
