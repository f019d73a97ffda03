package nn

import "math"

// batchNorm is torch.nn.BatchNorm2d(c, eps=1e-5, momentum=0.1, affine, track_running_stats).
// In training it normalises with the batch statistics (biased variance) and updates the running
// mean and the running unbiased variance; in evaluation it uses the running statistics.
type batchNorm struct {
	name                 string
	sh                   shape
	eps, momentum        float64
	weight, bias         *param
	runMean, runVar, nbt *param
	exact                bool // recalibration: momentum b/(seen+b), an exact running mean
	seen                 int  // examples seen while exact

	x, y, dx    []float32
	n           int
	mean, scale []float32 // per channel: the mean and 1/sqrt(var+eps) of the last forward
	training    bool
}

func newBatchNorm(name string, in shape) *batchNorm {
	b := &batchNorm{
		name: name, sh: in, eps: 1e-5, momentum: 0.1,
		weight:  newParam(name+".weight", kindParam, in.c),
		bias:    newParam(name+".bias", kindParam, in.c),
		runMean: newParam(name+".running_mean", kindBuffer, in.c),
		runVar:  newParam(name+".running_var", kindBuffer, in.c),
		nbt:     newParam(name+".num_batches_tracked", kindCounter),
		mean:    make([]float32, in.c),
		scale:   make([]float32, in.c),
	}
	b.reset()
	for i := range b.weight.w {
		b.weight.w[i] = 1
	}
	return b
}

// reset sets the running statistics to PyTorch's initial values (mean 0, variance 1, count 0).
func (b *batchNorm) reset() {
	clear(b.runMean.w)
	for i := range b.runVar.w {
		b.runVar.w[i] = 1
	}
	b.nbt.w[0] = 0
	b.seen = 0
}

func (b *batchNorm) out() shape        { return b.sh }
func (b *batchNorm) modules() []string { return []string{b.name} }
func (b *batchNorm) state() []*param {
	return []*param{b.weight, b.bias, b.runMean, b.runVar, b.nbt}
}

func (b *batchNorm) forward(x []float32, n int, train bool) []float32 {
	b.x, b.n, b.training = x, n, train
	c, hw := b.sh.c, b.sh.h*b.sh.w
	b.y = grow(b.y, n*c*hw)
	m := float64(n * hw)
	mom := b.momentum
	if b.exact {
		mom = float64(n) / float64(b.seen+n)
	}
	parallel(c, 1, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			var mean, invstd float64
			if train {
				var s float64
				for i := 0; i < n; i++ {
					s += sum64(x[(i*c+ch)*hw : (i*c+ch+1)*hw])
				}
				mean = s / m
				var ss float64
				for i := 0; i < n; i++ {
					ss += dotCentered(x[(i*c+ch)*hw:(i*c+ch+1)*hw], x[(i*c+ch)*hw:(i*c+ch+1)*hw], float32(mean), float32(mean))
				}
				v := ss / m
				invstd = 1 / math.Sqrt(v+b.eps)
				unbiased := v
				if m > 1 {
					unbiased = ss / (m - 1)
				}
				b.runMean.w[ch] = float32((1-mom)*float64(b.runMean.w[ch]) + mom*mean)
				b.runVar.w[ch] = float32((1-mom)*float64(b.runVar.w[ch]) + mom*unbiased)
			} else {
				mean = float64(b.runMean.w[ch])
				invstd = 1 / math.Sqrt(float64(b.runVar.w[ch])+b.eps)
			}
			b.mean[ch], b.scale[ch] = float32(mean), float32(invstd)
			g := float32(float64(b.weight.w[ch]) * invstd)
			sh := b.bias.w[ch] - float32(mean)*g
			for i := 0; i < n; i++ {
				src := x[(i*c+ch)*hw : (i*c+ch+1)*hw]
				dst := b.y[(i*c+ch)*hw : (i*c+ch+1)*hw]
				for j, v := range src {
					dst[j] = v*g + sh
				}
			}
		}
	})
	if train {
		b.nbt.w[0]++
		b.seen += n
	}
	return b.y
}

// backward does not modify dy (residual blocks pass the same gradient to two branches).
func (b *batchNorm) backward(dy []float32, needDx bool) []float32 {
	n, x := b.n, b.x
	c, hw := b.sh.c, b.sh.h*b.sh.w
	m := float64(n * hw)
	if needDx {
		b.dx = grow(b.dx, n*c*hw)
	}
	parallel(c, 1, func(_, lo, hi int) {
		for ch := lo; ch < hi; ch++ {
			mean, invstd := b.mean[ch], b.scale[ch]
			var sdy, sdyx float64
			for i := 0; i < n; i++ {
				d := dy[(i*c+ch)*hw : (i*c+ch+1)*hw]
				sdy += sum64(d)
				sdyx += dotCentered(d, x[(i*c+ch)*hw:(i*c+ch+1)*hw], 0, mean)
			}
			sdyx *= float64(invstd)
			b.weight.g[ch] += float32(sdyx)
			b.bias.g[ch] += float32(sdy)
			if !needDx {
				continue
			}
			g := b.weight.w[ch] * invstd
			if !b.training {
				for i := 0; i < n; i++ {
					src := dy[(i*c+ch)*hw : (i*c+ch+1)*hw]
					dst := b.dx[(i*c+ch)*hw : (i*c+ch+1)*hw]
					for j, d := range src {
						dst[j] = d * g
					}
				}
				continue
			}
			a1 := float32(sdy / m)
			a2 := float32(sdyx / m)
			for i := 0; i < n; i++ {
				xs := x[(i*c+ch)*hw : (i*c+ch+1)*hw]
				src := dy[(i*c+ch)*hw : (i*c+ch+1)*hw]
				dst := b.dx[(i*c+ch)*hw : (i*c+ch+1)*hw]
				for j, d := range src {
					xh := (xs[j] - mean) * invstd
					dst[j] = g * (d - a1 - xh*a2)
				}
			}
		}
	})
	if needDx {
		return b.dx
	}
	return nil
}

// sum64 is Σ s[i] in float64, with independent partial sums so that the additions overlap.
func sum64(s []float32) float64 {
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(s); i += 4 {
		v := s[i : i+4 : i+4]
		a0 += float64(v[0])
		a1 += float64(v[1])
		a2 += float64(v[2])
		a3 += float64(v[3])
	}
	for ; i < len(s); i++ {
		a0 += float64(s[i])
	}
	return (a0 + a1) + (a2 + a3)
}

// dotCentered is Σ (a[i] − ca)·(b[i] − cb) in float64 (len(b) ≥ len(a)), with independent
// partial sums.
func dotCentered(a, b []float32, ca, cb float32) float64 {
	b = b[:len(a)]
	fa, fb := float64(ca), float64(cb)
	var a0, a1, a2, a3 float64
	i := 0
	for ; i+4 <= len(a); i += 4 {
		x, y := a[i:i+4:i+4], b[i:i+4:i+4]
		a0 += (float64(x[0]) - fa) * (float64(y[0]) - fb)
		a1 += (float64(x[1]) - fa) * (float64(y[1]) - fb)
		a2 += (float64(x[2]) - fa) * (float64(y[2]) - fb)
		a3 += (float64(x[3]) - fa) * (float64(y[3]) - fb)
	}
	for ; i < len(a); i++ {
		a0 += (float64(a[i]) - fa) * (float64(b[i]) - fb)
	}
	return (a0 + a1) + (a2 + a3)
}
