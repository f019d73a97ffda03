package experiment

import (
	"context"
	"fmt"
	"math/rand/v2"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/dataset"
	"github.com/rws-project/rws/internal/nn"
)

// set is a labelled image set ready for the engine.
type set struct {
	name   string
	im     nn.Images
	labels []int
}

func toSet(name string, s *dataset.Set) set {
	return set{name: name, im: nn.Images{Pix: s.Images, N: s.N, H: s.H, W: s.W, C: s.C}, labels: s.Labels}
}

// head returns the first n examples of s (all when n ≥ its size).
func (s set) head(n int) set {
	if n >= s.im.N {
		return s
	}
	return set{name: s.name, im: s.im.Slice(0, n), labels: s.labels[:n]}
}

// splits are the parts of one dataset a study uses.
type splits struct {
	spec         string
	train, test  *dataset.Set
	pretrain     *dataset.Set // clean, for θ0
	finetune     *dataset.Set // clean base images of every fine-tune
	update       *dataset.Set // clean, for the updated backbone
	holdout      *dataset.Set // clean base images of the held-out sets
	testBase     *dataset.Set // clean test images
	seed         uint64
	finetuneC    map[string]*dataset.Set
	holdoutC     map[string]*dataset.Set
	testC        map[string]*dataset.Set
	indexSummary string // how the subsets were drawn, for cache keys
}

// cleanTest returns the first n images of the test permutation: the clean test images and,
// when n is larger, the ones after them.
func (sp *splits) cleanTest(n int) (*dataset.Set, error) {
	if n > sp.test.N {
		return nil, fmt.Errorf("experiment: dataset %q: [data] clean_test = %d but the test split has %d images", sp.spec, n, sp.test.N)
	}
	return sp.test.Subset(perm(sp.seed, sp.spec+"/test", sp.test.N)[:n])
}

// perm returns a permutation of n drawn from the study seed and a label.
func perm(seed uint64, label string, n int) []int {
	var h uint64 = 14695981039346656037
	for _, b := range []byte(label) {
		h = (h ^ uint64(b)) * 1099511628211
	}
	return rand.New(rand.NewPCG(seed, h)).Perm(n)
}

// loadSplits opens spec and draws the subsets: pretrain, finetune, update and holdout images
// from disjoint parts of a permutation of the training split (pretrain may be 0), and the first
// test images of a permutation of the test split.
func loadSplits(spec string, seed uint64, pre, ft, up, ho, test int) (*splits, error) {
	train, err := dataset.Open(spec, dataset.Train)
	if err != nil {
		return nil, err
	}
	te, err := dataset.Open(spec, dataset.Test)
	if err != nil {
		return nil, err
	}
	if train.Labels == nil || te.Labels == nil {
		return nil, fmt.Errorf("experiment: dataset %q has no labels", spec)
	}
	if need := pre + ft + up + ho; need > train.N {
		return nil, fmt.Errorf("experiment: dataset %q: the study needs %d training images (pretrain %d + finetune %d + update %d + holdout %d) but the training split has %d; lower [data]",
			spec, need, pre, ft, up, ho, train.N)
	}
	if test > te.N {
		return nil, fmt.Errorf("experiment: dataset %q: [data] test = %d but the test split has %d images", spec, test, te.N)
	}
	p := perm(seed, spec+"/train", train.N)
	sp := &splits{spec: spec, train: train, test: te, seed: seed}
	take := func(lo, n int) (*dataset.Set, error) { return train.Subset(p[lo : lo+n]) }
	if sp.pretrain, err = take(0, pre); err != nil {
		return nil, err
	}
	if sp.finetune, err = take(pre, ft); err != nil {
		return nil, err
	}
	if sp.update, err = take(pre+ft, up); err != nil {
		return nil, err
	}
	if sp.holdout, err = take(pre+ft+up, ho); err != nil {
		return nil, err
	}
	if sp.testBase, err = te.Subset(perm(seed, spec+"/test", te.N)[:test]); err != nil {
		return nil, err
	}
	sp.indexSummary = fmt.Sprintf("%s seed %d: train permutation [0,%d) pretrain, [%d,%d) finetune, [%d,%d) update, [%d,%d) holdout; test permutation [0,%d)",
		spec, seed, pre, pre, pre+ft, pre+ft, pre+ft+up, pre+ft+up, pre+ft+up+ho, test)
	return sp, nil
}

// corruptAll makes the corrupted finetune, holdout and test sets of every corruption.
func (sp *splits) corruptAll(ctx context.Context, suite *corrupt.Suite, cfg *Config, names []string, progress func(done, total int)) error {
	sp.finetuneC, sp.holdoutC, sp.testC = map[string]*dataset.Set{}, map[string]*dataset.Set{}, map[string]*dataset.Set{}
	total := len(names) * (sp.finetune.N + sp.holdout.N + sp.testBase.N)
	done := 0
	for _, name := range names {
		sev := cfg.severity(suite, name)
		for _, part := range []struct {
			src *dataset.Set
			dst map[string]*dataset.Set
		}{{sp.finetune, sp.finetuneC}, {sp.holdout, sp.holdoutC}, {sp.testBase, sp.testC}} {
			base := done
			out, err := dataset.Corrupt(ctx, part.src, suite, name, sev, dataset.CorruptOptions{Seed: cfg.Data.CorruptSeed,
				Progress: func(d int) {
					if progress != nil {
						progress(base+d, total)
					}
				}})
			if err != nil {
				return fmt.Errorf("experiment: corrupting %s with %s: %w", sp.spec, name, err)
			}
			part.dst[name] = out
			done += part.src.N
		}
	}
	return nil
}

// mixed returns the finetune base images with image i corrupted by corruption i mod len(names):
// the training set of the model fine-tuned on all corruptions together.
func (sp *splits) mixed(names []string) *dataset.Set {
	out := *sp.finetune
	out.Name = sp.finetune.Name + "|all corruptions"
	out.Images = make([]byte, len(sp.finetune.Images))
	sz := sp.finetune.ImageSize()
	for i := 0; i < out.N; i++ {
		src := sp.finetuneC[names[i%len(names)]]
		copy(out.Images[i*sz:(i+1)*sz], src.Image(i))
	}
	return &out
}
