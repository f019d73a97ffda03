package signature

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// rawTensor returns the stored bytes of one tensor of a checkpoint.
func rawTensor(t testing.TB, path, name string) []byte {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := r.ReadRaw(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decode64(t testing.TB, dt tensor.DType, raw []byte) []float64 {
	t.Helper()
	out := make([]float64, len(raw)/dt.Size())
	if err := tensor.DecodeFloat64(dt, raw, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// round64 rounds float64 values once into dt: Go's conversion for F32 (and none for F64);
// EncodeFloat64, checked at every halfway point by package tensor's tests, for F16 and BF16.
func round64(t testing.TB, dt tensor.DType, v []float64) []byte {
	t.Helper()
	out := make([]byte, len(v)*dt.Size())
	switch dt {
	case tensor.F32:
		f := make([]float32, len(v))
		for i, x := range v {
			f[i] = float32(x)
		}
		tensor.EncodeFloat32(dt, f, out)
	default:
		if err := tensor.EncodeFloat64(dt, v, out); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func hexSum(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

var (
	stats1 = []string{"features.1.running_mean", "features.1.running_var"}
	stats2 = []string{"features.1.running_mean", "features.1.running_var", "features.4.running_mean", "features.4.running_var"}
)

// TestExtractStats checks that a signature extracted with BNStats stores the robust model's
// running statistics of the chosen batch-norm layers byte for byte (one robust model), or their
// float64 mean rounded once (two), with fingerprints; that the signature tensors do not change;
// and that the file is version 2 and reads back equal.
func TestExtractStats(t *testing.T) {
	tests := []struct {
		name   string
		dt     tensor.DType
		robust int
		layers string
		want   []string
	}{
		{"F32 one robust", tensor.F32, 1, "first:1", stats1},
		{"F32 two robust", tensor.F32, 2, "first:2", stats2},
		{"F16 two robust", tensor.F16, 2, "first:2", stats2},
		{"BF16 one robust", tensor.BF16, 1, "first:3", stats2},
		{"F64 two robust", tensor.F64, 2, "first:1", stats1},
		{"pattern", tensor.F32, 2, "features.0,features.4.bias", []string{"features.4.running_mean", "features.4.running_var"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := makeFamily(t, dir, smallCNN, tc.dt, tc.robust)
			opts := ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: tc.layers, Name: "fog"}
			plain := mustExtract(t, opts)
			opts.BNStats = true
			s := writeSig(t, mustExtract(t, opts), filepath.Join(dir, "fog.rws"))
			if s.Version != StatsVersion {
				t.Errorf("version %d, want %d", s.Version, StatsVersion)
			}
			var names []string
			for _, st := range s.Stats {
				names = append(names, st.Name)
			}
			if !slices.Equal(names, tc.want) {
				t.Fatalf("statistics %v, want %v", names, tc.want)
			}
			for _, st := range s.Stats {
				if st.DType != tc.dt {
					t.Errorf("%s stored as %s, want the robust models' %s", st.Name, st.DType, tc.dt)
				}
				var want []byte
				sum := make([]float64, st.Elements())
				for k, p := range f.robust {
					raw := rawTensor(t, p, st.Name)
					if st.Sources.Robust[k] != hexSum(raw) {
						t.Errorf("%s: robust fingerprint %d is wrong", st.Name, k)
					}
					for i, v := range decode64(t, tc.dt, raw) {
						sum[i] += v
					}
					want = raw
				}
				if tc.robust > 1 {
					for i := range sum {
						sum[i] /= float64(tc.robust)
					}
					want = round64(t, tc.dt, sum)
				}
				if !bytes.Equal(st.raw, want) {
					t.Errorf("%s: stored bytes are not the robust models' mean", st.Name)
				}
				if st.Sources.Clean != hexSum(rawTensor(t, f.clean, st.Name)) {
					t.Errorf("%s: clean fingerprint is wrong", st.Name)
				}
			}
			if len(s.Tensors) != len(plain.Tensors) {
				t.Fatalf("%d signature tensors, %d without statistics", len(s.Tensors), len(plain.Tensors))
			}
			for i, st := range s.Tensors {
				if st.Name != plain.Tensors[i].Name || !bytes.Equal(st.raw, plain.Tensors[i].raw) {
					t.Errorf("signature tensor %s differs from the extraction without statistics", st.Name)
				}
			}
			d := s.Describe().String()
			for _, w := range []string{"statistics:  batch-norm running_mean and running_var of", "rws patch --bn-stats signature"} {
				if !strings.Contains(d, w) {
					t.Errorf("description lacks %q:\n%s", w, d)
				}
			}
		})
	}
}

func TestExtractStatsErrors(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	var noBN []entry // smallCNN without its batch norms
	for _, e := range smallCNN {
		if !strings.HasPrefix(e.name, "features.1.") && !strings.HasPrefix(e.name, "features.4.") {
			noBN = append(noBN, e)
		}
	}
	os.Mkdir(filepath.Join(dir, "nobn"), 0o755)
	nobn := makeFamily(t, filepath.Join(dir, "nobn"), noBN, tensor.F32, 1)
	half := baseModel(smallCNN, 10).write(t, filepath.Join(dir, "half.safetensors"), smallCNN, tensor.F16)
	var fewer []entry
	for _, e := range smallCNN {
		if e.name != "features.1.running_var" {
			fewer = append(fewer, e)
		}
	}
	missing := baseModel(fewer, 10).write(t, filepath.Join(dir, "missing.safetensors"), fewer, tensor.F32)
	tests := []struct {
		name string
		opts ExtractOptions
		want string
		is   error
	}{
		{"no batch norm selected", ExtractOptions{Clean: f.clean, Robust: f.robust, Layers: "features.7,features.10"}, "in the selected layers (features.7, features.10)", ErrNoStats},
		{"model without batch norm", ExtractOptions{Clean: nobn.clean, Robust: nobn.robust, Layers: "first:2"}, "no batch-norm running statistics", ErrNoStats},
		{"types differ", ExtractOptions{Clean: f.clean, Robust: []string{f.robust[0], half}, Layers: "first:1"}, "averaging needs one type", nil},
		{"missing", ExtractOptions{Clean: f.clean, Robust: []string{f.robust[0], missing}, Layers: "first:1"}, `"features.1.running_var" is missing`, ErrMismatch},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Spec, tc.opts.BNStats = quant.Spec{Codec: quant.None}, true
			_, _, err := Extract(context.Background(), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
		})
	}
}

// TestStatsFileVersion checks that a signature without statistics is still written as version 1
// and one with them as version 2, and that Read refuses a damaged or inconsistent statistics part.
func TestStatsFileVersion(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	for _, withStats := range []bool{false, true} {
		p := filepath.Join(dir, "s.rws")
		writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2", BNStats: withStats}), p)
		r, err := safetensors.Open(p)
		if err != nil {
			t.Fatal(err)
		}
		meta := r.Metadata()
		r.Close()
		want, key := "1", false
		if withStats {
			want, key = "2", true
		}
		if _, ok := meta[keyBNStats]; meta[keyVersion] != want || ok != key {
			t.Errorf("stats %v: version %q, %s set %v; want %q, %v", withStats, meta[keyVersion], keyBNStats, ok, want, key)
		}
	}
	good := filepath.Join(dir, "good.rws")
	writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2", BNStats: true}), good)
	b, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(good)
	if err != nil {
		t.Fatal(err)
	}
	in, _ := r.Info("features.4.running_var")
	r.Close()
	damage := []struct {
		name string
		fn   func([]byte) []byte
		want string
	}{
		{"statistic byte flipped", func(b []byte) []byte { b[in.Offset+3] ^= 0x10; return b }, `running statistic "features.4.running_var": stored bytes do not match their SHA-256`},
		{"version 1 with statistics", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"rws.signature.version":"2"`), []byte(`"rws.signature.version":"1"`), 1)
		}, "version 1 cannot carry running statistics"},
		{"version 2 without the list", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"rws.signature.bn_stats"`), []byte(`"rws.signature.bn_xxxxx"`), 1)
		}, "lists no running statistics"},
		{"a weight listed as a statistic", func(b []byte) []byte {
			return bytes.Replace(b, []byte(`4.running_var\"`), []byte(`4.running_vax\"`), 1) // in the escaped JSON of the list
		}, "not a running_mean or running_var tensor name"},
	}
	for _, d := range damage {
		t.Run(d.name, func(t *testing.T) {
			p := filepath.Join(dir, "bad.rws")
			bad := d.fn(append([]byte(nil), b...))
			if bytes.Equal(bad, b) {
				t.Fatal("the damage did not apply")
			}
			if err := os.WriteFile(p, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := Read(p)
			var fe *FormatError
			if !errors.Is(err, ErrFormat) || !errors.As(err, &fe) || !strings.Contains(err.Error(), d.want) {
				t.Errorf("Read = %v, want a FormatError containing %q", err, d.want)
			}
		})
	}
}

// TestVersion1File reads testdata/v1/fog.rws, written by rws before signatures could carry
// running statistics (scripts/gen_signature_v1.sh), and checks that this rws still reads it and
// writes the same signature byte for byte.
func TestVersion1File(t *testing.T) {
	old, err := Read("testdata/v1/fog.rws")
	if err != nil {
		t.Fatal(err)
	}
	if old.Version != 1 || old.Stats != nil || len(old.Tensors) != 6 {
		t.Fatalf("version %d, %d statistics, %d tensors; want 1, 0, 6", old.Version, len(old.Stats), len(old.Tensors))
	}
	const dir = "testdata/parity/"
	s := mustExtract(t, ExtractOptions{Init: dir + "init.safetensors", Clean: dir + "clean.safetensors",
		Robust: []string{dir + "robust1.safetensors", dir + "robust2.safetensors"}, Layers: "first:2", Name: "fog",
		Command: "rws extract (test vector)"})
	p := filepath.Join(t.TempDir(), "fog.rws")
	writeSig(t, s, p)
	if !sameFile(t, p, "testdata/v1/fog.rws") {
		t.Error("a signature without statistics is no longer written as before")
	}
}

// statsSig is a signature of TestPatchStats: its layers, whether it carries statistics, its α.
type statsSig struct {
	layers string
	stats  bool
	alpha  float64
}

// TestPatchStats checks SignatureStats out of place and in place: α = 1 puts the signature's
// bytes in place of the model's statistics, α = 0 keeps the model's, other α blend
// (1−α)·model + α·signature; num_batches_tracked and every tensor the signatures do not cover
// keep their bytes, the signature tensors are patched as with KeepStats; the report and the
// patch record name the statistics replaced; and unpatch gives back the model byte for byte.
func TestPatchStats(t *testing.T) {
	type sc = statsSig
	tests := []struct {
		name string
		dt   tensor.DType
		// other patches a model other than the clean one the signatures come from.
		other bool
		sigs  []statsSig
	}{
		{name: "F32 α=1", dt: tensor.F32, sigs: []sc{{"first:2", true, 1}}},
		{name: "F32 α=0.5", dt: tensor.F32, sigs: []sc{{"first:2", true, 0.5}}},
		{name: "F32 α=0", dt: tensor.F32, sigs: []sc{{"first:1", true, 0}}},
		{name: "F32 α=0.3 transfer", dt: tensor.F32, other: true, sigs: []sc{{"first:2", true, 0.3}}},
		{name: "F16 α=1", dt: tensor.F16, other: true, sigs: []sc{{"first:2", true, 1}}},
		{name: "BF16 α=0.25", dt: tensor.BF16, other: true, sigs: []sc{{"first:1", true, 0.25}}},
		{name: "F64 α=0.7", dt: tensor.F64, sigs: []sc{{"first:2", true, 0.7}}},
		{name: "two signatures, own layers", dt: tensor.F32, sigs: []sc{{"features.0,features.1", true, 1}, {"features.3,features.4", true, 0.5}}},
		{name: "one of two carries", dt: tensor.F32, sigs: []sc{{"first:2", false, -1}, {"first:1", true, 0.5}}},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			f := makeFamily(t, dir, smallCNN, tc.dt, 1)
			model := f.clean
			if tc.other {
				model = baseModel(smallCNN, 77).write(t, filepath.Join(dir, "other.safetensors"), smallCNN, tc.dt)
			}
			var applied []Applied
			from := map[string]int{} // statistic → the signature whose values it takes
			for k, c := range tc.sigs {
				s := mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: c.layers, BNStats: c.stats})
				s = writeSig(t, s, filepath.Join(dir, "s"+itoa(k)+".rws"))
				applied = append(applied, Applied{Sig: s, Alpha: c.alpha})
				for _, st := range s.Stats {
					from[st.Name] = k
				}
			}
			keep := filepath.Join(dir, "keep.safetensors")
			krep, err := Patch(ctx, model, keep, applied, PatchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if krep.BNStats != KeepStats {
				t.Errorf("default policy reported as %q", krep.BNStats)
			}
			out := filepath.Join(dir, "out.safetensors")
			rep, err := Patch(ctx, model, out, applied, PatchOptions{BNStats: SignatureStats})
			if err != nil {
				t.Fatal(err)
			}
			work := filepath.Join(dir, "work.safetensors")
			copyFile(t, model, work)
			irep, err := PatchInPlace(ctx, work, applied, PatchOptions{BNStats: SignatureStats})
			if err != nil {
				t.Fatal(err)
			}
			r, err := safetensors.Open(model)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			for _, in := range r.Tensors() {
				orig := rawTensor(t, model, in.Name)
				got, gotIn, kept := rawTensor(t, out, in.Name), rawTensor(t, work, in.Name), rawTensor(t, keep, in.Name)
				if !bytes.Equal(got, gotIn) {
					t.Errorf("%s: the in-place patch differs from the out-of-place one", in.Name)
				}
				k, isStat := from[in.Name]
				if !isStat {
					if !bytes.Equal(got, kept) {
						t.Errorf("%s: differs from the patch that keeps the statistics", in.Name)
					}
					if strings.HasSuffix(in.Name, "running_mean") || strings.HasSuffix(in.Name, "running_var") || strings.HasSuffix(in.Name, "num_batches_tracked") {
						if !bytes.Equal(got, orig) {
							t.Errorf("%s: a statistic no signature carries changed", in.Name)
						}
					}
					continue
				}
				if !bytes.Equal(kept, orig) {
					t.Errorf("%s: KeepStats changed the model's statistic", in.Name)
				}
				a := applied[k].Alpha
				sv := rawTensor(t, f.robust[0], in.Name) // one robust model: the signature's bytes
				var want []byte
				switch a {
				case 1:
					want = sv
				case 0:
					want = orig
				default:
					m, s := decode64(t, tc.dt, orig), decode64(t, tc.dt, sv)
					v := make([]float64, len(m))
					for i := range m {
						v[i] = float64((1-a)*m[i]) + float64(a*s[i])
					}
					want = round64(t, tc.dt, v)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("%s at α = %g: %v, want %v", in.Name, a, decode64(t, tc.dt, got), decode64(t, tc.dt, want))
				}
			}
			// The report and the patch record name the statistics replaced, per signature.
			for _, rp := range []*PatchReport{rep, irep} {
				if rp.BNStats != SignatureStats {
					t.Errorf("policy reported as %q", rp.BNStats)
				}
				for k := range applied {
					var want []string
					for _, n := range stats2 {
						if j, ok := from[n]; ok && j == k {
							want = append(want, n)
						}
					}
					if !slices.Equal(rp.Signatures[k].Stats, want) {
						t.Errorf("signature %d: statistics replaced %v, want %v", k, rp.Signatures[k].Stats, want)
					}
				}
				for n := range from {
					if !slices.Contains(rp.Tensors, n) {
						t.Errorf("report's tensors lack %s", n)
					}
				}
			}
			for _, p := range []string{out, work} {
				h, err := History(p)
				if err != nil || len(h) != 1 {
					t.Fatalf("history of %s: %v, %v", p, h, err)
				}
				for k, s := range h[0].Signatures {
					if !slices.Equal(s.Stats, rep.Signatures[k].Stats) {
						t.Errorf("%s: the record says %v were replaced, the report %v", p, s.Stats, rep.Signatures[k].Stats)
					}
				}
			}
			// Exact removal, out of place and in place.
			back := filepath.Join(dir, "back.safetensors")
			if _, err := Unpatch(ctx, out, back, UnpatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if !sameFile(t, back, model) {
				t.Error("unpatch did not give back the model byte for byte")
			}
			if _, err := UnpatchInPlace(ctx, work, UnpatchOptions{}); err != nil {
				t.Fatal(err)
			}
			if !sameFile(t, work, model) {
				t.Error("unpatch in place did not give back the model byte for byte")
			}
			if _, err := os.Stat(work + UndoSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Error("the undo sidecar outlived its last patch")
			}
		})
	}
}

// TestPatchStatsErrors checks that SignatureStats refuses what it cannot do, naming the problem,
// and leaves no output and an untouched model.
func TestPatchStatsErrors(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	sig := func(name, layers string, stats bool) *Signature {
		return writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: layers, BNStats: stats}), filepath.Join(dir, name))
	}
	plain, one, two := sig("plain.rws", "first:2", false), sig("one.rws", "first:1", true), sig("two.rws", "first:2", true)
	var fewer []entry
	for _, e := range smallCNN {
		if e.name != "features.4.running_mean" {
			fewer = append(fewer, e)
		}
	}
	missing := baseModel(fewer, 5).write(t, filepath.Join(dir, "missing.safetensors"), fewer, tensor.F32)
	tests := []struct {
		name    string
		model   string
		applied []Applied
		policy  StatsPolicy
		want    string
		is      error
	}{
		{"no signature carries statistics", f.clean, []Applied{{plain, 1}}, SignatureStats, "no batch-norm running statistics in the signatures applied (" + plain.Path + ")", ErrNoStats},
		{"two carry the same", f.clean, []Applied{{one, 1}, {two, 0.5}}, SignatureStats, `running statistic "features.1.running_mean" is carried by both ` + one.Path + " and " + two.Path, nil},
		{"α above 1", f.clean, []Applied{{two, 1.5}}, SignatureStats, "applied at α = 1.5", nil},
		{"α below 0", f.clean, []Applied{{plain, 1}, {two, -0.5}}, SignatureStats, "applied at α = -0.5", nil},
		{"unknown policy", f.clean, []Applied{{two, 1}}, "robust", `unknown batch-norm statistics policy "robust"`, nil},
		{"model lacks a statistic", missing, []Applied{{two, 1}}, SignatureStats, `running statistic "features.4.running_mean" of signature ` + two.Path + " is not in the model", ErrMismatch},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "out.safetensors")
			_, err := Patch(ctx, tc.model, out, tc.applied, PatchOptions{BNStats: tc.policy})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Error("output left behind")
			}
			work := filepath.Join(dir, "work.safetensors")
			copyFile(t, tc.model, work)
			if _, err := PatchInPlace(ctx, work, tc.applied, PatchOptions{BNStats: tc.policy}); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("in place: err = %v, want it to contain %q", err, tc.want)
			}
			if !sameFile(t, work, tc.model) {
				t.Error("the failed in-place patch changed the model")
			}
			for _, p := range []string{work + JournalSuffix, work + UndoSuffix} {
				if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
					t.Errorf("%s left behind", p)
				}
			}
		})
	}
	// KeepStats, the default, ignores the statistics a signature carries.
	out := filepath.Join(dir, "keep.safetensors")
	if _, err := Patch(ctx, f.clean, out, []Applied{{one, 1}, {two, 0.5}}, PatchOptions{BNStats: KeepStats}); err != nil {
		t.Fatal(err)
	}
	for _, n := range stats2 {
		if !bytes.Equal(rawTensor(t, out, n), rawTensor(t, f.clean, n)) {
			t.Errorf("%s changed under KeepStats", n)
		}
	}
}

