package nn

import "github.com/rws-project/rws/internal/nn/blas"

// linear is torch.nn.Linear: y = x·Wᵀ + b with weight [out, in] and bias [out]. Its input is
// the flattened example (C·H·W values in that order).
type linear struct {
	name         string
	inF, outF    int
	weight, bias *param

	x     []float32
	n     int
	y, dx []float32
}

func newLinear(name string, in shape, out int) *linear {
	return &linear{
		name: name, inF: in.size(), outF: out,
		weight: newParam(name+".weight", kindParam, out, in.size()),
		bias:   newParam(name+".bias", kindParam, out),
	}
}

func (l *linear) out() shape { return shape{l.outF, 1, 1} }

func (l *linear) modules() []string { return []string{l.name} }

func (l *linear) state() []*param { return []*param{l.weight, l.bias} }

func (l *linear) forward(x []float32, n int, train bool) []float32 {
	l.x, l.n = x, n
	in, out := l.inF, l.outF
	l.y = grow(l.y, n*out)
	parallel(n, 16, func(_, lo, hi int) {
		for i := lo; i < hi; i++ {
			copy(l.y[i*out:(i+1)*out], l.bias.w)
		}
		blas.Sgemm(false, true, hi-lo, out, in, 1, x[lo*in:], in, l.weight.w, in, 1, l.y[lo*out:], out)
	})
	return l.y
}

func (l *linear) backward(dy []float32, needDx bool) []float32 {
	n, in, out := l.n, l.inF, l.outF
	for i := 0; i < n; i++ {
		for j, v := range dy[i*out : (i+1)*out] {
			l.bias.g[j] += v
		}
	}
	// dW [out, in] += dyᵀ·x, split over the input features.
	parallel(in, 64, func(_, lo, hi int) {
		blas.Sgemm(true, false, out, hi-lo, n, 1, dy, out, l.x[lo:], in, 1, l.weight.g[lo:], in)
	})
	if !needDx {
		return nil
	}
	l.dx = grow(l.dx, n*in)
	parallel(n, 16, func(_, lo, hi int) {
		blas.Sgemm(false, false, hi-lo, in, out, 1, dy[lo*out:], out, l.weight.w, in, 0, l.dx[lo*in:], in)
	})
	return l.dx
}
