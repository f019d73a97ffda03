package nn

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"time"
)

// Recipe is a training configuration. Zero fields take the DefaultRecipe values only through
// DefaultRecipe; Train and NewTrainer use the recipe as given.
type Recipe struct {
	Epochs      int     `json:"epochs"`
	Batch       int     `json:"batch"`
	LR          float64 `json:"lr"`
	Optimizer   string  `json:"optimizer"` // SGD or Adam
	Momentum    float64 `json:"momentum"`  // SGD
	Nesterov    bool    `json:"nesterov"`  // SGD
	WeightDecay float64 `json:"weight_decay"`
	Beta1       float64 `json:"beta1"` // Adam
	Beta2       float64 `json:"beta2"` // Adam
	Eps         float64 `json:"eps"`   // Adam
	Schedule    string  `json:"schedule"`
	Milestones  []int   `json:"milestones,omitempty"` // Step: epochs at which the rate is multiplied by Gamma
	Gamma       float64 `json:"gamma,omitempty"`
	Seed        uint64  `json:"seed"`     // shuffling and augmentation
	CropPad     int     `json:"crop_pad"` // random crop from the image padded by this many zero pixels; 0 = off
	Flip        bool    `json:"flip"`     // random horizontal flip
}

// DefaultRecipe is SGD with learning rate 0.01, momentum 0.9, weight decay 5e-4, batch 128,
// constant schedule, no augmentation (the authors' recipe without its step schedule).
func DefaultRecipe(epochs int) Recipe {
	return Recipe{Epochs: epochs, Batch: 128, LR: 0.01, Optimizer: SGD, Momentum: 0.9, WeightDecay: 5e-4,
		Beta1: 0.9, Beta2: 0.999, Eps: 1e-8, Schedule: Constant, Gamma: 0.1}
}

// Progress is reported during training.
type Progress struct {
	Epoch, Epochs  int     // 0-based epoch and total
	Step, Steps    int     // batches done in this epoch and per epoch
	Loss           float64 // mean training loss of the epoch so far
	Accuracy       float64 // training accuracy of the epoch so far
	ExamplesPerSec float64
	LR             float64
}

// EpochStats summarises one training epoch.
type EpochStats struct {
	Epoch          int     `json:"epoch"` // 0-based
	Loss           float64 `json:"loss"`
	Accuracy       float64 `json:"accuracy"`
	LR             float64 `json:"lr"`
	Examples       int     `json:"examples"`
	Seconds        float64 `json:"seconds"`
	ExamplesPerSec float64 `json:"examples_per_sec"`
}

// Trainer trains a model epoch by epoch and can save and restore its own state, so that a run
// can resume after the last completed epoch.
type Trainer struct {
	m     *Model
	r     Recipe
	opt   *optimizer
	epoch int

	x        []float32
	aug, src []uint8
	labels   []int
}

// NewTrainer prepares to train m with recipe r.
func NewTrainer(m *Model, r Recipe) (*Trainer, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	return &Trainer{m: m, r: r, opt: newOptimizer(r, m.state)}, nil
}

// Epoch is the number of completed epochs.
func (t *Trainer) Epoch() int { return t.epoch }

// Done reports whether all the recipe's epochs are complete.
func (t *Trainer) Done() bool { return t.epoch >= t.r.Epochs }

// progressEvery is the interval between progress reports during an epoch.
const progressEvery = 250 * time.Millisecond

