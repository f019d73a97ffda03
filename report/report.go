package report

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rws-project/rws/experiment"
	"github.com/rws-project/rws/internal/atomicfile"
)

// Files lists what Write puts in the output folder, besides plots/*.png.
var Files = []string{"report.md", "report.html", "results.json"}

// Write writes report.md, report.html, results.json and plots/*.png for res into dir,
// replacing earlier versions of these files (the caller decides whether dir may be written).
func Write(dir string, res *experiment.Results) error {
	p := build(res)
	if err := os.MkdirAll(filepath.Join(dir, "plots"), 0o755); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	names := make([]string, 0, len(p.plots))
	for n := range p.plots {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := atomicfile.WriteFile(filepath.Join(dir, "plots", n), p.plots[n], atomicfile.Options{Force: true}); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	js, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fmt.Errorf("report: results.json: %w", err)
	}
	for name, data := range map[string][]byte{
		"results.json": append(js, '\n'),
		"report.md":    []byte(p.markdown()),
		"report.html":  []byte(p.html("Robust weight signatures: " + res.Config.Name)),
	} {
		if err := atomicfile.WriteFile(filepath.Join(dir, name), data, atomicfile.Options{Force: true}); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	}
	return nil
}

func pct(x float64) string      { return fmt.Sprintf("%.1f", 100*x) }
func pts(x float64) string      { return fmt.Sprintf("%+.1f", 100*x) }
func f3(x float64) string       { return fmt.Sprintf("%.3f", x) }
func f2(x float64) string       { return fmt.Sprintf("%.2f", x) }
func yesNo(b bool) string       { return map[bool]string{true: "yes", false: "**no**"}[b] }
func secs(x float64) string     { return fmt.Sprintf("%.1f", x) }
func bytesStr(x float64) string { return fmtBytes(x) }

// build lays out the report.
func build(res *experiment.Results) *page {
	p := &page{plots: map[string][]byte{}}
	cfg := res.Config
	n := len(res.Patching)
	p.h(1, "Robust weight signatures: "+cfg.Name)
	mode := ""
	if res.Quick {
		mode = " (--quick: fewer corruptions and smaller data; the numbers are rougher than the full study's)"
	}
	p.para("The `%s` architecture on %s with %d corruptions of the %s suite%s. Run on %s with %s on %d CPUs in %.0f s (%.1f min). Every number below was measured in this run; `results.json` holds them all.",
		cfg.Arch, cfg.Dataset, n, cfg.Suite, mode, res.Started.Format("2006-01-02 15:04 UTC"), res.Env.GoVersion, res.Env.CPUs, res.Seconds, res.Seconds/60)

	// Claims.
	p.h(2, "Claims and targets")
	var rows [][]string
	var unmet []string
	for _, t := range res.Targets {
		rows = append(rows, []string{t.Claim, t.Want, t.Shown, yesNo(t.Met), t.Note})
		if !t.Met {
			unmet = append(unmet, t.Claim+" (measured "+t.Shown+", wanted "+t.Want+")")
		}
	}
	p.table([]string{"claim", "target", "measured", "holds", "note"}, rows)
	if len(unmet) == 0 {
		p.para("Every claim checked holds on this data.")
	} else {
		p.para("**%d of %d claims do not hold on this data:**", len(unmet), len(res.Targets))
		p.list(unmet...)
	}

	setup(p, res)
	patching(p, res)
	observation1(p, res)
	observation2(p, res)
	observation3(p, res)
	alpha(p, res)
	composition(p, res)
	update(p, res)
	lightweight(p, res)
	matrix(p, res)
	timings(p, res)
	p.h(2, "Configuration")
	p.para("The effective configuration of this run (`rws demo --config FILE` takes a file like it; keys left out keep the defaults):")
	p.code(cfg.TOML())
	return p
}

