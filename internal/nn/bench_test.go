package nn

import (
	"context"
	"math/rand/v2"
	"testing"
)

func randomImages(n, h, w, c int, seed uint64) (Images, []int) {
	r := rand.New(rand.NewPCG(seed, 1))
	im := Images{Pix: make([]uint8, n*h*w*c), N: n, H: h, W: w, C: c}
	for i := range im.Pix {
		im.Pix[i] = uint8(r.IntN(256))
	}
	labels := make([]int, n)
	for i := range labels {
		labels[i] = r.IntN(10)
	}
	return im, labels
}

// BenchmarkTrainStep measures one SGD step of cnn on a batch of 128 28×28 grey images; the
// examples/s metric compares with scripts/torch_bench.py.
func BenchmarkTrainStep(b *testing.B) {
	benchTrain(b, "cnn", Config{1, 28, 28, 10}, 128)
}

func BenchmarkTrainStepResNet20(b *testing.B) {
	benchTrain(b, "resnet20", Config{3, 32, 32, 10}, 128)
}

func benchTrain(b *testing.B, arch string, cfg Config, batch int) {
	m, err := New(arch, cfg, 1)
	if err != nil {
		b.Fatal(err)
	}
	im, labels := randomImages(batch, cfg.Height, cfg.Width, cfg.InChannels, 2)
	r := DefaultRecipe(1 << 30)
	tr, err := NewTrainer(m, r)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := tr.RunEpoch(ctx, im, labels, nil); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu0 := cpuNanos()
	for b.Loop() {
		if _, err := tr.RunEpoch(ctx, im, labels, nil); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
	b.ReportMetric(float64(batch)*float64(b.N)/b.Elapsed().Seconds(), "examples/s")
}

// BenchmarkInfer measures Logits (preprocessing and evaluation-mode forward pass) of cnn on
// batches of 128 28×28 grey images; the examples/s metric compares with scripts/torch_bench.py.
func BenchmarkInfer(b *testing.B) {
	m, err := New("cnn", Config{1, 28, 28, 10}, 1)
	if err != nil {
		b.Fatal(err)
	}
	im, _ := randomImages(128, 28, 28, 1, 2)
	ctx := context.Background()
	cpu0 := cpuNanos()
	for b.Loop() {
		if _, err := m.Logits(ctx, im); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
	b.ReportMetric(float64(im.N)*float64(b.N)/b.Elapsed().Seconds(), "examples/s")
}

// reportCPU reports the process's CPU time per op since cpu0 (cpu-ns/op), which a loaded
// machine disturbs less than wall time, where the system tells it.
func reportCPU(b *testing.B, cpu0 int64) {
	if cpu0 >= 0 {
		b.ReportMetric(float64(cpuNanos()-cpu0)/float64(b.N), "cpu-ns/op")
	}
}

// BenchmarkUnfold compares the whole-plane unfolding of "same" convolutions with the general
// row-by-row one, for cnn's second convolution (32×28×28, 3×3, padding 1).
func BenchmarkUnfold(b *testing.B) {
	c, err := newConv("c", shape{32, 28, 28}, 32, 3, 1, 1, true)
	if err != nil {
		b.Fatal(err)
	}
	x := make([]float32, c.in.size())
	for i := range x {
		x[i] = float32(i%7) - 3
	}
	col := make([]float32, 32*9*28*28)
	defer func() { genericUnfold = false }()
	for _, generic := range []bool{false, true} {
		genericUnfold = generic
		name := "same"
		if generic {
			name = "generic"
		}
		b.Run("im2col/"+name, func(b *testing.B) {
			for b.Loop() {
				c.im2col(x, col, 28*28)
			}
		})
		b.Run("col2im/"+name, func(b *testing.B) {
			for b.Loop() {
				c.col2im(col, x, 28*28)
			}
		})
	}
}

// BenchmarkLayers times the forward and backward passes of single layers on a batch of 128.
func BenchmarkLayers(b *testing.B) {
	const n = 128
	convPool := func() layer {
		c, _ := newConv("c", shape{32, 28, 28}, 32, 3, 1, 1, true)
		c.fuse(newMaxPool(c.co, 2, 2, false))
		return c
	}
	conv8 := func() layer {
		c, _ := newConv("c", shape{64, 8, 8}, 64, 3, 1, 1, false)
		return c
	}
	for _, tc := range []struct {
		name string
		l    layer
		in   shape
	}{
		{"conv3x3+relu+pool/32x28x28", convPool(), shape{32, 28, 28}},
		{"conv3x3/64x8x8", conv8(), shape{64, 8, 8}},
		{"batchnorm/16x32x32", newBatchNorm("bn", shape{16, 32, 32}), shape{16, 32, 32}},
		{"maxpool/32x28x28", newMaxPool(shape{32, 28, 28}, 2, 2, false), shape{32, 28, 28}},
		{"linear/3136x128", newLinear("l", shape{64, 7, 7}, 128), shape{64, 7, 7}},
	} {
		x := hashUniform(tc.name, n*tc.in.size())
		dy := hashUniform(tc.name+".dy", n*tc.l.out().size())
		d := make([]float32, len(dy))
		b.Run(tc.name+"/forward", func(b *testing.B) {
			for b.Loop() {
				tc.l.forward(x, n, true)
			}
		})
		b.Run(tc.name+"/backward", func(b *testing.B) {
			tc.l.forward(x, n, true)
			for b.Loop() {
				copy(d, dy)
				tc.l.backward(d, true)
			}
		})
	}
}
