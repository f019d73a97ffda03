package experiment

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/dataset"
	"github.com/rws-project/rws/internal/nn"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/signature"
)

// Options says where a study writes and how it reports progress.
type Options struct {
	// Dir is the output folder: models/ and signatures/ are written there. Models already in
	// Dir/models with the same content key are reused instead of trained again.
	Dir string
	// Force allows Dir to hold files already (an earlier study's output).
	Force bool
	// Quick is recorded in the results (the configuration already carries its effect).
	Quick bool
	// Log, when set, receives one line per finished step.
	Log func(line string)
	// Progress, when set, receives a status line now and then during long steps.
	Progress func(line string)
}

// ErrExists is wrapped when the output folder holds files and Options.Force is not set.
var ErrExists = errors.New("output folder is not empty")

// runner carries one run of a study.
type runner struct {
	cfg   *Config
	opts  Options
	dir   string
	res   *Results
	suite *corrupt.Suite

	evalSeconds float64
	evalImages  int
}

func (r *runner) logf(format string, args ...any) {
	if r.opts.Log != nil {
		r.opts.Log(fmt.Sprintf(format, args...))
	}
}

func (r *runner) progress(format string, args ...any) {
	if r.opts.Progress != nil {
		r.opts.Progress(fmt.Sprintf(format, args...))
	}
}

// timed runs fn as the named stage and records its wall time.
func (r *runner) timed(stage string, fn func() (string, error)) error {
	start := time.Now()
	r.progress("%s …", stage)
	detail, err := fn()
	sec := time.Since(start).Seconds()
	r.res.Timings = append(r.res.Timings, Timing{Stage: stage, Seconds: sec, Detail: detail})
	if err == nil {
		r.logf("%-28s %6.1f s  %s", stage, sec, detail)
	}
	return err
}

// acc is the accuracy of m on s.
func (r *runner) acc(ctx context.Context, m *nn.Model, s set) (float64, error) {
	ok, err := r.correct(ctx, m, s)
	return fraction(ok), err
}

// correct evaluates m on s and says, per image, whether m's top class is the label.
func (r *runner) correct(ctx context.Context, m *nn.Model, s set) ([]bool, error) {
	start := time.Now()
	res, err := nn.Evaluate(ctx, m, s.im, s.labels)
	if err != nil {
		return nil, fmt.Errorf("experiment: evaluating on %s: %w", s.name, err)
	}
	r.evalSeconds += time.Since(start).Seconds()
	r.evalImages += s.im.N
	out := make([]bool, s.im.N)
	for i, p := range nn.Predictions(res.Logits, len(res.Logits)/max(s.im.N, 1)) {
		out[i] = p == s.labels[i]
	}
	return out, nil
}

// pairedDrop compares two models' per-image results on the same images: the drop in accuracy
// from a to b, in points, and its standard error. Only the images the models disagree on carry
// information, so the error is far smaller than that of either accuracy.
func pairedDrop(a, b []bool) (drop, se float64) {
	n := float64(len(a))
	if n == 0 {
		return 0, 0
	}
	var lost, gained float64
	for i := range a {
		switch {
		case a[i] && !b[i]:
			lost++
		case !a[i] && b[i]:
			gained++
		}
	}
	d := (lost - gained) / n
	// Variance of the mean of the per-image differences (+1, −1 or 0).
	v := ((lost+gained)/n - d*d) / n
	return 100 * d, 100 * math.Sqrt(max(v, 0))
}

// accs is the accuracy of m on each set.
func (r *runner) accs(ctx context.Context, m *nn.Model, sets []set) ([]float64, error) {
	out := make([]float64, len(sets))
	for i, s := range sets {
		a, err := r.acc(ctx, m, s)
		if err != nil {
			return nil, err
		}
		out[i] = a
	}
	return out, nil
}