func setup(p *page, res *experiment.Results) {
	d := res.Data
	cfg := res.Config
	p.h(2, "Setup")
	p.para("Images come from disjoint parts of a seeded permutation of the %s training split (%d images): %d to train θ0, %d base images for every fine-tune (the same images, clean for θ_std and corrupted for each θ_c), %d more clean images for the updated backbone and %d held-out images per set for the choices the composition rules make. Each evaluation set is the same %d test images (of %d), clean or corrupted; cells of the accuracy matrix off its diagonal use the first %d.",
		d.Dataset, d.TrainSize, d.Pretrain, d.Finetune, d.Update, d.Holdout, d.Test, d.TestSize, res.Matrix.OtherImages)
	p.para("Training: SGD with momentum %.2g and weight decay %.2g at a constant rate; θ0: %d epochs at lr %.3g, batch %d; every fine-tune (θ_std, θ_c, second seed): %d epochs at lr %.3g, batch %d. Signatures: %s (%s), the projection variant RWS_c = d_c − (⟨d_c,a⟩/⟨a,a⟩)·a with d_c = θ_c − θ0 and a = θ_std − θ0, stored unquantized unless said otherwise.",
		cfg.Finetune.Momentum, cfg.Finetune.WeightDecay, cfg.Pretrain.Epochs, cfg.Pretrain.LR, cfg.Pretrain.Batch,
		cfg.Finetune.Epochs, cfg.Finetune.LR, cfg.Finetune.Batch, cfg.Layers, strings.Join(sigLayers(res), ", "))
	var rows [][]string
	for _, m := range res.Models {
		cached := ""
		if m.Cached {
			cached = "cached"
		}
		rows = append(rows, []string{m.Name, m.File, m.Parent, fmt.Sprint(m.Examples), secs(m.Seconds), fmt.Sprintf("%.0f", m.ExamplesPerSec), f3(m.TrainAccuracy), cached})
	}
	p.table([]string{"model", "file", "fine-tuned from", "training examples", "train s", "examples/s", "final train accuracy", ""}, rows)
}

func sigLayers(res *experiment.Results) []string {
	if len(res.Signatures) > 0 {
		return res.Signatures[0].Layers
	}
	return nil
}

func corruptionLabels(res *experiment.Results) []string {
	var out []string
	for _, pt := range res.Patching {
		name := pt.Corruption
		if pt.Geometric {
			name += "*"
		}
		out = append(out, name)
	}
	return out
}

