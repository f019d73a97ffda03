package experiment

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/internal/nn"
	"github.com/rws-project/rws/signature"
)

// tinyTOML is a study small enough for a unit test: three corruptions, a few hundred images.
const tinyTOML = `
name = "tiny"
corruptions = ["shot_noise", "rotate", "stripe"]
[data]
pretrain = 2000
finetune = 300
update = 200
holdout = 60
test = 150
matrix_test = 60
clean_test = 400
[pretrain]
epochs = 2
batch = 32
[finetune]
epochs = 1
batch = 32
[update]
epochs = 1
batch = 32
[multi]
epochs = 1
batch = 32
[seeds]
corruptions = ["shot_noise"]
[alpha]
values = [0, 1, 1.5]
[composition]
lambdas = [1]
[lightweight]
layers = [1, 4]
[[lightweight.codecs]]
codec = "gauss"
bits = [2]
[transfer]
dataset = "fashion-mnist:/nonexistent/fashion-mnist"
`

func tinyConfig(t *testing.T) *Config {
	t.Helper()
	cfg, err := Parse(tinyTOML, false)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func TestConfig(t *testing.T) {
	def, err := Load("", false)
	if err != nil {
		t.Fatal(err)
	}
	if len(def.Corruptions) != 15 || def.Layers != "first:4" || def.Arch != "cnn" {
		t.Errorf("default config: %d corruptions, layers %q, arch %q; want the 15 MNIST-C corruptions, first:4, cnn", len(def.Corruptions), def.Layers, def.Arch)
	}
	quick, err := Load("", true)
	if err != nil {
		t.Fatal(err)
	}
	if len(quick.Corruptions) >= len(def.Corruptions) || quick.Data.Finetune >= def.Data.Finetune {
		t.Errorf("--quick has %d corruptions and %d fine-tune images, want fewer than the default's %d and %d",
			len(quick.Corruptions), quick.Data.Finetune, len(def.Corruptions), def.Data.Finetune)
	}
	if quick.Finetune.LR != def.Finetune.LR {
		t.Errorf("--quick changed a key its table does not set: lr %v, want %v", quick.Finetune.LR, def.Finetune.LR)
	}
	// The printed configuration reads back to the same configuration.
	back, err := Parse(def.TOML(), false)
	if err != nil {
		t.Fatalf("the printed config does not parse: %v\n%s", err, def.TOML())
	}
	if back.TOML() != def.TOML() {
		t.Errorf("config does not round-trip:\n%s\nvs\n%s", back.TOML(), def.TOML())
	}
	for _, tc := range []struct{ name, toml, want string }{
		{"unknown key", "colour = 1", `unknown keys ["colour"]`},
		{"unknown nested key", "[data]\ntrain = 3", `"data.train"`},
		{"unknown corruption", `corruptions = ["fgo"]`, `corruption "fgo" is not in suite "mnist-c"`},
		{"layers", `layers = "auto"`, `layers "auto"`},
		{"alpha without 1", "[alpha]\nvalues = [0, 0.5]", "must include 0 and 1"},
		{"bad codec bits", "[[lightweight.codecs]]\ncodec = \"log\"\nbits = [1]", "log"},
		{"too much data", "[data]\npretrain = 70000", "training images"},
		{"clean test below test", "[data]\nclean_test = 500", "clean_test = 500 is below test = 1000"},
		{"clean test above the split", "[data]\nclean_test = 20000", "clean_test = 20000 but the test split has 10000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse(tc.toml, false)
			if err == nil && strings.HasPrefix(tc.want, "clean_test") || tc.name == "too much data" {
				var sp *splits
				if sp, err = loadSplits(cfg.Dataset, cfg.Seed, cfg.Data.Pretrain, cfg.Data.Finetune, cfg.Data.Update, cfg.Data.Holdout, cfg.Data.Test); err == nil {
					_, err = sp.cleanTest(cfg.Data.cleanTest())
				}
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one containing %q", err, tc.want)
			}
		})
	}
}