// Run runs the study cfg describes, writing models and signatures under opts.Dir, and returns
// every number it measured. It does not write the report (see package report).
func Run(ctx context.Context, cfg *Config, opts Options) (*Results, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if opts.Dir == "" {
		return nil, errors.New("experiment: no output folder")
	}
	if ents, err := os.ReadDir(opts.Dir); err == nil && len(ents) > 0 && !opts.Force {
		return nil, fmt.Errorf("experiment: %w: %s holds %d entries (use --force to write into it; its trained models are reused when their settings match)", ErrExists, opts.Dir, len(ents))
	}
	for _, d := range []string{"models", "signatures"} {
		if err := os.MkdirAll(filepath.Join(opts.Dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
	}
	suite, err := corrupt.Lookup(cfg.Suite)
	if err != nil {
		return nil, err
	}
	r := &runner{cfg: cfg, opts: opts, dir: opts.Dir, suite: suite, res: &Results{
		Format: ResultsFormat, Version: ResultsVersion, Config: *cfg, Started: time.Now().UTC(), Quick: opts.Quick,
		Env: Env{GoVersion: runtime.Version(), CPUs: runtime.GOMAXPROCS(0), OS: runtime.GOOS, Arch: runtime.GOARCH},
	}}
	start := time.Now()
	if err := r.run(ctx); err != nil {
		return nil, err
	}
	r.res.Timings = append(r.res.Timings, Timing{Stage: "evaluation (all stages)", Seconds: r.evalSeconds,
		Detail: fmt.Sprintf("%d images, %.0f images/s", r.evalImages, float64(r.evalImages)/math.Max(r.evalSeconds, 1e-9))})
	r.res.Seconds = time.Since(start).Seconds()
	r.res.Targets = targets(r.res)
	return r.res, nil
}

// study holds the models and data of a run.
type study struct {
	sp      *splits
	sets    []set // test: clean, then each corruption
	small   []set // the first MatrixTest images of each of sets
	clean   set   // the first CleanTest clean test images (sets[0] is their head)
	ho      []set // held-out: clean, then each corruption
	init    *trained
	std     *trained
	robust  map[string]*trained
	seed2   map[string]*trained
	multi   *trained
	update  *trained
	sigs    map[string]*sigValues
	sigs2   map[string]*sigValues
	layers  []string // the signature's modules
	modules []string // every weight layer of the model, from the input
}

func (r *runner) run(ctx context.Context) error {
	cfg := r.cfg
	names := cfg.Corruptions
	st := &study{robust: map[string]*trained{}, seed2: map[string]*trained{}, sigs: map[string]*sigValues{}, sigs2: map[string]*sigValues{}}

	// Data.
	if err := r.timed("data: load and corrupt", func() (string, error) {
		sp, err := loadSplits(cfg.Dataset, cfg.Seed, cfg.Data.Pretrain, cfg.Data.Finetune, cfg.Data.Update, cfg.Data.Holdout, cfg.Data.Test)
		if err != nil {
			return "", err
		}
		if err := sp.corruptAll(ctx, r.suite, cfg, names, func(d, t int) { r.progress("corrupting %s: %d/%d images", cfg.Dataset, d, t) }); err != nil {
			return "", err
		}
		st.sp = sp
		cl, err := sp.cleanTest(cfg.Data.cleanTest())
		if err != nil {
			return "", err
		}
		st.clean = toSet("clean", cl)
		st.sets = append(st.sets, toSet("clean", sp.testBase))
		st.ho = append(st.ho, toSet("clean", sp.holdout))
		for _, c := range names {
			st.sets = append(st.sets, toSet(c, sp.testC[c]))
			st.ho = append(st.ho, toSet(c, sp.holdoutC[c]))
		}
		for _, s := range st.sets {
			st.small = append(st.small, s.head(cfg.Data.MatrixTest))
		}
		r.res.Data = DataInfo{Dataset: cfg.Dataset, TrainSize: sp.train.N, TestSize: sp.test.N, Pretrain: cfg.Data.Pretrain,
			Finetune: cfg.Data.Finetune, Update: cfg.Data.Update, Holdout: cfg.Data.Holdout, Test: cfg.Data.Test, CleanTest: cfg.Data.cleanTest(), Sets: append([]string{"clean"}, names...)}
		n := len(names) * (sp.finetune.N + sp.holdout.N + sp.testBase.N)
		return fmt.Sprintf("%d corruptions, %d corrupted images", len(names), n), nil
	}); err != nil {
		return err
	}
	sp := st.sp
	desc := func(part string, corruption string) string {
		s := sp.indexSummary + "; " + part
		if corruption != "" {
			s += fmt.Sprintf("; corrupted with %s/%s severity %d, corrupt seed %d", cfg.Suite, corruption, cfg.severity(r.suite, corruption), cfg.Data.CorruptSeed)
		}
		return s
	}

	// Models.
	var err error
	if err = r.timed("train θ0 (init)", func() (string, error) {
		st.init, err = r.train(ctx, &job{name: "init", data: sp.pretrain, dataDesc: desc("pretrain, clean", ""), recipe: cfg.Pretrain, seed: cfg.Seed})
		return r.modelDetail(st.init), err
	}); err != nil {
		return err
	}
	if err = r.timed("train θ_std and θ_c", func() (string, error) {
		st.std, err = r.train(ctx, &job{name: "std", parent: st.init, data: sp.finetune, dataDesc: desc("finetune, clean", ""), recipe: cfg.Finetune, seed: cfg.Seed})
		if err != nil {
			return "", err
		}
		for _, c := range names {
			if st.robust[c], err = r.train(ctx, &job{name: "robust-" + c, parent: st.init, data: sp.finetuneC[c], dataDesc: desc("finetune", c), recipe: cfg.Finetune, seed: cfg.Seed}); err != nil {
				return "", err
			}
		}
		return r.modelDetail(append([]*trained{st.std}, mapValues(st.robust, names)...)...), nil
	}); err != nil {
		return err
	}
	seedNames := cfg.seedCorruptions()
	if err = r.timed("train θ_c, second seed", func() (string, error) {
		for _, c := range seedNames {
			if st.seed2[c], err = r.train(ctx, &job{name: fmt.Sprintf("robust-%s-seed%d", c, cfg.Seeds.Seed), parent: st.init, data: sp.finetuneC[c], dataDesc: desc("finetune", c), recipe: cfg.Finetune, seed: cfg.Seeds.Seed}); err != nil {
				return "", err
			}
		}
		return r.modelDetail(mapValues(st.seed2, seedNames)...), nil
	}); err != nil {
		return err
	}
	if err = r.timed("train θ_all (all corruptions)", func() (string, error) {
		st.multi, err = r.train(ctx, &job{name: "robust-all", parent: st.init, data: sp.mixed(names),
			dataDesc: desc("finetune, image i corrupted with corruption i mod "+fmt.Sprint(len(names))+" of "+strings.Join(names, ","), ""), recipe: cfg.Multi, seed: cfg.Seed})
		return r.modelDetail(st.multi), err
	}); err != nil {
		return err
	}
	if err = r.timed("train updated backbone", func() (string, error) {
		st.update, err = r.train(ctx, &job{name: "std-updated", parent: st.std, data: sp.update, dataDesc: desc("update, clean", ""), recipe: cfg.Update, seed: cfg.Seed})
		return r.modelDetail(st.update), err
	}); err != nil {
		return err
	}
	for _, t := range append([]*trained{st.init, st.std, st.multi, st.update}, append(mapValues(st.robust, names), mapValues(st.seed2, seedNames)...)...) {
		r.res.Models = append(r.res.Models, t.info)
	}

	// Signatures.
	if err := r.timed("extract signatures", func() (string, error) {
		for _, c := range names {
			s, info, err := r.extract(ctx, st.init, st.std, st.robust[c], c, filepath.Join("signatures", c+".rws"), quant.Spec{Codec: quant.None}, cfg.Layers)
			if err != nil {
				return "", err
			}
			r.res.Signatures = append(r.res.Signatures, info)
			st.sigs[c] = s
		}
		for _, c := range seedNames {
			s, _, err := r.extract(ctx, st.init, st.std, st.seed2[c], c, filepath.Join("signatures", fmt.Sprintf("seed%d", cfg.Seeds.Seed), c+".rws"), quant.Spec{Codec: quant.None}, cfg.Layers)
			if err != nil {
				return "", err
			}
			st.sigs2[c] = s
		}
		st.layers = st.sigs[names[0]].sig.Layers
		return fmt.Sprintf("%d signatures over %s, %s each", len(names)+len(seedNames), strings.Join(st.layers, ", "), signature.Bytes(r.res.Signatures[0].Bytes)), nil
	}); err != nil {
		return err
	}
	st.modules = weightModules(st.std.model)

	steps := []struct {
		name string
		fn   func(context.Context, *study) (string, error)
	}{
		{"evaluate θ_std, θ_c, patched", r.evalPatching},
		{"observations 1 and 2", r.observations},
		{"α sweep and unpatch check", r.alphaSweep},
		{"composition", r.composition},
		{"updated backbone", r.updateTransfer},
		{"lightweight", r.lightweight},
		{"cross-dataset (observation 3)", r.crossDataset},
	}
	for _, s := range steps {
		if err := r.timed(s.name, func() (string, error) { return s.fn(ctx, st) }); err != nil {
			return err
		}
	}
	return nil
}

func mapValues(m map[string]*trained, keys []string) []*trained {
	out := make([]*trained, 0, len(keys))
	for _, k := range keys {
		out = append(out, m[k])
	}
	return out
}

func (r *runner) modelDetail(ts ...*trained) string {
	cached, ex := 0, 0
	var sec float64
	for _, t := range ts {
		if t.info.Cached {
			cached++
			continue
		}
		ex += t.info.Examples
		sec += t.info.Seconds
	}
	s := fmt.Sprintf("%d models", len(ts))
	if cached > 0 {
		s += fmt.Sprintf(", %d from the cache", cached)
	}
	if ex > 0 {
		s += fmt.Sprintf(", %d training examples at %.0f ex/s", ex, float64(ex)/sec)
	}
	return s
}

// extract computes the signature of robust against std and init, writes it at rel under the
// output folder and returns it decoded.
func (r *runner) extract(ctx context.Context, init, std, robust *trained, name, rel string, spec quant.Spec, layers string) (*sigValues, SignatureInfo, error) {
	s, _, err := signature.Extract(ctx, signature.ExtractOptions{Init: init.path, Clean: std.path, Robust: []string{robust.path},
		Name: name, Layers: layers, Spec: spec, Granularity: quant.PerTensor,
		Command: fmt.Sprintf("rws demo (study %q): rws extract --init %s --clean %s --robust %s --layers %s --codec %s", r.cfg.Name,
			init.info.File, std.info.File, robust.info.File, layers, spec)})
	if err != nil {
		return nil, SignatureInfo{}, fmt.Errorf("experiment: extracting %s: %w", rel, err)
	}
	path := filepath.Join(r.dir, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, SignatureInfo{}, err
	}
	if err := s.Write(path, signature.WriteOptions{Force: true}); err != nil {
		return nil, SignatureInfo{}, fmt.Errorf("experiment: %w", err)
	}
	v, err := decode(s)
	if err != nil {
		return nil, SignatureInfo{}, err
	}
	var norm float64
	for _, t := range s.Tensors {
		norm += t.Norm * t.Norm
	}
	return v, SignatureInfo{Corruption: name, File: rel, Bytes: s.FileBytes, ModelBytes: s.ModelBytes, Ratio: s.Ratio(),
		Norm: math.Sqrt(norm), Variant: string(s.Variant), Codec: s.Spec.String(), Layers: s.Layers}, nil
}

// weightModules lists the modules of m with a weight, from the input.
func weightModules(m *nn.Model) []string {
	var out []string
	for _, mod := range m.Modules() {
		if _, ok := m.Tensor(mod + ".weight"); ok {
			out = append(out, mod)
		}
	}
	return out
}

// gap is (p − s) / (r − s), or 0 when r = s.
func gap(p, s, rob float64) float64 {
	if rob == s {
		return 0
	}
	return (p - s) / (rob - s)
}

// fraction is the share of true values.
func fraction(ok []bool) float64 {
	if len(ok) == 0 {
		return 0
	}
	n := 0
	for _, v := range ok {
		if v {
			n++
		}
	}
	return float64(n) / float64(len(ok))
}

func mean(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var s float64
	for _, x := range xs {
		s += x
	}
	return s / float64(len(xs))
}

// evalPatching evaluates θ0, θ_std, every θ_c and θ_std + RWS_c on every set.
func (r *runner) evalPatching(ctx context.Context, st *study) (string, error) {
	names := r.cfg.Corruptions
	mx := &r.res.Matrix
	mx.Sets = r.res.Data.Sets
	mx.Corruptions = names
	mx.OtherImages = st.small[0].im.N
	var err error
	if mx.Init, err = r.accs(ctx, st.init.model, st.sets); err != nil {
		return "", err
	}
	if mx.Std, err = r.accs(ctx, st.std.model, st.sets[1:]); err != nil {
		return "", err
	}
	// Clean accuracies: the patching table's on all CleanTest images; the matrix's, like its
	// other cells and the later stages, on the first Test of them.
	nTest := st.sets[0].im.N
	stdClean, err := r.correct(ctx, st.std.model, st.clean)
	if err != nil {
		return "", err
	}
	mx.Std = append([]float64{fraction(stdClean[:nTest])}, mx.Std...)
	var sumP, sumR float64
	var gaps, gapsNG, gapsG, drops []float64
	sum := &r.res.Summary
	// Every model on clean data and its own corruption's full test set; on the other
	// corruptions' sets, the first MatrixTest images. The per-image clean results come back too.
	row := func(m *nn.Model, own int) ([]float64, []bool, error) {
		out := make([]float64, len(st.sets))
		clean, err := r.correct(ctx, m, st.clean)
		if err != nil {
			return nil, nil, err
		}
		out[0] = fraction(clean[:nTest])
		for k := 1; k < len(st.sets); k++ {
			s := st.small[k]
			if k == own {
				s = st.sets[k]
			}
			a, err := r.acc(ctx, m, s)
			if err != nil {
				return nil, nil, err
			}
			out[k] = a
		}
		return out, clean, nil
	}
	for i, c := range names {
		r.progress("evaluating %s (%d/%d)", c, i+1, len(names))
		ra, raClean, err := row(st.robust[c].model, i+1)
		if err != nil {
			return "", err
		}
		pm, err := patch(st.std.model, term{st.sigs[c], 1})
		if err != nil {
			return "", err
		}
		pa, paClean, err := row(pm, i+1)
		if err != nil {
			return "", err
		}
		mx.Robust = append(mx.Robust, ra)
		mx.Patched = append(mx.Patched, pa)
		p := Patching{Corruption: c, Geometric: r.cfg.isGeometric(c), StdAccuracy: mx.Std[i+1], RobustAccuracy: ra[i+1],
			PatchedAccuracy: pa[i+1], StdCleanAccuracy: fraction(stdClean), PatchedCleanAccuracy: fraction(paClean), RobustCleanAccuracy: fraction(raClean)}
		p.GapClosed = gap(p.PatchedAccuracy, p.StdAccuracy, p.RobustAccuracy)
		p.CleanDrop, p.CleanDropSE = pairedDrop(stdClean, paClean)
		r.res.Patching = append(r.res.Patching, p)
		gaps = append(gaps, p.GapClosed)
		if p.Geometric {
			gapsG = append(gapsG, p.GapClosed)
		} else {
			gapsNG = append(gapsNG, p.GapClosed)
		}
		if p.RobustAccuracy-p.StdAccuracy < 0.01 {
			sum.SmallGaps = append(sum.SmallGaps, c)
		}
		sumP += p.PatchedAccuracy - p.StdAccuracy
		sumR += p.RobustAccuracy - p.StdAccuracy
		drops = append(drops, p.CleanDrop)
		if beyond := p.CleanDrop - 2*p.CleanDropSE; len(drops) == 1 || beyond > sum.MaxCleanDropBeyondNoise {
			sum.MaxCleanDropBeyondNoise = beyond
		}
		if len(drops) == 1 || p.CleanDrop > sum.MaxCleanDrop {
			sum.MaxCleanDrop, sum.MaxCleanDropSE, sum.MaxCleanDropCorruption = p.CleanDrop, p.CleanDropSE, c
		}
		sum.MeanStd += p.StdAccuracy / float64(len(names))
		sum.MeanRobust += p.RobustAccuracy / float64(len(names))
		sum.MeanPatched += p.PatchedAccuracy / float64(len(names))
		sum.MeanPatchedClean += p.PatchedCleanAccuracy / float64(len(names))
	}
	sum.MeanGapClosed, sum.MeanGapClosedNonGeometric, sum.MeanGapClosedGeometric = mean(gaps), mean(gapsNG), mean(gapsG)
	sum.PooledGapClosed = gap(sumP, 0, sumR)
	sum.StdClean = fraction(stdClean)
	sum.InitClean = mx.Init[0]
	sum.MeanCleanDrop = mean(drops)
	return fmt.Sprintf("mean gap closed %.3f (non-geometric %.3f), mean clean drop %.2f pt", sum.MeanGapClosed, sum.MeanGapClosedNonGeometric, sum.MeanCleanDrop), nil
}

// observations computes observation 1 (per-layer differences) and 2 (signature cosines).
func (r *runner) observations(ctx context.Context, st *study) (string, error) {
	names := r.cfg.Corruptions
	ld := &r.res.Layers
	ld.Layers = st.modules
	ld.Corruptions = names
	ld.SignatureLayers = len(st.layers)
	ld.Mean = make([]float64, len(st.modules))
	sq := make([]float64, len(st.modules))
	for _, c := range names {
		row := make([]float64, len(st.modules))
		for j, mod := range st.modules {
			var dd, ss float64
			for _, suffix := range []string{".weight", ".bias"} {
				a, ok := st.std.model.Tensor(mod + suffix)
				if !ok {
					continue
				}
				b, _ := st.robust[c].model.Tensor(mod + suffix)
				for i := range a.Data {
					d := float64(b.Data[i]) - float64(a.Data[i])
					dd += d * d
					ss += float64(a.Data[i]) * float64(a.Data[i])
				}
			}
			if ss > 0 {
				row[j] = math.Sqrt(dd / ss)
			}
			ld.Mean[j] += row[j] / float64(len(names))
			sq[j] += dd
		}
		ld.Relative = append(ld.Relative, row)
	}
	k := ld.SignatureLayers
	var first, all, sqFirst, sqAll float64
	for j := range st.modules {
		all += ld.Mean[j]
		sqAll += sq[j]
		if j < k {
			first += ld.Mean[j]
			sqFirst += sq[j]
		}
	}
	if all > 0 {
		ld.ShareOfRelative = first / all
	}
	if sqAll > 0 {
		ld.ShareOfSquared = sqFirst / sqAll
	}
	if rest := len(st.modules) - k; rest > 0 && all > first {
		ld.RatioFirstToRest = (first / float64(k)) / ((all - first) / float64(rest))
	}

	// Observation 2.
	cs := &r.res.Cosine
	cs.Corruptions = names
	top := st.layers[:min(2, len(st.layers))]
	cs.Layers = top
	var cross, crossAll []float64
	for i, a := range names {
		row, rowAll := make([]float64, len(names)), make([]float64, len(names))
		for j, b := range names {
			row[j] = cosine(st.sigs[a], st.sigs[b], top)
			rowAll[j] = cosine(st.sigs[a], st.sigs[b], nil)
			if i != j {
				cross = append(cross, row[j])
				crossAll = append(crossAll, rowAll[j])
			}
		}
		cs.Matrix = append(cs.Matrix, row)
		cs.MatrixAll = append(cs.MatrixAll, rowAll)
	}
	cs.MeanCross, cs.MeanCrossAll = mean(cross), mean(crossAll)
	if len(cross) > 0 {
		cs.MaxCross = slices.Max(cross)
	}
	var seed, seedAll []float64
	for _, c := range r.cfg.seedCorruptions() {
		p := SeedPair{Corruption: c, Cosine: cosine(st.sigs[c], st.sigs2[c], top), CosineAll: cosine(st.sigs[c], st.sigs2[c], nil)}
		best := math.Inf(-1)
		for _, b := range names {
			if v := cosine(st.sigs2[c], st.sigs[b], nil); v > best {
				best, p.Nearest = v, b
			}
		}
		if p.Nearest == c {
			cs.NearestCorrect++
		}
		pm, err := patch(st.std.model, term{st.sigs2[c], 1})
		if err != nil {
			return "", err
		}
		if p.PatchedAccuracy, err = r.acc(ctx, pm, st.sets[1+slices.Index(names, c)]); err != nil {
			return "", err
		}
		cs.Seeds = append(cs.Seeds, p)
		seed = append(seed, p.Cosine)
		seedAll = append(seedAll, p.CosineAll)
	}
	cs.MeanSeed, cs.MeanSeedAll = mean(seed), mean(seedAll)
	return fmt.Sprintf("signature layers hold %.0f%% of the summed relative difference; cosine same corruption %.2f, different %.2f",
		100*ld.ShareOfRelative, cs.MeanSeed, cs.MeanCross), nil
}

// alphaSweep measures accuracy as α varies and checks that unpatching a patched file gives the
// original back.
func (r *runner) alphaSweep(ctx context.Context, st *study) (string, error) {
	names := r.cfg.Corruptions
	as := &r.res.Alpha
	as.Values = r.cfg.Alpha.Values
	as.MeanCorrupted = make([]float64, len(as.Values))
	as.MeanClean = make([]float64, len(as.Values))
	for i, c := range names {
		s := AlphaSeries{Corruption: c}
		for _, a := range as.Values {
			r.progress("α sweep: %s α=%g", c, a)
			var cor, cl float64
			switch a {
			case 0:
				cor, cl = r.res.Matrix.Std[i+1], r.res.Matrix.Std[0]
			case 1:
				cor, cl = r.res.Matrix.Patched[i][i+1], r.res.Matrix.Patched[i][0]
			default:
				pm, err := patch(st.std.model, term{st.sigs[c], a})
				if err != nil {
					return "", err
				}
				if cor, err = r.acc(ctx, pm, st.sets[i+1]); err != nil {
					return "", err
				}
				if cl, err = r.acc(ctx, pm, st.sets[0]); err != nil {
					return "", err
				}
			}
			s.Corrupted = append(s.Corrupted, cor)
			s.Clean = append(s.Clean, cl)
		}
		for k := range as.Values {
			as.MeanCorrupted[k] += s.Corrupted[k] / float64(len(names))
			as.MeanClean[k] += s.Clean[k] / float64(len(names))
		}
		as.Items = append(as.Items, s)
	}
	as.BestAlpha = as.Values[0]
	for k, v := range as.MeanCorrupted {
		if v > as.MeanCorrupted[slices.Index(as.Values, as.BestAlpha)] {
			as.BestAlpha = as.Values[k]
		}
	}

	// Exact removal, on files, with package signature.
	c := names[0]
	u := &as.Unpatch
	u.Model = st.std.info.File
	u.Signatures = []string{filepath.Join("signatures", c+".rws")}
	sig, err := signature.Read(filepath.Join(r.dir, u.Signatures[0]))
	if err != nil {
		return "", err
	}
	orig, err := os.ReadFile(st.std.path)
	if err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(r.dir, ".unpatch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	for _, a := range as.Values {
		if a == 0 {
			continue
		}
		pf, uf := filepath.Join(tmp, "patched.safetensors"), filepath.Join(tmp, "restored.safetensors")
		if _, err := signature.Patch(ctx, st.std.path, pf, []signature.Applied{{Sig: sig, Alpha: a}}, signature.PatchOptions{Force: true, Command: "rws demo"}); err != nil {
			return "", fmt.Errorf("experiment: patching %s: %w", u.Model, err)
		}
		if _, err := signature.Unpatch(ctx, pf, uf, signature.UnpatchOptions{Force: true}); err != nil {
			return "", fmt.Errorf("experiment: unpatching: %w", err)
		}
		back, err := os.ReadFile(uf)
		if err != nil {
			return "", err
		}
		u.Alphas = append(u.Alphas, a)
		u.Checked++
		if bytes.Equal(back, orig) {
			u.Identical++
		}
		if a == 1 {
			u.PatchedFile = filepath.Join("models", "std+"+c+".safetensors")
			if err := os.Rename(pf, filepath.Join(r.dir, u.PatchedFile)); err != nil {
				return "", err
			}
		}
	}
	u.Exact = u.Checked > 0 && u.Identical == u.Checked
	if u.PatchedFile != "" {
		m, err := nn.LoadCheckpoint(filepath.Join(r.dir, u.PatchedFile))
		if err != nil {
			return "", err
		}
		if u.PatchedFileAccuracy, err = r.acc(ctx, m, st.sets[1]); err != nil {
			return "", err
		}
		u.InMemoryAccuracy = r.res.Matrix.Patched[0][1]
	}
	return fmt.Sprintf("best mean α %g; unpatch exact in %d of %d", as.BestAlpha, u.Identical, u.Checked), nil
}

// composition applies all signatures at once by several rules and compares them with θ_std and
// the model fine-tuned on all corruptions.
func (r *runner) composition(ctx context.Context, st *study) (string, error) {
	names := r.cfg.Corruptions
	cc := r.cfg.Composition
	co := &r.res.Compose
	co.Sets = r.res.Data.Sets
	co.Holdout = r.cfg.Data.Holdout
	all := make([]*sigValues, len(names))
	for i, c := range names {
		all[i] = st.sigs[c]
	}
	n := float64(len(names))
	uniform := func(a float64) []term {
		ts := make([]term, len(all))
		for i, s := range all {
			ts[i] = term{s, a}
		}
		return ts
	}
	stdHo, err := r.acc(ctx, st.std.model, st.ho[0])
	if err != nil {
		return "", err
	}
	finish := func(rule Rule, m *nn.Model) error {
		acc, err := r.accs(ctx, m, st.sets)
		if err != nil {
			return err
		}
		rule.Accuracy = acc
		rule.Clean = acc[0]
		rule.MeanCorrupted = mean(acc[1:])
		co.Rules = append(co.Rules, rule)
		return nil
	}
	var fallbacks []string
	// choose tries each λ on held-out data and returns the best model: the highest mean
	// corrupted accuracy among those within MaxCleanDrop of θ_std's clean accuracy (or the
	// highest overall when none is).
	choose := func(label string, build func(l float64) (*nn.Model, error)) (float64, []LambdaScore, *nn.Model, error) {
		var scores []LambdaScore
		var models []*nn.Model
		for _, l := range cc.Lambdas {
			r.progress("composition %s: λ=%g on held-out data", label, l)
			m, err := build(l)
			if err != nil {
				return 0, nil, nil, err
			}
			acc, err := r.accs(ctx, m, st.ho)
			if err != nil {
				return 0, nil, nil, err
			}
			scores = append(scores, LambdaScore{Lambda: l, MeanCorrupted: mean(acc[1:]), Clean: acc[0]})
			models = append(models, m)
		}
		best := -1
		for k, s := range scores {
			ok := 100*(stdHo-s.Clean) <= cc.MaxCleanDrop
			if ok && (best < 0 || s.MeanCorrupted > scores[best].MeanCorrupted) {
				best = k
			}
		}
		if best < 0 {
			fallbacks = append(fallbacks, label)
			for k, s := range scores {
				if best < 0 || s.MeanCorrupted > scores[best].MeanCorrupted {
					best = k
				}
			}
		}
		return scores[best].Lambda, scores, models[best], nil
	}
	alphas := func(a float64) map[string]float64 {
		m := map[string]float64{}
		for _, c := range names {
			m[c] = a
		}
		return m
	}
	if err := finish(Rule{Name: "std", Description: "θ_std, no signature"}, st.std.model); err != nil {
		return "", err
	}
	m, err := patch(st.std.model, uniform(1)...)
	if err != nil {
		return "", err
	}
	if err := finish(Rule{Name: "sum", Description: "plain sum: every signature at α = 1", Alphas: alphas(1)}, m); err != nil {
		return "", err
	}
	if m, err = patch(st.std.model, uniform(1/n)...); err != nil {
		return "", err
	}
	if err := finish(Rule{Name: "mean", Description: "every signature at α = 1/N", Alphas: alphas(1 / n)}, m); err != nil {
		return "", err
	}
	l, search, m, err := choose("scaled-mean", func(l float64) (*nn.Model, error) { return patch(st.std.model, uniform(l/n)...) })
	if err != nil {
		return "", err
	}
	if err := finish(Rule{Name: "scaled-mean", Description: "every signature at α = λ/N, λ chosen on held-out data", Lambda: l, Search: search, Alphas: alphas(l / n)}, m); err != nil {
		return "", err
	}
	// Overlap: signature c at λ / Σ_j max(0, cos(c, j)): orthogonal signatures keep their full
	// strength (a plain sum), identical ones share it (1/N), in between in proportion.
	share := map[string]float64{}
	for _, a := range all {
		var s float64
		for _, b := range all {
			s += math.Max(0, cosine(a, b, nil))
		}
		share[a.name] = 1 / s
	}
	l, search, m, err = choose("overlap", func(l float64) (*nn.Model, error) {
		ts := make([]term, len(all))
		for i, s := range all {
			ts[i] = term{s, l * share[s.name]}
		}
		return patch(st.std.model, ts...)
	})
	if err != nil {
		return "", err
	}
	ov := map[string]float64{}
	for c, s := range share {
		ov[c] = l * s
	}
	if err := finish(Rule{Name: "overlap", Description: "signature c at α_c = λ / Σ_j max(0, cos(RWS_c, RWS_j)): full strength where signatures are orthogonal, shared where they overlap; λ chosen on held-out data", Lambda: l, Search: search, Alphas: ov}, m); err != nil {
		return "", err
	}
	merged := ties(all, cc.Trim)
	l, search, m, err = choose("ties", func(l float64) (*nn.Model, error) { return patchValues(st.std.model, merged, l) })
	if err != nil {
		return "", err
	}
	if err := finish(Rule{Name: "ties", Description: fmt.Sprintf("TIES merge: keep each signature's top %.0f%% values per tensor, elect signs, average the agreeing values; scaled by λ chosen on held-out data", 100*cc.Trim), Lambda: l, Search: search}, m); err != nil {
		return "", err
	}
	if err := finish(Rule{Name: "fine-tuned on all", Description: "θ0 fine-tuned on all corruptions together (a model, not a patch)"}, st.multi.model); err != nil {
		return "", err
	}
	for i := range co.Rules {
		if slices.Contains(fallbacks, co.Rules[i].Name) {
			co.Rules[i].Note = fmt.Sprintf("no λ tried kept the held-out clean accuracy within %g pt of θ_std's; the λ with the best held-out corrupted accuracy was taken", cc.MaxCleanDrop)
		}
	}
	var parts []string
	for _, rl := range co.Rules {
		parts = append(parts, fmt.Sprintf("%s %.3f", rl.Name, rl.MeanCorrupted))
	}
	return "mean corrupted accuracy: " + strings.Join(parts, ", "), nil
}

// updateTransfer applies the signatures to the updated backbone.
func (r *runner) updateTransfer(ctx context.Context, st *study) (string, error) {
	names := r.cfg.Corruptions
	ut := &r.res.Update
	var err error
	if ut.UpdatedClean, err = r.acc(ctx, st.update.model, st.sets[0]); err != nil {
		return "", err
	}
	ut.StdClean = r.res.Matrix.Std[0]
	var sumP, sumR float64
	var gaps []float64
	for i, c := range names {
		it := UpdateItem{Corruption: c, Robust: r.res.Matrix.Robust[i][i+1]}
		if it.Updated, err = r.acc(ctx, st.update.model, st.sets[i+1]); err != nil {
			return "", err
		}
		pm, err := patch(st.update.model, term{st.sigs[c], 1})
		if err != nil {
			return "", err
		}
		if it.Patched, err = r.acc(ctx, pm, st.sets[i+1]); err != nil {
			return "", err
		}
		if it.Clean, err = r.acc(ctx, pm, st.sets[0]); err != nil {
			return "", err
		}
		it.GapClosed = gap(it.Patched, it.Updated, it.Robust)
		gaps = append(gaps, it.GapClosed)
		sumP += it.Patched - it.Updated
		sumR += it.Robust - it.Updated
		ut.MeanUpdated += it.Updated / float64(len(names))
		ut.MeanPatched += it.Patched / float64(len(names))
		ut.Items = append(ut.Items, it)
	}
	ut.MeanGap = mean(gaps)
	ut.PooledGap = gap(sumP, 0, sumR)
	var dd, ss float64
	for _, name := range st.sigs[names[0]].names {
		a, _ := st.std.model.Tensor(name)
		b, _ := st.update.model.Tensor(name)
		for i := range a.Data {
			d := float64(b.Data[i]) - float64(a.Data[i])
			dd += d * d
			ss += float64(a.Data[i]) * float64(a.Data[i])
		}
	}
	if ss > 0 {
		ut.Differ = math.Sqrt(dd / ss)
	}
	return fmt.Sprintf("mean gap closed on the updated backbone %.3f", ut.MeanGap), nil
}

// lightweight measures accuracy against signature size over layer counts and codecs.
func (r *runner) lightweight(ctx context.Context, st *study) (string, error) {
	names := r.cfg.Corruptions
	full, _ := r.cfg.LayerCount()
	type variant struct {
		spec   quant.Spec
		layers int
	}
	var vs []variant
	for _, k := range r.cfg.Lightweight.Layers {
		vs = append(vs, variant{quant.Spec{Codec: quant.None}, k})
	}
	for _, q := range r.cfg.Lightweight.Codecs {
		for _, b := range q.Bits {
			vs = append(vs, variant{quant.Spec{Codec: quant.Codec(q.Codec), Bits: b}, full})
		}
	}
	ref := map[int]float64{} // unquantized mean corrupted accuracy per layer count
	for _, v := range vs {
		p := LightPoint{Codec: string(v.spec.Codec), Bits: v.spec.CodeBits(), Layers: v.layers}
		var ratio, relErr float64
		for i, c := range names {
			r.progress("lightweight: %s, %d layers, %s", v.spec, v.layers, c)
			var sv *sigValues
			var info SignatureInfo
			if v.spec.Codec == quant.None && v.layers == full {
				sv, info = st.sigs[c], r.res.Signatures[i]
			} else {
				dir := fmt.Sprintf("%s-%dbit-%dlayers", v.spec.Codec, v.spec.CodeBits(), v.layers)
				var err error
				sv, info, err = r.extract(ctx, st.init, st.std, st.robust[c], c, filepath.Join("signatures", "lightweight", dir, c+".rws"), v.spec, fmt.Sprintf("first:%d", v.layers))
				if err != nil {
					return "", err
				}
			}
			p.Bytes += float64(info.Bytes) / float64(len(names))
			ratio += info.Ratio / float64(len(names))
			for _, t := range sv.sig.Tensors {
				relErr += t.RelError / float64(len(names)*len(sv.sig.Tensors))
			}
			var cor, cl float64
			if v.spec.Codec == quant.None && v.layers == full {
				cor = r.res.Matrix.Patched[i][i+1]
				pm, err := patch(st.std.model, term{sv, 1})
				if err != nil {
					return "", err
				}
				if cl, err = r.acc(ctx, pm, st.small[0]); err != nil {
					return "", err
				}
			} else {
				pm, err := patch(st.std.model, term{sv, 1})
				if err != nil {
					return "", err
				}
				if cor, err = r.acc(ctx, pm, st.sets[i+1]); err != nil {
					return "", err
				}
				if cl, err = r.acc(ctx, pm, st.small[0]); err != nil {
					return "", err
				}
			}
			p.MeanCorrupted += cor / float64(len(names))
			p.MeanClean += cl / float64(len(names))
		}
		p.Ratio, p.RelError = ratio, relErr
		if v.spec.Codec == quant.None {
			ref[v.layers] = p.MeanCorrupted
		}
		r.res.Light = append(r.res.Light, p)
	}
	if _, ok := ref[full]; !ok {
		ref[full] = r.res.Summary.MeanPatched
	}
	for i := range r.res.Light {
		p := &r.res.Light[i]
		p.LossPoints = 100 * (ref[p.Layers] - p.MeanCorrupted)
	}
	return fmt.Sprintf("%d variants", len(vs)), nil
}

// crossDataset runs observation 3 on the second dataset, when it is installed.
func (r *runner) crossDataset(ctx context.Context, st *study) (string, error) {
	tc := r.cfg.Transfer
	if tc.Dataset == "" {
		return "off", nil
	}
	names := r.cfg.Corruptions
	cd := &CrossDataset{Dataset: tc.Dataset}
	r.res.Dataset = cd
	sp, err := loadSplits(tc.Dataset, r.cfg.Seed, 0, tc.Finetune, 0, 0, tc.Test)
	if errors.Is(err, dataset.ErrNotFound) {
		cd.Note = fmt.Sprintf("%s is not installed (%v); observation 3 was skipped. Install it with 'apt-get install dataset-fashion-mnist' (it goes to %s) and run rws demo again: the models already trained are reused.",
			tc.Dataset, err, dataset.FashionMNISTDir)
		return "skipped: " + tc.Dataset + " is not installed", nil
	}
	if err != nil {
		return "", err
	}
	if sp.train.H != st.sp.train.H || sp.train.W != st.sp.train.W || sp.train.C != st.sp.train.C || sp.train.Classes != st.sp.train.Classes {
		return "", fmt.Errorf("experiment: transfer dataset %q has %dx%dx%d images and %d classes; the study's models take %dx%dx%d and %d",
			tc.Dataset, sp.train.H, sp.train.W, sp.train.C, sp.train.Classes, st.sp.train.H, st.sp.train.W, st.sp.train.C, st.sp.train.Classes)
	}
	if err := sp.corruptAll(ctx, r.suite, r.cfg, names, func(d, t int) { r.progress("corrupting %s: %d/%d images", tc.Dataset, d, t) }); err != nil {
		return "", err
	}
	cd.Available = true
	tag := strings.NewReplacer(":", "-", "/", "-", ",", "-").Replace(tc.Dataset)
	desc := func(c string) string {
		s := sp.indexSummary + "; finetune"
		if c != "" {
			s += fmt.Sprintf("; corrupted with %s/%s, corrupt seed %d", r.cfg.Suite, c, r.cfg.Data.CorruptSeed)
		}
		return s
	}
	std, err := r.train(ctx, &job{name: tag + "-std", parent: st.init, data: sp.finetune, dataDesc: desc(""), recipe: tc.Recipe, seed: r.cfg.Seed})
	if err != nil {
		return "", err
	}
	r.res.Models = append(r.res.Models, std.info)
	clean := toSet("clean", sp.testBase)
	if cd.StdClean, err = r.acc(ctx, std.model, clean); err != nil {
		return "", err
	}
	own := map[string]*sigValues{}
	var ownGaps, trGaps, same, other []float64
	var sumOwn, sumTr, sumR float64
	top := st.layers[:min(2, len(st.layers))]
	for _, c := range names {
		rob, err := r.train(ctx, &job{name: tag + "-robust-" + c, parent: st.init, data: sp.finetuneC[c], dataDesc: desc(c), recipe: tc.Recipe, seed: r.cfg.Seed})
		if err != nil {
			return "", err
		}
		r.res.Models = append(r.res.Models, rob.info)
		sv, _, err := r.extract(ctx, st.init, std, rob, c, filepath.Join("signatures", tag, c+".rws"), quant.Spec{Codec: quant.None}, r.cfg.Layers)
		if err != nil {
			return "", err
		}
		own[c] = sv
		test := toSet(c, sp.testC[c])
		it := CrossItem{Corruption: c, Cosine: cosine(st.sigs[c], sv, nil), CosineTop: cosine(st.sigs[c], sv, top)}
		if it.Std, err = r.acc(ctx, std.model, test); err != nil {
			return "", err
		}
		if it.Robust, err = r.acc(ctx, rob.model, test); err != nil {
			return "", err
		}
		for _, pv := range []struct {
			sig       *sigValues
			acc, cacc *float64
		}{{sv, &it.Own, &it.OwnClean}, {st.sigs[c], &it.Transfer, &it.TransferClean}} {
			pm, err := patch(std.model, term{pv.sig, 1})
			if err != nil {
				return "", err
			}
			if *pv.acc, err = r.acc(ctx, pm, test); err != nil {
				return "", err
			}
			if *pv.cacc, err = r.acc(ctx, pm, clean); err != nil {
				return "", err
			}
		}
		it.OwnGap = gap(it.Own, it.Std, it.Robust)
		it.TransferGap = gap(it.Transfer, it.Std, it.Robust)
		ownGaps = append(ownGaps, it.OwnGap)
		trGaps = append(trGaps, it.TransferGap)
		sumOwn += it.Own - it.Std
		sumTr += it.Transfer - it.Std
		sumR += it.Robust - it.Std
		cd.Corruptions = append(cd.Corruptions, it)
	}
	for _, a := range names {
		row := make([]float64, len(names))
		for j, b := range names {
			row[j] = cosine(st.sigs[a], own[b], nil)
			if a == b {
				same = append(same, row[j])
			} else {
				other = append(other, row[j])
			}
		}
		cd.Matrix = append(cd.Matrix, row)
	}
	cd.MeanSame, cd.MeanOther = mean(same), mean(other)
	cd.MeanOwnGap, cd.MeanTransferGap = mean(ownGaps), mean(trGaps)
	cd.PooledOwnGap, cd.PooledTransferGap = gap(sumOwn, 0, sumR), gap(sumTr, 0, sumR)
	return fmt.Sprintf("%s: cosine same corruption %.2f, other %.2f; gap closed own %.3f, transferred %.3f",
		tc.Dataset, cd.MeanSame, cd.MeanOther, cd.MeanOwnGap, cd.MeanTransferGap), nil
}