// RunEpoch trains one epoch over the images (shuffled with a stream seeded by the recipe's
// seed and the epoch number) and calls progress, when not nil, every quarter second and after
// the last batch. When it fails (ctx cancelled, divergence) the model keeps the weights of the
// last completed batch and Epoch does not advance.
func (t *Trainer) RunEpoch(ctx context.Context, im Images, labels []int, progress func(Progress)) (EpochStats, error) {
	m, r := t.m, t.r
	if err := m.checkImages(im); err != nil {
		return EpochStats{}, err
	}
	if err := checkLabels(labels, im.N, m.cfg.Classes); err != nil {
		return EpochStats{}, err
	}
	if t.Done() {
		return EpochStats{}, fmt.Errorf("nn: training already completed its %d epochs", r.Epochs)
	}
	e := t.epoch
	lr := r.lrAt(e)
	rng := rand.New(rand.NewPCG(r.Seed, uint64(e)))
	order := rng.Perm(im.N)
	sz := im.H * im.W * im.C
	steps := (im.N + r.Batch - 1) / r.Batch
	batch := Images{H: im.H, W: im.W, C: im.C}
	k := m.cfg.Classes
	var lossSum float64
	var correct, seen int
	start := time.Now()
	reported := start
	for s := 0; s < steps; s++ {
		if err := ctx.Err(); err != nil {
			return EpochStats{}, err
		}
		idx := order[s*r.Batch : min((s+1)*r.Batch, im.N)]
		n := len(idx)
		t.src = slices.Grow(t.src[:0], n*sz)[:n*sz]
		t.labels = t.labels[:0]
		for j, i := range idx {
			copy(t.src[j*sz:(j+1)*sz], im.Pix[i*sz:(i+1)*sz])
			t.labels = append(t.labels, labels[i])
		}
		batch.Pix, batch.N = t.src, n
		if r.CropPad > 0 || r.Flip {
			t.aug = slices.Grow(t.aug[:0], n*sz)[:n*sz]
			augment(rng, batch, t.aug, r.CropPad, r.Flip)
			batch.Pix = t.aug
		}
		t.x = m.pre.apply(batch, grow(t.x, n*sz))
		logits, err := m.Forward(t.x, n, true)
		if err != nil {
			return EpochStats{}, err
		}
		m.dlogits = grow(m.dlogits, n*k)
		loss, c := crossEntropy(logits, t.labels, k, m.dlogits)
		if math.IsNaN(loss) || math.IsInf(loss, 0) {
			return EpochStats{}, fmt.Errorf("nn: training diverged at epoch %d batch %d: loss %v (try a lower learning rate)", e+1, s+1, loss)
		}
		m.ZeroGrad()
		m.net.backward(m.dlogits, false)
		t.opt.step(lr)
		lossSum += loss * float64(n)
		correct += c
		seen += n
		if progress != nil && (time.Since(reported) >= progressEvery || s == steps-1) {
			reported = time.Now()
			progress(Progress{Epoch: e, Epochs: r.Epochs, Step: s + 1, Steps: steps, Loss: lossSum / float64(seen),
				Accuracy: float64(correct) / float64(seen), ExamplesPerSec: float64(seen) / time.Since(start).Seconds(), LR: lr})
		}
	}
	t.epoch++
	sec := time.Since(start).Seconds()
	return EpochStats{Epoch: e, Loss: lossSum / float64(seen), Accuracy: float64(correct) / float64(seen), LR: lr,
		Examples: seen, Seconds: sec, ExamplesPerSec: float64(seen) / sec}, nil
}

// Train runs every remaining epoch of recipe r on m and returns the per-epoch statistics.
func Train(ctx context.Context, m *Model, im Images, labels []int, r Recipe, progress func(Progress)) ([]EpochStats, error) {
	t, err := NewTrainer(m, r)
	if err != nil {
		return nil, err
	}
	var stats []EpochStats
	for !t.Done() {
		s, err := t.RunEpoch(ctx, im, labels, progress)
		if err != nil {
			return stats, err
		}
		stats = append(stats, s)
	}
	return stats, nil
}

func checkLabels(labels []int, n, classes int) error {
	if len(labels) != n {
		return fmt.Errorf("nn: %d labels for %d images", len(labels), n)
	}
	for i, y := range labels {
		if y < 0 || y >= classes {
			return fmt.Errorf("nn: label %d of example %d is outside [0, %d)", y, i, classes)
		}
	}
	return nil
}

// EvalBatch is the batch size of Evaluate, Logits, Gradients and Recalibrate.
const EvalBatch = 256

// EvalResult is the outcome of Evaluate.
type EvalResult struct {
	Accuracy float64 // fraction of examples whose largest logit is the label
	Loss     float64 // mean cross-entropy
	Correct  int
	N        int
	Logits   []float32 // [N, classes]
}

// Evaluate runs the model in evaluation mode on the images and reports accuracy, mean
// cross-entropy and the logits.
func Evaluate(ctx context.Context, m *Model, im Images, labels []int) (EvalResult, error) {
	if err := checkLabels(labels, im.N, m.cfg.Classes); err != nil {
		return EvalResult{}, err
	}
	logits, err := m.Logits(ctx, im)
	if err != nil {
		return EvalResult{}, err
	}
	loss, correct := crossEntropy(logits, labels, m.cfg.Classes, nil)
	res := EvalResult{Loss: loss, Correct: correct, N: im.N, Logits: logits}
	if im.N > 0 {
		res.Accuracy = float64(correct) / float64(im.N)
	} else {
		res.Loss = math.NaN()
	}
	return res, nil
}

// Logits runs the model in evaluation mode and returns the logits [N, classes].
func (m *Model) Logits(ctx context.Context, im Images) ([]float32, error) {
	if err := m.checkImages(im); err != nil {
		return nil, err
	}
	k := m.cfg.Classes
	out := make([]float32, im.N*k)
	for lo := 0; lo < im.N; lo += EvalBatch {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hi := min(lo+EvalBatch, im.N)
		b := im.Slice(lo, hi)
		m.input = m.pre.apply(b, grow(m.input, len(b.Pix)))
		logits := m.infer(m.input, b.N)
		copy(out[lo*k:hi*k], logits)
	}
	return out, nil
}

