package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/rws-project/rws/dataset"
	"github.com/rws-project/rws/internal/nn"
)

func init() {
	register(&command{
		name:    "recalibrate",
		summary: "re-estimate a model's batch-norm running statistics on (corrupted) data",
		usage: `rws recalibrate MODEL --dataset SPEC [--split train] [--limit N]
       [--corrupt NAME[@SEV]|all|mix] [--suite SUITE] [--seed N] [--blend α] -o OUT [--force] [--json]

Resets every batch-norm layer's running mean and variance and re-estimates them in one pass in
training mode over the images, with momentum b/(n+b) for a batch of b after n images, so they
are the exact example-weighted means of the batch statistics. Weights do not change. --corrupt
corrupts the calibration images first (see rws train). --blend α (0 to 1, default 1) keeps α of
the re-estimated statistics and 1 − α of the model's own, e.g. the α a signature was patched in
with. --json prints {"model", "output", "dataset", "split", "images", "corrupt", "blend",
"batch_norm_layers"}.`,
		run: runRecalibrate,
	})
}

type recalibrateOptions struct {
	model, spec, split string
	limit              int
	corrupt, suite     string
	seed               uint64
	blend              float64
	out                string
	force, json        bool
}

type recalibrateResult struct {
	Model   string  `json:"model"`
	Output  string  `json:"output"`
	Dataset string  `json:"dataset"`
	Split   string  `json:"split"`
	Images  int     `json:"images"`
	Corrupt string  `json:"corrupt,omitempty"`
	Blend   float64 `json:"blend"`
	Layers  int     `json:"batch_norm_layers"`
}

func runRecalibrate(ctx context.Context, a *app, args []string) error {
	c := commands["recalibrate"]
	fs := a.flagSet(c)
	var o recalibrateOptions
	fs.StringVar(&o.spec, "dataset", "", "calibration dataset `SPEC`")
	fs.StringVar(&o.split, "split", "train", "dataset split: train or test")
	fs.IntVar(&o.limit, "limit", 0, "use the first `N` images (0: all)")
	fs.StringVar(&o.corrupt, "corrupt", "", "corrupt the images first: `NAME[@SEV]`, all[@SEV] or mix[@SEV]")
	fs.StringVar(&o.suite, "suite", "", "corruption suite (default: mnist-c for 1 channel, cifar10-c otherwise)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the corruptions")
	fs.Float64Var(&o.blend, "blend", 1, "keep `α` of the re-estimated statistics and 1 − α of the model's (0 to 1)")
	fs.StringVar(&o.out, "o", "", "output checkpoint `FILE`")
	fs.BoolVar(&o.force, "force", false, "replace an existing output")
	fs.BoolVar(&o.json, "json", false, "print a JSON summary")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("recalibrate: want one MODEL argument, got %d", len(pos))
	}
	o.model = pos[0]
	switch {
	case o.spec == "":
		return usagef("recalibrate: no --dataset given")
	case !(o.blend >= 0 && o.blend <= 1):
		return usagef("recalibrate: --blend %v is outside 0 to 1", o.blend)
	case o.limit < 0:
		return usagef("recalibrate: --limit %d is negative", o.limit)
	}
	split, err := dataset.ParseSplit(o.split)
	if err != nil {
		return usagef("recalibrate: %v", err)
	}
	if err := checkOutput(o.out, o.force, o.model); err != nil {
		return err
	}
	cf, err := parseCorruptFlag(o.corrupt)
	if err != nil {
		return err
	}
	if err := recoverModel(a, o.model); err != nil {
		return err
	}
	m, err := nn.LoadCheckpoint(o.model)
	if err != nil {
		return err
	}
	if !m.HasBatchNorm() {
		return withHint(fmt.Errorf("recalibrate: %s (%s) has no batch-norm layers", o.model, m.Arch()),
			"only models with batch norm, such as resnet20, have running statistics")
	}
	set, err := dataset.Open(o.spec, split)
	if err != nil {
		return withHint(err, "--dataset takes a spec such as mnist, fashion-mnist or cifar10:DIR")
	}
	set = set.Limit(o.limit)
	if cf.mode != "" {
		suite, err := suiteFor(o.suite, set)
		if err != nil {
			return err
		}
		update, done := a.progress()
		set, err = applyCorrupt(ctx, set, suite, cf, o.seed, func(s string) { update("corrupting: %s", s) })
		done()
		if err != nil {
			return err
		}
	}
	if err := nn.RecalibrateBlend(ctx, m, nn.Images{Pix: set.Images, N: set.N, H: set.H, W: set.W, C: set.C}, o.blend); err != nil {
		return err
	}
	if err := m.Save(o.out, o.force); err != nil {
		return err
	}
	layers := 0
	for _, n := range m.Names() {
		if strings.HasSuffix(n, ".running_mean") {
			layers++
		}
	}
	res := recalibrateResult{Model: o.model, Output: o.out, Dataset: o.spec, Split: string(split), Images: set.N,
		Corrupt: o.corrupt, Blend: o.blend, Layers: layers}
	if o.json {
		return a.json(res)
	}
	if o.blend != 1 {
		a.printf("wrote %s: %d batch-norm layers re-estimated on %d images, blended at %g\n", o.out, layers, set.N, o.blend)
		return nil
	}
	a.printf("wrote %s: %d batch-norm layers re-estimated on %d images\n", o.out, layers, set.N)
	return nil
}