func TestTies(t *testing.T) {
	mk := func(name string, v ...float32) *sigValues {
		return &sigValues{name: name, names: []string{"w"}, values: map[string][]float32{"w": v}}
	}
	// trim 0.5 keeps the 2 largest magnitudes of each signature.
	a := mk("a", 4, -1, 2, 0.5)
	b := mk("b", 2, 3, -6, 0.1)
	got := ties([]*sigValues{a, b}, 0.5)["w"]
	// a keeps 4 and 2 (indices 0, 2); b keeps 3 and -6 (indices 1, 2).
	// index 0: only a's 4 → 4; index 1: only b's 3 → 3; index 2: 2 − 6 < 0 elects −, mean of {−6} → −6.
	want := []float32{4, 3, -6, 0}
	if !slices.Equal(got, want) {
		t.Errorf("ties = %v, want %v", got, want)
	}
}

func TestRunTiny(t *testing.T) {
	ctx := context.Background()
	cfg := tinyConfig(t)
	dir := t.TempDir()
	var lines []string
	res, err := Run(ctx, cfg, Options{Dir: dir, Log: func(s string) { lines = append(lines, s) }})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("run log:\n%s", strings.Join(lines, "\n"))
	if len(res.Patching) != 3 {
		t.Fatalf("%d patching rows, want 3", len(res.Patching))
	}
	for _, f := range []string{"models/init.safetensors", "models/std.safetensors", "models/robust-rotate.safetensors",
		"models/std-updated.safetensors", "models/robust-all.safetensors", "signatures/stripe.rws", "signatures/seed2/shot_noise.rws"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("missing output: %v", err)
		}
	}
	if res.Dataset == nil || res.Dataset.Available || !strings.Contains(res.Dataset.Note, "apt-get install dataset-fashion-mnist") {
		t.Errorf("a missing transfer dataset should be skipped with an install hint, got %+v", res.Dataset)
	}
	if !res.Alpha.Unpatch.Exact || res.Alpha.Unpatch.Checked != 2 {
		t.Errorf("unpatch check: %+v", res.Alpha.Unpatch)
	}
	if res.Alpha.Unpatch.PatchedFileAccuracy != res.Alpha.Unpatch.InMemoryAccuracy {
		t.Errorf("patched file accuracy %v, in-memory patch %v: the study's patch arithmetic differs from rws patch",
			res.Alpha.Unpatch.PatchedFileAccuracy, res.Alpha.Unpatch.InMemoryAccuracy)
	}

	// Recompute the report's numbers from the files it saved: rebuild the test sets from the
	// config, patch θ_std with each signature file through package signature, evaluate.
	sp, err := loadSplits(cfg.Dataset, cfg.Seed, cfg.Data.Pretrain, cfg.Data.Finetune, cfg.Data.Update, cfg.Data.Holdout, cfg.Data.Test)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.corruptAll(ctx, mustSuite(t, cfg.Suite), cfg, cfg.Corruptions, nil); err != nil {
		t.Fatal(err)
	}
	evalFile := func(path string, s set) float64 {
		t.Helper()
		m, err := nn.LoadCheckpoint(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := nn.Evaluate(ctx, m, s.im, s.labels)
		if err != nil {
			t.Fatal(err)
		}
		return r.Accuracy
	}
	stdPath := filepath.Join(dir, "models", "std.safetensors")
	cl, err := sp.cleanTest(cfg.Data.cleanTest())
	if err != nil {
		t.Fatal(err)
	}
	clean := toSet("clean", cl)
	if clean.im.N != 400 || res.Data.CleanTest != 400 {
		t.Fatalf("clean test set of %d images, results say %d, want 400", clean.im.N, res.Data.CleanTest)
	}
	if got := evalFile(stdPath, clean); got != res.Summary.StdClean {
		t.Errorf("θ_std clean accuracy from the saved model %v, report %v", got, res.Summary.StdClean)
	}
	// The matrix's clean column uses the first Test of those images, like the corrupted sets.
	if got := evalFile(stdPath, toSet("clean", sp.testBase)); got != res.Matrix.Std[0] {
		t.Errorf("θ_std clean accuracy on the first %d images %v, matrix %v", cfg.Data.Test, got, res.Matrix.Std[0])
	}
	for _, p := range res.Patching {
		test := toSet(p.Corruption, sp.testC[p.Corruption])
		if got := evalFile(filepath.Join(dir, "models", "robust-"+p.Corruption+".safetensors"), test); got != p.RobustAccuracy {
			t.Errorf("%s: robust accuracy from the saved model %v, report %v", p.Corruption, got, p.RobustAccuracy)
		}
		if got := evalFile(stdPath, test); got != p.StdAccuracy {
			t.Errorf("%s: std accuracy from the saved model %v, report %v", p.Corruption, got, p.StdAccuracy)
		}
		sig, err := signature.Read(filepath.Join(dir, "signatures", p.Corruption+".rws"))
		if err != nil {
			t.Fatal(err)
		}
		if sig.Variant != signature.Projection || len(sig.Layers) != 4 || sig.Layers[3] != "features.7" {
			t.Errorf("%s: signature %s over %v, want projection over features.0 … features.7", p.Corruption, sig.Variant, sig.Layers)
		}
		out := filepath.Join(t.TempDir(), "patched.safetensors")
		if _, err := signature.Patch(ctx, stdPath, out, []signature.Applied{{Sig: sig, Alpha: 1}}, signature.PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		patched := evalFile(out, test)
		if patched != p.PatchedAccuracy {
			t.Errorf("%s: patched accuracy from rws patch %v, report %v", p.Corruption, patched, p.PatchedAccuracy)
		}
		if got := evalFile(out, clean); got != p.PatchedCleanAccuracy {
			t.Errorf("%s: patched clean accuracy from rws patch %v, report %v", p.Corruption, got, p.PatchedCleanAccuracy)
		}
		if d := 100 * (res.Summary.StdClean - p.PatchedCleanAccuracy); math.Abs(d-p.CleanDrop) > 1e-9 || p.CleanDropSE < 0 {
			t.Errorf("%s: clean drop %v ± %v, accuracies say %v", p.Corruption, p.CleanDrop, p.CleanDropSE, d)
		}
		if g := gap(patched, p.StdAccuracy, p.RobustAccuracy); math.Abs(g-p.GapClosed) > 1e-12 {
			t.Errorf("%s: gap closed recomputed %v, report %v", p.Corruption, g, p.GapClosed)
		}
	}
	if len(res.Targets) == 0 || len(res.Timings) == 0 {
		t.Errorf("no targets or timings")
	}

	// A second run into the same folder needs --force and reuses every model.
	if _, err := Run(ctx, cfg, Options{Dir: dir}); !errors.Is(err, ErrExists) {
		t.Errorf("rerun without force: %v, want ErrExists", err)
	}
	res2, err := Run(ctx, cfg, Options{Dir: dir, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res2.Models {
		if !m.Cached {
			t.Errorf("model %s was trained again", m.Name)
		}
	}
	if !slices.EqualFunc(res.Patching, res2.Patching, func(a, b Patching) bool { return a == b }) {
		t.Errorf("a rerun from the cache gives other numbers:\n%+v\n%+v", res.Patching, res2.Patching)
	}
	// Changing the fine-tune recipe retrains the fine-tunes and the model updated from θ_std,
	// but neither θ0 nor the model fine-tuned on all corruptions, which has its own recipe.
	cfg.Finetune.LR = 0.02
	res3, err := Run(ctx, cfg, Options{Dir: dir, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range res3.Models {
		wantCached := m.Name == "init" || m.Name == "robust-all"
		if m.Cached != wantCached {
			t.Errorf("after changing [finetune] lr, model %s cached = %v, want %v", m.Name, m.Cached, wantCached)
		}
	}
}

func mustSuite(t *testing.T, name string) *corrupt.Suite {
	t.Helper()
	s, err := corrupt.Lookup(name)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPairedDrop checks the paired drop and its standard error against values worked by hand.
func TestPairedDrop(t *testing.T) {
	// 10 images: a right on 8, b right on 7; they disagree on 3 (a alone on 2, b alone on 1).
	a := []bool{true, true, true, true, true, true, true, true, false, false}
	b := []bool{true, true, true, true, true, true, false, false, true, false}
	drop, se := pairedDrop(a, b)
	// Differences: +1 twice, −1 once, 0 seven times: mean 0.1, E[d²] 0.3, variance of the
	// mean (0.3 − 0.01)/10 = 0.029.
	if math.Abs(drop-10) > 1e-12 || math.Abs(se-100*math.Sqrt(0.029)) > 1e-12 {
		t.Errorf("pairedDrop = %v ± %v, want 10 ± %v", drop, se, 100*math.Sqrt(0.029))
	}
	if d, e := pairedDrop(a, a); d != 0 || e != 0 {
		t.Errorf("identical results: %v ± %v, want 0 ± 0", d, e)
	}
	if d, e := pairedDrop(nil, nil); d != 0 || e != 0 {
		t.Errorf("no images: %v ± %v", d, e)
	}
}