func patching(p *page, res *experiment.Results) {
	s := res.Summary
	p.h(2, "Patching at α = 1")
	p.para("θ_std + RWS_c against θ_std and θ_c on c's test set, and on clean data. Gap closed = (patched − std) / (robust − std). Geometric corruptions are marked *.")
	var rows [][]string
	for _, pt := range res.Patching {
		name := pt.Corruption
		if pt.Geometric {
			name += " *"
		}
		rows = append(rows, []string{name, pct(pt.StdAccuracy), pct(pt.PatchedAccuracy), pct(pt.RobustAccuracy), f3(pt.GapClosed),
			pct(pt.StdCleanAccuracy), pct(pt.PatchedCleanAccuracy), fmt.Sprintf("%.2f ± %.2f", pt.CleanDrop, pt.CleanDropSE), pct(pt.RobustCleanAccuracy)})
	}
	rows = append(rows, []string{"**mean**", pct(s.MeanStd), pct(s.MeanPatched), pct(s.MeanRobust), f3(s.MeanGapClosed), pct(s.StdClean), pct(s.MeanPatchedClean), fmt.Sprintf("%.2f", s.MeanCleanDrop), ""})
	p.table([]string{"corruption", "θ_std %", "patched %", "θ_c %", "gap closed", "θ_std clean %", "patched clean %", "clean drop (pt ± SE)", "θ_c clean %"}, rows)
	p.para("Mean gap closed: **%.3f** over all %d corruptions, **%.3f** over the non-geometric ones and %.3f over the geometric ones; pooled Σ(patched − std)/Σ(robust − std): %.3f. Clean accuracy of the patched models: %.2f pt below θ_std's on average; the largest drop is %.2f ± %.2f pt (%s). θ0 (the shared start) has clean accuracy %s %%.",
		s.MeanGapClosed, len(res.Patching), s.MeanGapClosedNonGeometric, s.MeanGapClosedGeometric, s.PooledGapClosed, s.MeanCleanDrop, s.MaxCleanDrop, s.MaxCleanDropSE, s.MaxCleanDropCorruption, pct(s.InitClean))
	p.para("A clean drop is measured on the same %d clean images for both models, so only the images on which they disagree count; its standard error (± SE) comes from those. A drop within two standard errors of zero is indistinguishable from sampling noise at this test size. Largest drop minus two standard errors, over corruptions: %.2f pt. (The clean columns of this table use %d clean test images; the accuracy matrix and the later sections use the first %d, like the corrupted sets.)",
		res.Data.CleanTest, s.MaxCleanDropBeyondNoise, res.Data.CleanTest, res.Data.Test)
	if len(s.SmallGaps) > 0 {
		p.para("On %s, θ_c is less than one point better than θ_std, so the gap-closed ratio there is dominated by noise.", strings.Join(s.SmallGaps, ", "))
	}
	if s.MeanGapClosedGeometric < s.MeanGapClosedNonGeometric-0.05 {
		p.para("The geometric corruptions (shear, scale, rotate, translate) are patched less well: a signature in the first layers changes local filters, while robustness to moving whole digits needs the later, spatially pooled layers that the signature does not touch.")
	}
	labels := corruptionLabels(res)
	var std, pat, rob, gaps []float64
	for _, pt := range res.Patching {
		std, pat, rob, gaps = append(std, pt.StdAccuracy), append(pat, pt.PatchedAccuracy), append(rob, pt.RobustAccuracy), append(gaps, pt.GapClosed)
	}
	p.plot("patching.png", "Accuracy on each corruption's test set: θ_std, θ_std + RWS_c (α = 1) and θ_c (* geometric)", (&BarChart{
		Title: "Accuracy on the corruption's test set", YLabel: "accuracy", Categories: labels,
		Series: []BarSeries{{"std", std}, {"std + RWS (a=1)", pat}, {"robust", rob}},
	}).PNG)
	p.plot("gap-closed.png", "Share of the θ_std → θ_c gap closed by the signature, per corruption (* geometric)", (&BarChart{
		Title: "Gap closed by patching at a = 1", YLabel: "gap closed", Categories: labels,
		Series: []BarSeries{{"gap closed", gaps}},
		HLines: []RefLine{{s.MeanGapClosed, fmt.Sprintf("mean %.2f", s.MeanGapClosed)}},
	}).PNG)
}

func observation1(p *page, res *experiment.Results) {
	ld := res.Layers
	p.h(2, "Observation 1: where clean and robust weights differ")
	p.para("Relative difference ‖θ_c − θ_std‖ / ‖θ_std‖ per weight layer (weight and bias), from the input. The signature keeps the first %d layers. Their mean relative difference is %.2f× that of the other layers; they hold %.0f%% of the summed relative differences but %.0f%% of the squared differences (the classifier layers are much larger).",
		ld.SignatureLayers, ld.RatioFirstToRest, 100*ld.ShareOfRelative, 100*ld.ShareOfSquared)
	var rows [][]string
	for j, l := range ld.Layers {
		kept := ""
		if j < ld.SignatureLayers {
			kept = "signature"
		}
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, row := range ld.Relative {
			lo, hi = math.Min(lo, row[j]), math.Max(hi, row[j])
		}
		rows = append(rows, []string{fmt.Sprint(j + 1), l, f3(ld.Mean[j]), f3(lo), f3(hi), kept})
	}
	p.table([]string{"#", "layer", "mean relative difference", "min", "max", ""}, rows)
	var series []Series
	x := make([]float64, len(ld.Layers))
	for j := range x {
		x[j] = float64(j + 1)
	}
	for i, c := range ld.Corruptions {
		series = append(series, Series{Name: c, X: x, Y: ld.Relative[i]})
	}
	series = append(series, Series{Name: "mean", X: x, Y: ld.Mean, Dashed: true, Markers: true, Color: black})
	p.plot("layers.png", "Relative difference between θ_c and θ_std per layer ("+strings.Join(ld.Layers, ", ")+")", (&LineChart{
		Title: "Relative weight difference per layer", XLabel: "weight layer from the input (" + layerRange(ld.Layers) + ")", YLabel: "relative difference",
		Series: series, Height: 640,
	}).PNG)
}

