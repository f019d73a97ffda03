package report

import (
	"bytes"
	"encoding/json"
	"image/png"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/rws-project/rws/experiment"
)

func TestChartsArePNGsOfTheirSize(t *testing.T) {
	x := []float64{0, 0.5, 1, 1.5, 2}
	for _, tc := range []struct {
		name string
		w, h int // 0: the chart decides (heatmap height)
		draw func() ([]byte, error)
	}{
		{"line", 960, 560, (&LineChart{Title: "t", XLabel: "x", YLabel: "y", Series: []Series{{Name: "a", X: x, Y: []float64{0.1, 0.5, 0.9, 0.95, 0.97}}, {Name: "b", X: x, Y: []float64{0.9, 0.9, 0.89, 0.88, 0.8}, Dashed: true, Markers: true}}}).PNG},
		{"line, log x", 800, 500, (&LineChart{Title: "size", Width: 800, Height: 500, XLog: true, XBytes: true, Series: []Series{{Name: "linear", X: []float64{1e3, 1e4, 1e5}, Y: []float64{0.8, 0.9, 0.95}, Labels: []string{"1b", "4b", "32b"}}}}).PNG},
		{"line, fixed y", 960, 560, (&LineChart{Title: "fixed", YFixed: true, YMin: 0, YMax: 1, Series: []Series{{Name: "a", X: x, Y: []float64{2, math.NaN(), 0.5, 0.5, -1}}}}).PNG},
		{"bars", 960, 560, (&BarChart{Title: "bars", YLabel: "accuracy", Categories: []string{"shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate", "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges"},
			Series: []BarSeries{{"std", make([]float64, 15)}, {"robust", ones(15)}}, HLines: []RefLine{{0.7, "target"}}}).PNG},
		{"bars, short labels", 600, 400, (&BarChart{Title: "b", Width: 600, Height: 400, Categories: []string{"a", "b"}, Series: []BarSeries{{"s", []float64{-0.2, 0.4}}}}).PNG},
		// 496 = margin 16 + "stripe" 72 + gap 8 + 3 cells of 90 (the largest) + colour bar 110 + 20.
		{"heatmap", 496, 0, (&Heatmap{Title: "cos", Rows: []string{"fog", "stripe", "zigzag"}, Cols: []string{"fog", "stripe", "zigzag"}, Values: [][]float64{{1, 0.1, -0.2}, {0.1, 1, 0.3}, {-0.2, 0.3, 1}}, Min: -1, Max: 1, Diverging: true, Digits: 2}).PNG},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := tc.draw()
			if err != nil {
				t.Fatal(err)
			}
			img, err := png.Decode(bytes.NewReader(b))
			if err != nil {
				t.Fatalf("not a PNG: %v", err)
			}
			r := img.Bounds()
			if r.Dx() != tc.w || (tc.h > 0 && r.Dy() != tc.h) {
				t.Errorf("size %dx%d, want %dx%d", r.Dx(), r.Dy(), tc.w, tc.h)
			}
			// Something was drawn: the image is not a single colour.
			first := img.At(0, 0)
			varied := false
			for y := r.Min.Y; y < r.Max.Y && !varied; y += 3 {
				for x := r.Min.X; x < r.Max.X; x += 3 {
					if img.At(x, y) != first {
						varied = true
						break
					}
				}
			}
			if !varied {
				t.Errorf("the chart is blank")
			}
		})
	}
}

