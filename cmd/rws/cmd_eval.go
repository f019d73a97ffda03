package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/dataset"
	"github.com/rws-project/rws/internal/nn"
)

func init() {
	register(&command{
		name:    "eval",
		summary: "accuracy of a model on clean and corrupted test data, and its corruption error",
		usage: `rws eval MODEL --dataset SPEC [--split test] [--limit N]
       [--suite SUITE] [--corruption NAME[,NAME…]|all] [--severity 1..5[,…]|all]
       [--reference REF.safetensors] [--seed N] [--json]

Evaluates MODEL (a checkpoint written by rws train, or any safetensors file with rws metadata)
on the --split of --dataset, clean and, when --suite or --corruption is given, under each
corruption × severity, generated on the fly with --seed (mnist-c for 1-channel images and
cifar10-c otherwise, unless --suite says). With --reference, the corruption error of each
corruption is CE = Σ_s err(MODEL) / Σ_s err(REF) and mCE its mean (Hendrycks & Dietterich), and
relative mCE uses the errors minus the clean error.

--json prints {"model", "dataset", "split", "images", "clean_accuracy", "clean_loss", "suite",
"corruptions": {NAME: {SEVERITY: accuracy}}, "mean_corrupted_accuracy", "reference": {…},
"corruption_errors": {NAME: CE}, "mce", "relative_mce"}.`,
		run: runEval,
	})
}

type evalOptions struct {
	model, spec, split  string
	limit               int
	suite, corruption   string
	severity, reference string
	seed                uint64
	json                bool
}

// evalResult is the --json output of rws eval.
type evalResult struct {
	Model               string                        `json:"model"`
	Dataset             string                        `json:"dataset"`
	Split               string                        `json:"split"`
	Images              int                           `json:"images"`
	CleanAccuracy       float64                       `json:"clean_accuracy"`
	CleanLoss           float64                       `json:"clean_loss"`
	Suite               string                        `json:"suite,omitempty"`
	Corruptions         map[string]map[string]float64 `json:"corruptions"`
	MeanCorruptAccuracy *float64                      `json:"mean_corrupted_accuracy,omitempty"`
	Reference           *evalResult                   `json:"reference,omitempty"`
	CorruptionErrors    map[string]float64            `json:"corruption_errors,omitempty"`
	MCE                 *float64                      `json:"mce,omitempty"`
	RelativeMCE         *float64                      `json:"relative_mce,omitempty"`
}

func runEval(ctx context.Context, a *app, args []string) error {
	c := commands["eval"]
	fs := a.flagSet(c)
	var o evalOptions
	fs.StringVar(&o.spec, "dataset", "", "dataset `SPEC`, e.g. mnist or cifar10:DIR")
	fs.StringVar(&o.split, "split", "test", "dataset split: train or test")
	fs.IntVar(&o.limit, "limit", 0, "evaluate the first `N` images (0: all)")
	fs.StringVar(&o.suite, "suite", "", "corruption suite: "+strings.Join(corrupt.SuiteNames(), ", "))
	fs.StringVar(&o.corruption, "corruption", "", "corruption `NAME`s, comma-separated, or all (default all with --suite)")
	fs.StringVar(&o.severity, "severity", "all", "severities: 1..5, comma-separated, or all")
	fs.StringVar(&o.reference, "reference", "", "reference model `REF` for the corruption error (CE, mCE)")
	fs.Uint64Var(&o.seed, "seed", 0, "seed of the corruptions")
	fs.BoolVar(&o.json, "json", false, "print the result as JSON")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("eval: want one MODEL argument, got %d", len(pos))
	}
	o.model = pos[0]
	return evalRun(ctx, a, o)
}