func layerRange(ls []string) string {
	if len(ls) == 0 {
		return ""
	}
	return fmt.Sprintf("1 = %s to %d = %s", ls[0], len(ls), ls[len(ls)-1])
}

func observation2(p *page, res *experiment.Results) {
	cs := res.Cosine
	p.h(2, "Observation 2: signatures tell corruptions apart")
	p.para("Cosine similarity of the signatures over the first two layers (%s). Different corruptions: mean %.3f, largest %.3f (over all signature layers: mean %.3f).",
		strings.Join(cs.Layers, ", "), cs.MeanCross, cs.MaxCross, cs.MeanCrossAll)
	p.plot("cosine.png", "Cosine similarity of signatures across corruptions (first two layers)", (&Heatmap{
		Title: "Signature cosine similarity (" + strings.Join(cs.Layers, ", ") + ")", Rows: cs.Corruptions, Cols: cs.Corruptions,
		Values: cs.Matrix, Min: -1, Max: 1, Diverging: true, Digits: 2,
	}).PNG)
	if len(cs.Seeds) > 0 {
		p.para("The same corruption fine-tuned with a second training seed (same θ0, same images, another order): mean cosine %.3f over the first two layers, %.3f over all signature layers; %d of %d second-seed signatures are closest to their own corruption's first-seed signature.",
			cs.MeanSeed, cs.MeanSeedAll, cs.NearestCorrect, len(cs.Seeds))
		var rows [][]string
		for i, s := range cs.Seeds {
			own := ""
			for k, pt := range res.Patching {
				if pt.Corruption == s.Corruption {
					own = pct(res.Patching[k].PatchedAccuracy)
				}
			}
			_ = i
			rows = append(rows, []string{s.Corruption, f3(s.Cosine), f3(s.CosineAll), s.Nearest, own, pct(s.PatchedAccuracy)})
		}
		p.table([]string{"corruption", "cosine (first two layers)", "cosine (all)", "nearest seed-1 signature", "patched %, seed 1", "patched %, seed 2"}, rows)
	}
}

func observation3(p *page, res *experiment.Results) {
	cd := res.Dataset
	p.h(2, "Observation 3: signatures across datasets")
	if cd == nil {
		p.para("Not configured ([transfer] dataset is empty).")
		return
	}
	if !cd.Available {
		p.para("**Skipped:** %s", cd.Note)
		return
	}
	p.para("θ_std and θ_c fine-tuned from the same θ0 on %s (clean accuracy of its θ_std: %s %%). Cosine of the %s and %s signatures of the same corruption: mean %.3f; of different corruptions: %.3f. Applying the %s signature to the %s θ_std closes on average %.3f of the gap (pooled %.3f); its own signature closes %.3f (pooled %.3f).",
		cd.Dataset, pct(cd.StdClean), res.Data.Dataset, cd.Dataset, cd.MeanSame, cd.MeanOther, res.Data.Dataset, cd.Dataset, cd.MeanTransferGap, cd.PooledTransferGap, cd.MeanOwnGap, cd.PooledOwnGap)
	var rows [][]string
	var labels []string
	var std, tr, own, rob []float64
	for _, it := range cd.Corruptions {
		rows = append(rows, []string{it.Corruption, f3(it.Cosine), f3(it.CosineTop), pct(it.Std), pct(it.Transfer), pct(it.Own), pct(it.Robust), f3(it.TransferGap), f3(it.OwnGap), pct(it.TransferClean), pct(it.OwnClean)})
		labels = append(labels, it.Corruption)
		std, tr, own, rob = append(std, it.Std), append(tr, it.Transfer), append(own, it.Own), append(rob, it.Robust)
	}
	p.table([]string{"corruption", "cosine", "cosine (first two)", "θ_std %", "+ " + res.Data.Dataset + " RWS %", "+ own RWS %", "θ_c %", "gap closed (transfer)", "gap closed (own)", "clean %, transfer", "clean %, own"}, rows)
	p.plot("transfer-dataset.png", "Accuracy of the "+cd.Dataset+" models on its corrupted test sets", (&BarChart{
		Title: cd.Dataset + ": accuracy on the corruption's test set", YLabel: "accuracy", Categories: labels,
		Series: []BarSeries{{"std", std}, {"std + " + res.Data.Dataset + " RWS", tr}, {"std + own RWS", own}, {"robust", rob}},
	}).PNG)
	p.plot("cosine-datasets.png", "Cosine of "+res.Data.Dataset+" signatures (rows) with "+cd.Dataset+" signatures (columns), all signature layers", (&Heatmap{
		Title: res.Data.Dataset + " (rows) vs " + cd.Dataset + " (columns) signatures", Rows: labels, Cols: labels,
		Values: cd.Matrix, Min: -1, Max: 1, Diverging: true, Digits: 2,
	}).PNG)
}