func TestChartErrors(t *testing.T) {
	for name, draw := range map[string]func() ([]byte, error){
		"no series":       (&LineChart{Title: "t"}).PNG,
		"x/y mismatch":    (&LineChart{Series: []Series{{X: []float64{1}, Y: []float64{1, 2}}}}).PNG,
		"no finite point": (&LineChart{Series: []Series{{X: []float64{math.NaN()}, Y: []float64{1}}}}).PNG,
		"bar mismatch":    (&BarChart{Categories: []string{"a"}, Series: []BarSeries{{"s", []float64{1, 2}}}}).PNG,
		"heatmap rows":    (&Heatmap{Rows: []string{"a"}, Cols: []string{"a"}, Values: [][]float64{{1, 2}}}).PNG,
	} {
		if _, err := draw(); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestTextWidth(t *testing.T) {
	// Glyph cells are 6 pixels wide at scale 1, whatever the rune.
	for s, want := range map[string]int{"": 0, "abc": 36, "θ_std": 60} {
		if got := textWidth(s, 2); got != want {
			t.Errorf("textWidth(%q, 2) = %d, want %d", s, got, want)
		}
	}
}

func ones(n int) []float64 {
	v := make([]float64, n)
	for i := range v {
		v[i] = 1
	}
	return v
}

// fakeResults is a small, complete Results as a study of three corruptions would produce.
func fakeResults(t *testing.T) *experiment.Results {
	t.Helper()
	cfg, err := experiment.Parse(`corruptions = ["fog", "rotate", "stripe"]`, false)
	if err != nil {
		t.Fatal(err)
	}
	names := cfg.Corruptions
	res := &experiment.Results{Format: experiment.ResultsFormat, Version: experiment.ResultsVersion, Config: *cfg,
		Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC), Seconds: 123, Env: experiment.Env{GoVersion: "go1.26", CPUs: 2},
		Data: experiment.DataInfo{Dataset: "mnist", TrainSize: 60000, TestSize: 10000, Test: 1000, Sets: append([]string{"clean"}, names...)}}
	res.Models = []experiment.ModelInfo{{Name: "init", File: "models/init.safetensors", Examples: 100, Seconds: 1}}
	res.Signatures = []experiment.SignatureInfo{{Corruption: "fog", Layers: []string{"features.0", "features.2"}}}
	for i, c := range names {
		p := experiment.Patching{Corruption: c, Geometric: c == "rotate", StdAccuracy: 0.5, RobustAccuracy: 0.9, PatchedAccuracy: 0.8 - 0.1*float64(i),
			StdCleanAccuracy: 0.99, PatchedCleanAccuracy: 0.985, RobustCleanAccuracy: 0.98}
		p.GapClosed = (p.PatchedAccuracy - p.StdAccuracy) / 0.4
		res.Patching = append(res.Patching, p)
	}
	res.Summary = experiment.PatchSummary{MeanGapClosed: 0.5, MeanStd: 0.5, MeanPatched: 0.7, MeanRobust: 0.9, StdClean: 0.99}
	res.Matrix = experiment.Matrix{Sets: res.Data.Sets, OtherImages: 200, Init: []float64{0.9, 0.4, 0.4, 0.4}, Std: []float64{0.99, 0.5, 0.5, 0.5}, Corruptions: names}
	for range names {
		res.Matrix.Robust = append(res.Matrix.Robust, []float64{0.98, 0.9, 0.9, 0.9})
		res.Matrix.Patched = append(res.Matrix.Patched, []float64{0.985, 0.8, 0.6, 0.7})
	}
	res.Layers = experiment.LayerDiffs{Layers: []string{"features.0", "features.2", "classifier.0"}, Corruptions: names,
		Relative: [][]float64{{0.3, 0.2, 0.05}, {0.2, 0.2, 0.1}, {0.4, 0.1, 0.02}}, Mean: []float64{0.3, 0.17, 0.06}, SignatureLayers: 2}
	res.Cosine = experiment.Cosine{Corruptions: names, Layers: []string{"features.0", "features.2"},
		Matrix: [][]float64{{1, 0.1, 0.2}, {0.1, 1, -0.1}, {0.2, -0.1, 1}}, Seeds: []experiment.SeedPair{{Corruption: "fog", Cosine: 0.95, Nearest: "fog"}}}
	res.Dataset = &experiment.CrossDataset{Dataset: "fashion-mnist", Note: "fashion-mnist is not installed; apt-get install dataset-fashion-mnist"}
	res.Alpha = experiment.AlphaSweep{Values: []float64{0, 1, 2}, MeanCorrupted: []float64{0.5, 0.7, 0.72}, MeanClean: []float64{0.99, 0.985, 0.97}, BestAlpha: 2}
	for _, c := range names {
		res.Alpha.Items = append(res.Alpha.Items, experiment.AlphaSeries{Corruption: c, Corrupted: []float64{0.5, 0.7, 0.72}, Clean: []float64{0.99, 0.985, 0.97}})
	}
	res.Compose = experiment.Composed{Sets: res.Data.Sets, Rules: []experiment.Rule{{Name: "std", MeanCorrupted: 0.5, Clean: 0.99, Accuracy: []float64{0.99, 0.5, 0.5, 0.5}},
		{Name: "ties", Lambda: 2, MeanCorrupted: 0.8, Clean: 0.98, Search: []experiment.LambdaScore{{Lambda: 1, MeanCorrupted: 0.7, Clean: 0.99}}}}}
	res.Update = experiment.UpdateTransfer{Items: []experiment.UpdateItem{{Corruption: "fog", Updated: 0.5, Patched: 0.7, Robust: 0.9, GapClosed: 0.5}}}
	res.Light = []experiment.LightPoint{{Codec: "none", Bits: 32, Layers: 2, Bytes: 40000, Ratio: 5, MeanCorrupted: 0.7},
		{Codec: "none", Bits: 32, Layers: 1, Bytes: 2000, Ratio: 90, MeanCorrupted: 0.6},
		{Codec: "linear", Bits: 2, Layers: 2, Bytes: 3000, Ratio: 60, MeanCorrupted: 0.69, LossPoints: 1}}
	res.Targets = []experiment.Target{{Claim: "holds", Want: "> 0", Shown: "1", Met: true}, {Claim: "fails", Want: "> 2", Shown: "1", Met: false}}
	res.Timings = []experiment.Timing{{Stage: "train θ0 (init)", Seconds: 10}, {Stage: "evaluation (all stages)", Seconds: 5}}
	return res
}

func TestWrite(t *testing.T) {
	dir := t.TempDir()
	res := fakeResults(t)
	if err := Write(dir, res); err != nil {
		t.Fatal(err)
	}
	html, err := os.ReadFile(filepath.Join(dir, "report.html"))
	if err != nil {
		t.Fatal(err)
	}
	// Self-contained: no address outside the document, every image inline.
	for _, bad := range []string{"http://", "https://", "<link", "<script", "url(", "//cdn"} {
		if bytes.Contains(html, []byte(bad)) {
			t.Errorf("report.html contains %q", bad)
		}
	}
	srcs := regexp.MustCompile(`src="([^"]*)"`).FindAllStringSubmatch(string(html), -1)
	if len(srcs) < 8 {
		t.Errorf("report.html has %d images, want the plots (≥ 8)", len(srcs))
	}
	for _, s := range srcs {
		if !strings.HasPrefix(s[1], "data:image/png;base64,") {
			t.Errorf("image source %.40q is not an embedded PNG", s[1])
		}
	}
	md, err := os.ReadFile(filepath.Join(dir, "report.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| fails | > 2 | 1 | **no** |", "**1 of 2 claims do not hold on this data:**", "apt-get install dataset-fashion-mnist", "![", "## Where the time goes"} {
		if !bytes.Contains(md, []byte(want)) {
			t.Errorf("report.md lacks %q", want)
		}
	}
	// Every plot the Markdown links exists and is a PNG.
	for _, m := range regexp.MustCompile(`\]\(plots/([^)]+)\)`).FindAllStringSubmatch(string(md), -1) {
		b, err := os.ReadFile(filepath.Join(dir, "plots", m[1]))
		if err != nil {
			t.Error(err)
			continue
		}
		if _, err := png.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("plots/%s: %v", m[1], err)
		}
	}
	var back experiment.Results
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back.Format != experiment.ResultsFormat || len(back.Patching) != 3 || back.Patching[1].Corruption != "rotate" {
		t.Errorf("results.json read back: format %q, %d patching rows", back.Format, len(back.Patching))
	}
	var raw map[string]any
	json.Unmarshal(b, &raw)
	row := raw["patching"].([]any)[0].(map[string]any)
	for _, k := range []string{"corruption", "std_accuracy", "robust_accuracy", "patched_accuracy", "gap_closed", "std_clean_accuracy", "patched_clean_accuracy"} {
		if _, ok := row[k]; !ok {
			t.Errorf("results.json patching rows lack %q", k)
		}
	}
}
