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
					for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
						s += float64(v)
					}
				}
				mean = s / m
				var ss float64
				for i := 0; i < n; i++ {
					for _, v := range x[(i*c+ch)*hw : (i*c+ch+1)*hw] {
						d := float64(v) - mean
						ss += d * d
					}
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
				xs := x[(i*c+ch)*hw : (i*c+ch+1)*hw]
				for j, d := range dy[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					sdy += float64(d)
					sdyx += float64(d) * float64((xs[j]-mean)*invstd)
				}
			}
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