func alpha(p *page, res *experiment.Results) {
	as := res.Alpha
	p.h(2, "Adjustable: scaling and removing a signature")
	p.para("θ_std + α·RWS_c on c's test set and on clean data, averaged over corruptions. The highest mean corrupted accuracy is at α = %g.", as.BestAlpha)
	var rows [][]string
	for k, a := range as.Values {
		rows = append(rows, []string{fmt.Sprint(a), pct(as.MeanCorrupted[k]), pct(as.MeanClean[k]), pts(as.MeanClean[k] - as.MeanClean[0])})
	}
	p.table([]string{"α", "mean corrupted %", "mean clean %", "clean change (pt)"}, rows)
	var series []Series
	for _, it := range as.Items {
		series = append(series, Series{Name: it.Corruption, X: as.Values, Y: it.Corrupted})
	}
	series = append(series, Series{Name: "mean corrupted", X: as.Values, Y: as.MeanCorrupted, Dashed: true, Markers: true, Color: black},
		Series{Name: "mean clean", X: as.Values, Y: as.MeanClean, Dashed: true, Markers: true, Color: axisGrey})
	p.plot("alpha.png", "Accuracy against the signature strength α (solid: each corruption's test set)", (&LineChart{
		Title: "Accuracy as the signature is scaled", XLabel: "a (signature strength)", YLabel: "accuracy", Series: series, Height: 640,
	}).PNG)
	u := as.Unpatch
	p.para("Removal: %s was patched with %s at α = %v by `rws patch` and unpatched by `rws unpatch`: %d of %d unpatched files are byte-for-byte identical to the original. The patched file %s (α = 1) is kept; read back from disk it scores %s %% on its corruption, the same model patched in memory %s %%.",
		u.Model, strings.Join(u.Signatures, ", "), u.Alphas, u.Identical, u.Checked, u.PatchedFile, pct(u.PatchedFileAccuracy), pct(u.InMemoryAccuracy))
}

func composition(p *page, res *experiment.Results) {
	co := res.Compose
	p.h(2, "Composable: all signatures at once")
	p.para("Every signature applied to θ_std in one patch, by several rules, against θ_std and a model fine-tuned from θ0 on all corruptions together. Rules with λ choose it on the held-out images (%d per set; the best mean corrupted accuracy within the configured clean-accuracy drop), never on the test sets.", co.Holdout)
	var rows [][]string
	var names []string
	var cor, cl []float64
	for _, rl := range co.Rules {
		lambda := ""
		if rl.Lambda != 0 {
			lambda = fmt.Sprint(rl.Lambda)
		}
		rows = append(rows, []string{rl.Name, rl.Description, lambda, pct(rl.MeanCorrupted), pct(rl.Clean)})
		names = append(names, rl.Name)
		cor, cl = append(cor, rl.MeanCorrupted), append(cl, rl.Clean)
	}
	p.table([]string{"rule", "how", "λ", "mean corrupted %", "clean %"}, rows)
	for _, rl := range co.Rules {
		if len(rl.Search) == 0 {
			continue
		}
		var parts []string
		for _, s := range rl.Search {
			parts = append(parts, fmt.Sprintf("λ %g: %s / %s", s.Lambda, pct(s.MeanCorrupted), pct(s.Clean)))
		}
		p.para("Held-out search for %s (mean corrupted %% / clean %%): %s.", rl.Name, strings.Join(parts, "; "))
		if rl.Note != "" {
			p.para("**%s:** %s.", rl.Name, rl.Note)
		}
	}
	p.plot("composition.png", "Composition rules: mean accuracy over the corrupted test sets, and clean accuracy", (&BarChart{
		Title: "All signatures at once", YLabel: "accuracy", Categories: names,
		Series: []BarSeries{{"mean corrupted", cor}, {"clean", cl}},
	}).PNG)
}

