package nn

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

func TestArchs(t *testing.T) {
	for _, tc := range []struct {
		arch    string
		cfg     Config
		params  int // PyTorch's sum(p.numel() for p in model.parameters())
		entries int // len(model.state_dict())
		modules string
	}{
		{"cnn", Config{1, 28, 28, 10}, 467818, 12, "features.0 features.2 features.5 features.7 classifier.0 classifier.2"},
		{"vgg11", Config{3, 32, 32, 10}, 9225610, 18, ""},
		{"vgg16", Config{1, 28, 28, 10}, 14718666, 28, ""},
		{"resnet20", Config{3, 32, 32, 10}, 272474, 128, ""},
	} {
		t.Run(tc.arch, func(t *testing.T) {
			m, err := New(tc.arch, tc.cfg, 1)
			if err != nil {
				t.Fatal(err)
			}
			if got := m.NumParams(); got != tc.params {
				t.Errorf("NumParams = %d, want %d", got, tc.params)
			}
			if got := len(m.StateDict()); got != tc.entries {
				t.Errorf("%d state_dict entries, want %d", got, tc.entries)
			}
			if tc.modules != "" && strings.Join(m.Modules(), " ") != tc.modules {
				t.Errorf("modules %q, want %q", m.Modules(), tc.modules)
			}
			logits, err := m.Logits(context.Background(), Images{Pix: make([]uint8, 2*tc.cfg.Height*tc.cfg.Width*tc.cfg.InChannels),
				N: 2, H: tc.cfg.Height, W: tc.cfg.Width, C: tc.cfg.InChannels})
			if err != nil {
				t.Fatal(err)
			}
			if len(logits) != 2*tc.cfg.Classes {
				t.Errorf("%d logits, want %d", len(logits), 2*tc.cfg.Classes)
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	for _, tc := range []struct {
		arch string
		cfg  Config
		want string
	}{
		{"lenet", Config{1, 28, 28, 10}, `unsupported architecture "lenet"`},
		{"cnn", Config{0, 28, 28, 10}, "must be positive"},
		{"cnn", Config{1, 3, 3, 10}, "too small"},
	} {
		_, err := New(tc.arch, tc.cfg, 0)
		if err == nil || !errors.Is(err, ErrArch) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%q, %+v) = %v, want ErrArch containing %q", tc.arch, tc.cfg, err, tc.want)
		}
	}
}

func TestSaveLoad(t *testing.T) {
	dir := t.TempDir()
	m, err := New("resnet20", Config{1, 12, 12, 4}, 3)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := randomImages(8, 12, 12, 1, 4)
	x, _ := m.PrepareInput(im, nil)
	if _, err := m.Forward(x, im.N, true); err != nil { // moves running statistics and the counter
		t.Fatal(err)
	}
	if err := m.SetMeta("rws.train", `{"epochs":1}`); err != nil {
		t.Fatal(err)
	}
	if err := m.SetMeta(MetaArch, "x"); err == nil {
		t.Error("SetMeta accepted a derived key")
	}
	path := filepath.Join(dir, "m.safetensors")
	if err := m.Save(path, false); err != nil {
		t.Fatal(err)
	}
	if err := m.Save(path, false); !errors.Is(err, atomicfile.ErrExists) {
		t.Errorf("second Save without force: %v, want ErrExists", err)
	}
	if err := m.Save(path, true); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := r.Info("bn1.num_batches_tracked")
	if in.DType != tensor.I64 || len(in.Shape) != 0 {
		t.Errorf("num_batches_tracked stored as %s %v, want I64 []", in.DType, in.Shape)
	}
	meta := r.Metadata()
	r.Close()
	for k, want := range map[string]string{MetaArch: "resnet20", MetaFormat: "pt", "rws.train": `{"epochs":1}`,
		MetaArchConfig: `{"in_channels":1,"height":12,"width":12,"classes":4}`,
		MetaPreprocess: `{"scale":255,"mean":[0],"std":[1]}`} {
		if meta[k] != want {
			t.Errorf("metadata %s = %q, want %q", k, meta[k], want)
		}
	}
	got, err := LoadCheckpoint(path)
	if err != nil {
		t.Fatal(err)
	}
	a, b := m.StateDict(), got.StateDict()
	for i := range a {
		if a[i].Name != b[i].Name || !slices.Equal(a[i].Data, b[i].Data) {
			t.Errorf("tensor %s differs after save and load", a[i].Name)
		}
	}
	if v, _ := got.Meta("rws.train"); v != `{"epochs":1}` {
		t.Errorf("extra metadata lost: %q", v)
	}
	if nbt, _ := got.Tensor("bn1.num_batches_tracked"); nbt.Data[0] != 1 {
		t.Errorf("num_batches_tracked = %v, want 1", nbt.Data)
	}
}

func TestFromMetadataErrors(t *testing.T) {
	good := func() map[string]string {
		m, _ := New("cnn", Config{1, 8, 8, 3}, 0)
		return m.Metadata()
	}
	for _, tc := range []struct {
		name string
		edit func(map[string]string)
		want string
	}{
		{"no arch", func(m map[string]string) { delete(m, MetaArch) }, "no rws.arch"},
		{"unknown arch", func(m map[string]string) { m[MetaArch] = "mlp" }, `"mlp"`},
		{"bad config", func(m map[string]string) { m[MetaArchConfig] = `{"in_channels":1,"heigth":8}` }, "heigth"},
		{"missing config", func(m map[string]string) { delete(m, MetaArchConfig) }, "missing"},
		{"bad preprocess", func(m map[string]string) { m[MetaPreprocess] = `{"scale":255,"mean":[0,0],"std":[1,1]}` }, "does not fit 1 channels"},
		{"future version", func(m map[string]string) { m[MetaVersion] = "9" }, `version "9"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			meta := good()
			tc.edit(meta)
			if _, err := FromMetadata(meta); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("FromMetadata: %v, want error containing %q", err, tc.want)
			}
		})
	}
}

func TestLoadStateDictErrors(t *testing.T) {
	m, _ := New("cnn", Config{1, 8, 8, 3}, 0)
	sd := m.StateDict()
	for _, tc := range []struct {
		name string
		ts   []Tensor
		want string
	}{
		{"missing", sd[1:], `lacks 1 entries of cnn: ["features.0.weight"]`},
		{"extra", append(slices.Clone(sd), Tensor{Name: "fc.weight", Shape: []int{1}, Data: []float32{0}}), `"fc.weight" is not part of cnn`},
		{"duplicate", append(slices.Clone(sd), sd[0]), "appears twice"},
		{"shape", append([]Tensor{{Name: sd[0].Name, Shape: []int{32, 1, 9}, Data: sd[0].Data}}, sd[1:]...), "shape [32 1 9]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := m.LoadStateDict(tc.ts); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("LoadStateDict: %v, want error containing %q", err, tc.want)
			}
		})
	}
}

// TestRecalibrate checks the exact running mean: after recalibration on 300 images (batches of
// 256 and 44), bn1's running mean and variance are the example-weighted means of the two
// batches' statistics of conv1's output, which BN does not influence.
func TestRecalibrate(t *testing.T) {
	m, err := New("resnet20", Config{3, 8, 8, 10}, 5)
	if err != nil {
		t.Fatal(err)
	}
	im, _ := randomImages(300, 8, 8, 3, 6)
	conv1 := m.net.layers[0].(*conv2d)
	bn1 := m.net.layers[1].(*batchNorm)
	c, hw := conv1.co.c, conv1.co.h*conv1.co.w
	wantMean, wantVar := make([]float64, c), make([]float64, c)
	for _, b := range [][2]int{{0, 256}, {256, 300}} {
		x, _ := m.PrepareInput(im.Slice(b[0], b[1]), nil)
		n := b[1] - b[0]
		y := conv1.forward(x, n, false)
		for ch := 0; ch < c; ch++ {
			var s, ss float64
			for i := 0; i < n; i++ {
				for _, v := range y[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					s += float64(v)
				}
			}
			mean := s / float64(n*hw)
			for i := 0; i < n; i++ {
				for _, v := range y[(i*c+ch)*hw : (i*c+ch+1)*hw] {
					ss += (float64(v) - mean) * (float64(v) - mean)
				}
			}
			wantMean[ch] += mean * float64(n) / 300
			wantVar[ch] += ss / float64(n*hw-1) * float64(n) / 300
		}
	}
	if err := Recalibrate(context.Background(), m, im); err != nil {
		t.Fatal(err)
	}
	for ch := 0; ch < c; ch++ {
		if d := math.Abs(float64(bn1.runMean.w[ch]) - wantMean[ch]); d > 1e-5*(1+math.Abs(wantMean[ch])) {
			t.Errorf("running_mean[%d] = %g, want %g", ch, bn1.runMean.w[ch], wantMean[ch])
		}
		if d := math.Abs(float64(bn1.runVar.w[ch]) - wantVar[ch]); d > 1e-5*(1+wantVar[ch]) {
			t.Errorf("running_var[%d] = %g, want %g", ch, bn1.runVar.w[ch], wantVar[ch])
		}
	}
	if bn1.nbt.w[0] != 2 {
		t.Errorf("num_batches_tracked = %v, want 2", bn1.nbt.w[0])
	}
	if bn1.exact {
		t.Error("batch norm left in exact-average mode")
	}
	cnn, _ := New("cnn", Config{1, 8, 8, 3}, 0)
	if err := Recalibrate(context.Background(), cnn, Images{Pix: make([]uint8, 128), N: 2, H: 8, W: 8, C: 1}); err == nil {
		t.Error("Recalibrate of a model without batch norm did not fail")
	}
}

// TestRecalibrateBlend checks that a blend of α keeps α of the re-estimated statistics and 1 − α
// of the old ones, for every batch-norm layer, and refuses α outside [0, 1].
func TestRecalibrateBlend(t *testing.T) {
	im, _ := randomImages(100, 8, 8, 3, 6)
	stats := func(m *Model) []float32 {
		var out []float32
		for _, b := range m.bns {
			out = append(out, b.runMean.w...)
			out = append(out, b.runVar.w...)
		}
		return out
	}
	fresh := func() *Model {
		m, err := New("resnet20", Config{3, 8, 8, 10}, 5)
		if err != nil {
			t.Fatal(err)
		}
		// Statistics unlike the defaults, so that a blend is told apart from either end.
		for i, b := range m.bns {
			for k := range b.runMean.w {
				b.runMean.w[k], b.runVar.w[k] = float32(i+k)*0.01, 2+float32(k)*0.1
			}
		}
		return m
	}
	ctx := context.Background()
	old := stats(fresh())
	full := fresh()
	if err := Recalibrate(ctx, full, im); err != nil {
		t.Fatal(err)
	}
	newStats := stats(full)
	for _, a := range []float64{0, 0.25, 1} {
		m := fresh()
		if err := RecalibrateBlend(ctx, m, im, a); err != nil {
			t.Fatal(err)
		}
		for i, v := range stats(m) {
			want := (1-float32(a))*old[i] + float32(a)*newStats[i]
			if math.Abs(float64(v-want)) > 1e-6*(1+math.Abs(float64(want))) {
				t.Fatalf("α = %v: statistic %d = %v, want %v", a, i, v, want)
			}
		}
	}
	for _, a := range []float64{-0.1, 1.5, math.NaN()} {
		if err := RecalibrateBlend(ctx, fresh(), im, a); err == nil {
			t.Errorf("blend %v accepted", a)
		}
	}
}

// TestTrainDeterministic: the same recipe and seed give bit-identical weights.
func TestTrainDeterministic(t *testing.T) {
	im, labels := randomImages(200, 12, 12, 3, 9)
	var first []Tensor
	for run := 0; run < 2; run++ {
		m, _ := New("resnet20", Config{3, 12, 12, 10}, 1)
		r := DefaultRecipe(2)
		r.Batch, r.Seed, r.CropPad, r.Flip = 64, 3, 2, true
		if _, err := Train(context.Background(), m, im, labels, r, nil); err != nil {
			t.Fatal(err)
		}
		if run == 0 {
			first = m.StateDict()
			continue
		}
		for i, tn := range m.StateDict() {
			if !slices.Equal(tn.Data, first[i].Data) {
				t.Fatalf("%s differs between two runs with the same seed", tn.Name)
			}
		}
	}
}

func TestAugment(t *testing.T) {
	im, _ := randomImages(1, 4, 5, 2, 1)
	out := make([]uint8, len(im.Pix))
	// With no padding the crop is the image; a flip mirrors each row.
	for seed := uint64(0); seed < 8; seed++ {
		augment(newRand(seed), im, out, 0, true)
		same, mirrored := slices.Equal(out, im.Pix), true
		for y := 0; y < 4; y++ {
			for x := 0; x < 5; x++ {
				for c := 0; c < 2; c++ {
					mirrored = mirrored && out[(y*5+x)*2+c] == im.Pix[(y*5+4-x)*2+c]
				}
			}
		}
		if !same && !mirrored {
			t.Fatalf("seed %d: output is neither the image nor its mirror", seed)
		}
	}
	// With padding, every output pixel is zero or the input pixel at a common offset.
	augment(newRand(3), im, out, 2, false)
	found := false
	for dy := -2; dy <= 2 && !found; dy++ {
		for dx := -2; dx <= 2 && !found; dx++ {
			ok := true
			for y := 0; y < 4; y++ {
				for x := 0; x < 5; x++ {
					sy, sx := y+dy, x+dx
					for c := 0; c < 2; c++ {
						want := uint8(0)
						if sy >= 0 && sy < 4 && sx >= 0 && sx < 5 {
							want = im.Pix[(sy*5+sx)*2+c]
						}
						ok = ok && out[(y*5+x)*2+c] == want
					}
				}
			}
			found = ok
		}
	}
	if !found {
		t.Error("padded crop is not a shifted copy of the image")
	}
}

func TestImagesValidation(t *testing.T) {
	m, _ := New("cnn", Config{1, 8, 8, 3}, 0)
	ctx := context.Background()
	if _, err := m.Logits(ctx, Images{Pix: make([]uint8, 10), N: 1, H: 8, W: 8, C: 1}); err == nil {
		t.Error("Logits accepted 10 pixels for one 8×8 image")
	}
	if _, err := m.Logits(ctx, Images{Pix: make([]uint8, 3*64), N: 1, H: 8, W: 8, C: 3}); err == nil || !strings.Contains(err.Error(), "takes 8×8×1") {
		t.Errorf("Logits of RGB images on a grey model: %v", err)
	}
	if _, err := Evaluate(ctx, m, Images{Pix: make([]uint8, 64), N: 1, H: 8, W: 8, C: 1}, []int{3}); err == nil {
		t.Error("Evaluate accepted label 3 for 3 classes")
	}
}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, 0)) }

// TestResume: one epoch, save, resume, one more epoch gives the same weights bit for bit as two
// epochs in one go, for SGD and Adam.
func TestResume(t *testing.T) {
	im, labels := randomImages(150, 8, 8, 1, 11)
	ctx := context.Background()
	for _, opt := range []string{SGD, Adam} {
		t.Run(opt, func(t *testing.T) {
			r := DefaultRecipe(2)
			r.Optimizer, r.Batch, r.Seed, r.Schedule = opt, 32, 4, Cosine
			straight, _ := New("resnet20", Config{1, 8, 8, 10}, 2)
			if _, err := Train(ctx, straight, im, labels, r, nil); err != nil {
				t.Fatal(err)
			}
			m, _ := New("resnet20", Config{1, 8, 8, 10}, 2)
			tr, err := NewTrainer(m, r)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tr.RunEpoch(ctx, im, labels, nil); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(t.TempDir(), "state.safetensors")
			if err := tr.SaveState(path, map[string]string{"cli.best": "0.5"}, false); err != nil {
				t.Fatal(err)
			}
			m2, tr2, meta, err := ResumeTrainer(path)
			if err != nil {
				t.Fatal(err)
			}
			if tr2.Epoch() != 1 || meta["cli.best"] != "0.5" {
				t.Fatalf("resumed at epoch %d with extra %q", tr2.Epoch(), meta["cli.best"])
			}
			if _, err := tr2.RunEpoch(ctx, im, labels, nil); err != nil {
				t.Fatal(err)
			}
			if !tr2.Done() {
				t.Error("trainer not done after the last epoch")
			}
			want := straight.StateDict()
			for i, tn := range m2.StateDict() {
				if !slices.Equal(tn.Data, want[i].Data) {
					t.Fatalf("%s differs between resumed and straight training", tn.Name)
				}
			}
		})
	}
}

// TestBackwardNeedsForward: Logits does not keep what Backward needs, and Backward says so.
func TestBackwardNeedsForward(t *testing.T) {
	m, _ := New("cnn", Config{1, 8, 8, 3}, 0)
	im, _ := randomImages(2, 8, 8, 1, 1)
	logits, err := m.Logits(context.Background(), im)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := m.Backward(make([]float32, len(logits)), false); err == nil {
		t.Error("Backward after Logits did not fail")
	}
	x, _ := m.PrepareInput(im, nil)
	y, _ := m.Forward(x, im.N, false)
	if !slices.Equal(y, logits) {
		t.Error("Forward and Logits disagree")
	}
	if _, err := m.Backward(make([]float32, len(y)), true); err != nil {
		t.Error(err)
	}
}