func evalRun(ctx context.Context, a *app, o evalOptions) error {
	if o.spec == "" {
		return usagef("eval: no --dataset given")
	}
	split, err := dataset.ParseSplit(o.split)
	if err != nil {
		return usagef("eval: %v", err)
	}
	if o.limit < 0 {
		return usagef("eval: --limit %d is negative", o.limit)
	}
	if err := recoverModel(a, o.model); err != nil {
		return err
	}
	m, err := nn.LoadCheckpoint(o.model)
	if err != nil {
		return err
	}
	var ref *nn.Model
	if o.reference != "" {
		if ref, err = nn.LoadCheckpoint(o.reference); err != nil {
			return err
		}
	}
	set, err := dataset.Open(o.spec, split)
	if err != nil {
		return withHint(err, "--dataset takes a spec such as mnist, fashion-mnist or cifar10:DIR")
	}
	set = set.Limit(o.limit)
	if set.Labels == nil {
		return fmt.Errorf("eval: dataset %q has no labels", o.spec)
	}
	// Which corruptions and severities.
	var (
		suite *corrupt.Suite
		plan  []sevPlan
	)
	if o.suite != "" || o.corruption != "" {
		if suite, err = suiteFor(o.suite, set); err != nil {
			return err
		}
		if plan, err = evalPlan(suite, o.corruption, o.severity); err != nil {
			return err
		}
	}
	res := &evalResult{Model: o.model, Dataset: o.spec, Split: string(split), Images: set.N, Corruptions: map[string]map[string]float64{}}
	var refRes *evalResult
	if ref != nil {
		refRes = &evalResult{Model: o.reference, Dataset: o.spec, Split: string(split), Images: set.N, Corruptions: map[string]map[string]float64{}}
	}
	update, done := a.progress()
	defer done()
	evalBoth := func(s *dataset.Set, what string) (acc, loss, refAcc float64, err error) {
		update("evaluating %s", what)
		im := nn.Images{Pix: s.Images, N: s.N, H: s.H, W: s.W, C: s.C}
		r, err := nn.Evaluate(ctx, m, im, s.Labels)
		if err != nil {
			return 0, 0, 0, err
		}
		if ref != nil {
			rr, err := nn.Evaluate(ctx, ref, im, s.Labels)
			if err != nil {
				return 0, 0, 0, err
			}
			refAcc = rr.Accuracy
		}
		return r.Accuracy, r.Loss, refAcc, nil
	}
	acc, loss, refAcc, err := evalBoth(set, "clean images")
	if err != nil {
		return err
	}
	res.CleanAccuracy, res.CleanLoss = acc, loss
	if refRes != nil {
		refRes.CleanAccuracy = refAcc
	}
	if suite != nil {
		res.Suite = suite.Name()
		var sum float64
		var count int
		for _, p := range plan {
			res.Corruptions[p.name] = map[string]float64{}
			if refRes != nil {
				refRes.Corruptions[p.name] = map[string]float64{}
			}
			for _, sev := range p.sevs {
				cs, err := dataset.Corrupt(ctx, set, suite, p.name, sev, dataset.CorruptOptions{Seed: o.seed})
				if err != nil {
					return err
				}
				acc, _, racc, err := evalBoth(cs, fmt.Sprintf("%s@%d", p.name, sev))
				if err != nil {
					return err
				}
				key := strconv.Itoa(sev)
				res.Corruptions[p.name][key] = acc
				if refRes != nil {
					refRes.Corruptions[p.name][key] = racc
				}
				sum += acc
				count++
			}
		}
		mean := sum / float64(count)
		res.MeanCorruptAccuracy = &mean
		if refRes != nil {
			res.Reference = refRes
			res.CorruptionErrors = map[string]float64{}
			var ce, rel float64
			relOK := true
			for _, p := range plan {
				var e, er, d, dr float64
				for _, acc := range res.Corruptions[p.name] {
					e += 1 - acc
					d += (1 - acc) - (1 - res.CleanAccuracy)
				}
				for _, acc := range refRes.Corruptions[p.name] {
					er += 1 - acc
					dr += (1 - acc) - (1 - refRes.CleanAccuracy)
				}
				res.CorruptionErrors[p.name] = e / er
				ce += e / er
				if dr == 0 {
					relOK = false
				}
				rel += d / dr
			}
			mce := ce / float64(len(plan))
			res.MCE = &mce
			if relOK {
				r := rel / float64(len(plan))
				res.RelativeMCE = &r
			}
		}
	}
	done()
	if o.json {
		return a.json(jsonSafe(res))
	}
	printEval(a, res)
	return nil
}

// jsonSafe replaces non-finite corruption errors (a reference without errors) by omitting them;
// encoding/json cannot write NaN or ±Inf.
func jsonSafe(r *evalResult) *evalResult {
	for k, v := range r.CorruptionErrors {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			delete(r.CorruptionErrors, k)
		}
	}
	if r.MCE != nil && (math.IsNaN(*r.MCE) || math.IsInf(*r.MCE, 0)) {
		r.MCE = nil
	}
	return r
}

type sevPlan struct {
	name string
	sevs []int
}

// evalPlan resolves --corruption and --severity against the suite.
func evalPlan(suite *corrupt.Suite, corruptions, severities string) ([]sevPlan, error) {
	names := suite.Corruptions()
	if corruptions != "" && corruptions != "all" {
		names = strings.Split(corruptions, ",")
	}
	var plan []sevPlan
	for _, n := range names {
		avail := suite.Severities(n)
		if avail == nil {
			return nil, withHint(fmt.Errorf("eval: suite %s has no corruption %q", suite.Name(), n),
				"corruptions: "+strings.Join(suite.Corruptions(), ", "))
		}
		p := sevPlan{name: n}
		if severities == "all" || len(avail) == 1 {
			p.sevs = avail
		} else {
			for _, f := range strings.Split(severities, ",") {
				s, err := strconv.Atoi(f)
				if err != nil || !slices.Contains(avail, s) {
					return nil, usagef("eval: --severity %q: %s has severities %v", severities, n, avail)
				}
				p.sevs = append(p.sevs, s)
			}
		}
		plan = append(plan, p)
	}
	return plan, nil
}

func printEval(a *app, r *evalResult) {
	a.printf("%s on %s (%s, %d images)\n", r.Model, r.Dataset, r.Split, r.Images)
	a.printf("clean accuracy  %.2f%%", 100*r.CleanAccuracy)
	if r.Reference != nil {
		a.printf("  (reference %.2f%%)", 100*r.Reference.CleanAccuracy)
	}
	a.printf("\n")
	if r.Suite == "" {
		return
	}
	a.printf("\n%-22s %s\n", r.Suite, "accuracy by severity")
	names := make([]string, 0, len(r.Corruptions))
	for n := range r.Corruptions {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sevs := r.Corruptions[n]
		keys := make([]string, 0, len(sevs))
		for k := range sevs {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { x, _ := strconv.Atoi(keys[i]); y, _ := strconv.Atoi(keys[j]); return x < y })
		a.printf("%-22s", n)
		for _, k := range keys {
			a.printf(" %s:%6.2f%%", k, 100*sevs[k])
		}
		if ce, ok := r.CorruptionErrors[n]; ok {
			a.printf("  CE %.3f", ce)
		}
		a.printf("\n")
	}
	if r.MeanCorruptAccuracy != nil {
		a.printf("\nmean corrupted accuracy %.2f%%\n", 100**r.MeanCorruptAccuracy)
	}
	if r.MCE != nil {
		a.printf("mCE %.3f", *r.MCE)
		if r.RelativeMCE != nil {
			a.printf(", relative mCE %.3f", *r.RelativeMCE)
		}
		a.printf(" (reference %s)\n", r.Reference.Model)
	}
}