func update(p *page, res *experiment.Results) {
	u := res.Update
	p.h(2, "Transferable: an updated backbone")
	p.para("θ_std trained further on other clean images (clean accuracy %s %% → %s %%; the signature layers moved by %.1f%% relative), then patched with the signatures extracted against the old θ_std. Gap closed = (patched − updated) / (θ_c − updated): mean %.3f, pooled %.3f.",
		pct(u.StdClean), pct(u.UpdatedClean), 100*u.Differ, u.MeanGap, u.PooledGap)
	var rows [][]string
	var labels []string
	var up, pa, ro []float64
	for _, it := range u.Items {
		rows = append(rows, []string{it.Corruption, pct(it.Updated), pct(it.Patched), pct(it.Robust), f3(it.GapClosed), pct(it.Clean)})
		labels = append(labels, it.Corruption)
		up, pa, ro = append(up, it.Updated), append(pa, it.Patched), append(ro, it.Robust)
	}
	p.table([]string{"corruption", "updated %", "updated + RWS %", "θ_c %", "gap closed", "patched clean %"}, rows)
	p.plot("update.png", "Signatures applied to the updated backbone", (&BarChart{
		Title: "Updated backbone: accuracy on the corruption's test set", YLabel: "accuracy", Categories: labels,
		Series: []BarSeries{{"updated", up}, {"updated + RWS", pa}, {"robust", ro}},
	}).PNG)
}

func lightweight(p *page, res *experiment.Results) {
	p.h(2, "Lightweight: size against accuracy")
	if len(res.Light) == 0 {
		p.para("No variants configured.")
		return
	}
	p.para("Each variant extracted for every corruption and written as a signature file; size is the mean file size, ratio the full float32 model over it. Loss is against the unquantized signature with the same layers; clean accuracy on the first %d clean test images.", res.Matrix.OtherImages)
	var rows [][]string
	byCodec := map[string]*Series{}
	var order []string
	for _, l := range res.Light {
		rows = append(rows, []string{l.Codec, fmt.Sprint(l.Bits), fmt.Sprint(l.Layers), bytesStr(l.Bytes), fmt.Sprintf("%.1f×", l.Ratio), pct(l.MeanCorrupted), fmt.Sprintf("%+.2f", -l.LossPoints), pct(l.MeanClean), fmt.Sprintf("%.3f", l.RelError)})
		key := l.Codec
		label := fmt.Sprintf("%db", l.Bits)
		if l.Codec == "none" {
			key, label = "float32, by layers", fmt.Sprintf("%dL", l.Layers)
		}
		s, ok := byCodec[key]
		if !ok {
			s = &Series{Name: key, Markers: true}
			byCodec[key] = s
			order = append(order, key)
		}
		s.X, s.Y, s.Labels = append(s.X, l.Bytes), append(s.Y, l.MeanCorrupted), append(s.Labels, label)
	}
	p.table([]string{"codec", "bits", "layers", "size", "ratio", "mean corrupted %", "change (pt)", "clean %", "relative error"}, rows)
	var series []Series
	for _, k := range order {
		s := byCodec[k]
		idx := make([]int, len(s.X))
		for i := range idx {
			idx[i] = i
		}
		sort.Slice(idx, func(a, b int) bool { return s.X[idx[a]] < s.X[idx[b]] })
		var x, y []float64
		var l []string
		for _, i := range idx {
			x, y, l = append(x, s.X[i]), append(y, s.Y[i]), append(l, s.Labels[i])
		}
		series = append(series, Series{Name: s.Name, X: x, Y: y, Labels: l, Markers: true})
	}
	p.plot("lightweight.png", "Mean corrupted accuracy against signature file size (labels: bits, or layers kept)", (&LineChart{
		Title: "Signature size against accuracy", XLabel: "signature file size (log scale)", YLabel: "mean corrupted accuracy",
		Series: series, XLog: true, XBytes: true,
		HLines: []RefLine{{res.Summary.MeanStd, "std, no signature"}},
	}).PNG)
}