// Gradients returns the mean cross-entropy of the model on the images (evaluation mode: running
// batch-norm statistics, no dropout) and its gradient with respect to every trainable
// parameter, in state_dict order. It overwrites the model's accumulated gradients.
func Gradients(ctx context.Context, m *Model, im Images, labels []int) (float64, []Tensor, error) {
	if err := m.checkImages(im); err != nil {
		return 0, nil, err
	}
	if err := checkLabels(labels, im.N, m.cfg.Classes); err != nil {
		return 0, nil, err
	}
	if im.N == 0 {
		return 0, nil, fmt.Errorf("nn: gradients of an empty batch")
	}
	m.ZeroGrad()
	k := m.cfg.Classes
	var total float64
	for lo := 0; lo < im.N; lo += EvalBatch {
		if err := ctx.Err(); err != nil {
			return 0, nil, err
		}
		hi := min(lo+EvalBatch, im.N)
		b := im.Slice(lo, hi)
		m.input = m.pre.apply(b, grow(m.input, len(b.Pix)))
		logits, err := m.Forward(m.input, b.N, false)
		if err != nil {
			return 0, nil, err
		}
		m.dlogits = grow(m.dlogits, b.N*k)
		loss, _ := crossEntropy(logits, labels[lo:hi], k, m.dlogits)
		w := float32(b.N) / float32(im.N) // the chunk's share of the batch mean
		for i := range m.dlogits {
			m.dlogits[i] *= w
		}
		m.net.backward(m.dlogits, false)
		total += loss * float64(b.N)
	}
	grads := m.Grads()
	for i := range grads {
		grads[i].Data = slices.Clone(grads[i].Data)
	}
	return total / float64(im.N), grads, nil
}

// Recalibrate re-estimates every batch-norm layer's running statistics on the images: it resets
// them (mean 0, variance 1, count 0) and runs one pass in training mode in batches of EvalBatch
// with momentum b/(n+b) for a batch of b after n examples, so that the running mean and variance
// are the exact example-weighted means of the batch statistics. Parameters do not change.
func Recalibrate(ctx context.Context, m *Model, im Images) error {
	if !m.HasBatchNorm() {
		return fmt.Errorf("nn: %s has no batch-norm layers to recalibrate", m.arch)
	}
	if err := m.checkImages(im); err != nil {
		return err
	}
	if im.N < 2 {
		return fmt.Errorf("nn: recalibration needs at least 2 images, got %d", im.N)
	}
	saved := make([][]float32, len(m.bns))
	for i, b := range m.bns {
		saved[i] = slices.Concat(b.runMean.w, b.runVar.w, b.nbt.w)
		b.reset()
		b.exact = true
	}
	defer func() {
		for _, b := range m.bns {
			b.exact = false
		}
	}()
	for lo := 0; lo < im.N; {
		hi := min(lo+EvalBatch, im.N)
		if im.N-hi == 1 { // no batch of a single example, which has no variance
			hi--
		}
		err := ctx.Err()
		if err == nil {
			b := im.Slice(lo, hi)
			m.input = m.pre.apply(b, grow(m.input, len(b.Pix)))
			_, err = m.Forward(m.input, b.N, true)
		}
		if err != nil {
			for i, b := range m.bns { // leave the model as it was
				c := len(b.runMean.w)
				copy(b.runMean.w, saved[i][:c])
				copy(b.runVar.w, saved[i][c:2*c])
				b.nbt.w[0] = saved[i][2*c]
			}
			return err
		}
		lo = hi
	}
	return nil
}

// RecalibrateBlend re-estimates the running statistics as Recalibrate does, then keeps the share
// alpha of the new ones and 1 − alpha of the old (METHODS.md: re-estimate on corrupted inputs
// and blend with α). alpha is in [0, 1], so variances stay positive: 1 is Recalibrate, 0 leaves
// the statistics as they were.
func RecalibrateBlend(ctx context.Context, m *Model, im Images, alpha float64) error {
	if !(alpha >= 0 && alpha <= 1) {
		return fmt.Errorf("nn: blend %v is outside [0, 1]", alpha)
	}
	old := make([][]float32, len(m.bns))
	for i, b := range m.bns {
		old[i] = slices.Concat(b.runMean.w, b.runVar.w)
	}
	if err := Recalibrate(ctx, m, im); err != nil {
		return err
	}
	a := float32(alpha)
	for i, b := range m.bns {
		c := len(b.runMean.w)
		for k := range c {
			b.runMean.w[k] = (1-a)*old[i][k] + a*b.runMean.w[k]
			b.runVar.w[k] = (1-a)*old[i][c+k] + a*b.runVar.w[k]
		}
	}
	return nil
}