// TestPatchShardedStats checks SignatureStats on a sharded checkpoint: the statistics of each
// shard come from the signature as in the single file, a shard whose signature tensors come
// without statistics is patched too, and unpatch gives back every file.
func TestPatchShardedStats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	// With statistics: features.0 and .1 (shard 2); without: features.7 (shard 3), whose shard
	// is then patched with KeepStats.
	a := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:1", BNStats: true}), filepath.Join(dir, "a.rws"))
	b := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "features.7"}), filepath.Join(dir, "b.rws"))
	for _, applied := range [][]Applied{{{a, 0.5}, {b, 1}}, {{b, 1}, {a, 1}}} {
		single := filepath.Join(dir, "single.safetensors")
		if _, err := Patch(ctx, f.clean, single, applied, PatchOptions{BNStats: SignatureStats, Force: true}); err != nil {
			t.Fatal(err)
		}
		os.RemoveAll(filepath.Join(dir, "in"))
		os.RemoveAll(filepath.Join(dir, "out"))
		os.RemoveAll(filepath.Join(dir, "back"))
		index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
		out := filepath.Join(dir, "out", "model.safetensors.index.json")
		os.Mkdir(filepath.Dir(out), 0o755)
		rep, err := Patch(ctx, index, out, applied, PatchOptions{BNStats: SignatureStats})
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		if applied[1].Sig == a {
			k = 1
		}
		if rep.BNStats != SignatureStats || !sameSet(rep.Signatures[k].Stats, stats1) || len(rep.Signatures[1-k].Stats) != 0 {
			t.Errorf("report: policy %q, statistics replaced %v and %v", rep.BNStats, rep.Signatures[0].Stats, rep.Signatures[1].Stats)
		}
		r, err := safetensors.Open(single)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range r.Tensors() {
			if !bytes.Equal(rawTensor(t, single, in.Name), rawTensor(t, out, in.Name)) {
				t.Errorf("tensor %q differs from the single-file patch", in.Name)
			}
		}
		r.Close()
		back := filepath.Join(dir, "back", "model.safetensors.index.json")
		os.Mkdir(filepath.Dir(back), 0o755)
		if _, err := Unpatch(ctx, out, back, UnpatchOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, name := range dirFiles(t, filepath.Join(dir, "in")) {
			if !sameFile(t, filepath.Join(dir, "in", name), filepath.Join(dir, "back", name)) {
				t.Errorf("%s differs from the original after unpatch", name)
			}
		}
	}
}

func sameSet(a, b []string) bool {
	x, y := slices.Clone(a), slices.Clone(b)
	slices.Sort(x)
	slices.Sort(y)
	return slices.Equal(x, y)
}

// TestBlendStatNonFinite checks that a blend that overflows the model's type is refused.
func TestBlendStatNonFinite(t *testing.T) {
	st := &RunningStat{Name: "bn.running_var", Shape: []int64{2}, DType: tensor.F32, raw: make([]byte, 8)}
	tensor.EncodeFloat32(tensor.F32, []float32{1, 1e6}, st.raw)
	old := make([]byte, 4)
	tensor.EncodeFloat32(tensor.F16, []float32{1, 2}, old)
	err := blendStat(tensor.F16, old, statTerm{stat: st, alpha: 1}, make([]byte, 4))
	if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "value 1") {
		t.Errorf("blend of 1e6 into F16: %v, want ErrNonFinite at value 1", err)
	}
	if err := blendStat(tensor.F16, old, statTerm{stat: st, alpha: 0}, make([]byte, 4)); err != nil {
		t.Errorf("α = 0 keeps the model's finite values: %v", err)
	}
}