func matrix(p *page, res *experiment.Results) {
	mx := res.Matrix
	if len(mx.Patched) == 0 {
		return
	}
	p.h(2, "Accuracy matrix")
	p.para("θ_std + RWS_c (rows) on every evaluation set (columns), in points above or below θ_std on that set. The diagonal is each signature on its own corruption; off the diagonal, on the first %d images of each set.", mx.OtherImages)
	vals := make([][]float64, len(mx.Patched))
	lim := 0.0
	for i, row := range mx.Patched {
		vals[i] = make([]float64, len(row))
		for j, v := range row {
			vals[i][j] = 100 * (v - mx.Std[j])
			lim = math.Max(lim, math.Abs(vals[i][j]))
		}
	}
	lim = math.Max(1, math.Ceil(lim))
	p.plot("matrix.png", "Patched minus θ_std accuracy (points): signature rows, evaluation-set columns", (&Heatmap{
		Title: "Accuracy change from each signature (points)", Rows: mx.Corruptions, Cols: mx.Sets,
		Values: vals, Min: -lim, Max: lim, Diverging: true, Digits: 0,
	}).PNG)
	var rows [][]string
	for j, s := range mx.Sets {
		row := []string{s, pct(mx.Init[j]), pct(mx.Std[j])}
		if j > 0 {
			row = append(row, pct(mx.Robust[j-1][j]), pct(mx.Patched[j-1][j]))
		} else {
			row = append(row, "", "")
		}
		rows = append(rows, row)
	}
	p.table([]string{"set", "θ0 %", "θ_std %", "θ_c %", "θ_std + RWS_c %"}, rows)
}

func timings(p *page, res *experiment.Results) {
	p.h(2, "Where the time goes")
	var rows [][]string
	var names []string
	var vals []float64
	var total float64
	for _, t := range res.Timings {
		rows = append(rows, []string{t.Stage, secs(t.Seconds), t.Detail})
		if !strings.HasPrefix(t.Stage, "evaluation (all") {
			names = append(names, t.Stage)
			vals = append(vals, t.Seconds)
			total += t.Seconds
		}
	}
	rows = append(rows, []string{"**total**", secs(res.Seconds), fmt.Sprintf("%d CPUs", res.Env.CPUs)})
	p.table([]string{"stage", "seconds", "detail"}, rows)
	p.para("The last row before the total counts the evaluation time spent inside all stages. Training speed per model is in the Setup table.")
	var cached, cachedSec, trainSec float64
	var ex int
	for _, m := range res.Models {
		trainSec += m.Seconds
		ex += m.Examples
		if m.Cached {
			cached++
			cachedSec += m.Seconds
		}
	}
	if cached > 0 {
		p.para("%.0f of %d models came from the cache; training them took %.0f s when they were trained (recorded in their metadata). Training all %d models took %.0f s (%d examples, %.0f examples/s); a run that trains everything takes about %.0f s.",
			cached, len(res.Models), cachedSec, len(res.Models), trainSec, ex, float64(ex)/math.Max(trainSec, 1e-9), res.Seconds+cachedSec)
	}
	p.plot("timings.png", "Wall time per stage", (&BarChart{
		Title: fmt.Sprintf("Wall time per stage (%.0f s in all)", res.Seconds), YLabel: "seconds", Categories: shortStages(names),
		Series: []BarSeries{{"seconds", vals}}, Height: 760,
	}).PNG)
}

func shortStages(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.NewReplacer("θ_std", "std", "θ_c", "robust", "θ_all", "all", "θ0", "init", "(observation 3)", "").Replace(n)
		out[i] = strings.TrimSpace(out[i])
	}
	return out
}
