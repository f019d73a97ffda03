package nn

import (
	"fmt"
	"math"
)

// Optimizer names accepted in Recipe.Optimizer.
const (
	SGD  = "sgd"
	Adam = "adam"
)

// Schedule names accepted in Recipe.Schedule.
const (
	Constant = "constant" // the base learning rate throughout
	Step     = "step"     // ×Gamma at each epoch in Milestones (torch MultiStepLR)
	Cosine   = "cosine"   // cosine annealing from LR to 0 over Epochs (torch CosineAnnealingLR)
)

// lrAt is the learning rate of epoch e (0-based) under the recipe's schedule, as PyTorch's
// schedulers give it when stepped once per epoch.
func (r Recipe) lrAt(e int) float64 {
	switch r.Schedule {
	case Step:
		lr := r.LR
		for _, m := range r.Milestones {
			if e >= m {
				lr *= r.Gamma
			}
		}
		return lr
	case Cosine:
		return r.LR * (1 + math.Cos(math.Pi*float64(e)/float64(r.Epochs))) / 2
	default:
		return r.LR
	}
}

// optimizer holds per-parameter state of SGD (momentum buffers) or Adam (moments). It follows
// torch.optim exactly, weight decay included as an L2 term added to the gradient.
type optimizer struct {
	r     Recipe
	ps    []*param
	buf   [][]float32 // SGD momentum buffer, Adam first moment
	buf2  [][]float32 // Adam second moment
	steps int
}

func newOptimizer(r Recipe, ps []*param) *optimizer {
	o := &optimizer{r: r}
	for _, p := range ps {
		if p.kind == kindParam {
			o.ps = append(o.ps, p)
			o.buf = append(o.buf, make([]float32, len(p.w)))
			if r.Optimizer == Adam {
				o.buf2 = append(o.buf2, make([]float32, len(p.w)))
			}
		}
	}
	return o
}

func (o *optimizer) step(lr float64) {
	o.steps++
	r := o.r
	wd, mom := float32(r.WeightDecay), float32(r.Momentum)
	first := o.steps == 1
	b1, b2 := r.Beta1, r.Beta2
	bc1 := 1 - math.Pow(b1, float64(o.steps))
	bc2 := 1 - math.Pow(b2, float64(o.steps))
	for k, p := range o.ps {
		w, g, m := p.w, p.g, o.buf[k]
		switch r.Optimizer {
		case Adam:
			v := o.buf2[k]
			stepSize := float32(lr / bc1)
			sq := float32(math.Sqrt(bc2))
			eps := float32(r.Eps)
			f1, f2 := float32(b1), float32(b2)
			parallel(len(w), minElems, func(_, lo, hi int) {
				for i := lo; i < hi; i++ {
					gi := g[i] + wd*w[i]
					m[i] = f1*m[i] + (1-f1)*gi
					v[i] = f2*v[i] + (1-f2)*gi*gi
					w[i] -= stepSize * m[i] / (float32(math.Sqrt(float64(v[i])))/sq + eps)
				}
			})
		default:
			flr := float32(lr)
			parallel(len(w), minElems, func(_, lo, hi int) {
				for i := lo; i < hi; i++ {
					gi := g[i] + wd*w[i]
					if mom != 0 {
						if first {
							m[i] = gi
						} else {
							m[i] = mom*m[i] + gi
						}
						if r.Nesterov {
							gi += mom * m[i]
						} else {
							gi = m[i]
						}
					}
					w[i] -= flr * gi
				}
			})
		}
	}
}

func (r Recipe) validate() error {
	switch {
	case r.Epochs < 1:
		return fmt.Errorf("nn: recipe: epochs %d must be at least 1", r.Epochs)
	case r.Batch < 1:
		return fmt.Errorf("nn: recipe: batch %d must be at least 1", r.Batch)
	case !(r.LR > 0) || math.IsInf(r.LR, 0):
		return fmt.Errorf("nn: recipe: learning rate %v must be positive", r.LR)
	case r.WeightDecay < 0 || r.Momentum < 0 || r.Momentum >= 1:
		return fmt.Errorf("nn: recipe: weight decay %v and momentum %v must be ≥ 0 (momentum < 1)", r.WeightDecay, r.Momentum)
	case r.Nesterov && r.Momentum == 0:
		return fmt.Errorf("nn: recipe: Nesterov momentum needs momentum > 0")
	case r.Optimizer != SGD && r.Optimizer != Adam:
		return fmt.Errorf("nn: recipe: optimizer %q is not %q or %q", r.Optimizer, SGD, Adam)
	case r.Schedule != Constant && r.Schedule != Step && r.Schedule != Cosine:
		return fmt.Errorf("nn: recipe: schedule %q is not %q, %q or %q", r.Schedule, Constant, Step, Cosine)
	case r.Optimizer == Adam && (r.Beta1 < 0 || r.Beta1 >= 1 || r.Beta2 < 0 || r.Beta2 >= 1 || !(r.Eps > 0)):
		return fmt.Errorf("nn: recipe: Adam betas %v, %v must be in [0, 1) and eps %v positive", r.Beta1, r.Beta2, r.Eps)
	case r.CropPad < 0:
		return fmt.Errorf("nn: recipe: crop padding %d must be ≥ 0", r.CropPad)
	}
	return nil
}
