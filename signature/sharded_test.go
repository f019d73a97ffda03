package signature

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// shardOf puts the tensors of smallCNN into three shards: the classifier (which a signature of
// the first layers leaves alone), features 0, 1 and 10, and features 3, 4 and 7.
func shardOf(name string) string {
	switch {
	case strings.HasPrefix(name, "classifier."):
		return "model-00001-of-00003.safetensors"
	case strings.HasPrefix(name, "features.0."), strings.HasPrefix(name, "features.1."), strings.HasPrefix(name, "features.10."):
		return "model-00002-of-00003.safetensors"
	}
	return "model-00003-of-00003.safetensors"
}

// writeSharded splits the single-file checkpoint src into shards (shardOf) in dir, storing the
// tensors of the shards named in f16 as F16, and writes their index as Hugging Face does. It
// returns the index path.
func writeSharded(t *testing.T, src, dir string, f16 ...string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	byShard := map[string][]safetensors.Tensor{}
	weights := map[string]string{}
	var total int64
	for _, in := range r.Tensors() {
		data, err := r.ReadRaw(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		f := shardOf(in.Name)
		dt := in.DType
		for _, h := range f16 {
			if h == f && dt == tensor.F32 {
				v := make([]float32, in.Elements())
				if err := tensor.DecodeFloat32(dt, data, v); err != nil {
					t.Fatal(err)
				}
				dt, data = tensor.F16, make([]byte, 2*len(v))
				if err := tensor.EncodeFloat32(dt, v, data); err != nil {
					t.Fatal(err)
				}
			}
		}
		byShard[f] = append(byShard[f], safetensors.Tensor{Name: in.Name, DType: dt, Shape: in.Shape, Data: data})
		weights[in.Name] = f
		total += int64(len(data))
	}
	for f, ts := range byShard {
		if err := safetensors.WriteFile(filepath.Join(dir, f), ts, map[string]string{"format": "pt"}, safetensors.WriteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	idx, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"total_size": total}, "weight_map": weights}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	index := filepath.Join(dir, "model.safetensors.index.json")
	if err := os.WriteFile(index, append(idx, '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
	return index
}

// dirFiles lists the names in dir, temporary files included.
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	return out
}

// TestPatchSharded checks that a sharded checkpoint is patched shard by shard as the single file
// is patched, that an untouched shard is copied, and that unpatch gives back every file.
func TestPatchSharded(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	sig := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2"}), filepath.Join(dir, "a.rws"))
	spans := map[string]bool{}
	for _, st := range sig.Tensors {
		spans[shardOf(st.Name)] = true
	}
	if len(spans) != 2 {
		t.Fatalf("the signature spans %d shards, want 2", len(spans))
	}
	index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	applied := []Applied{{sig, 0.5}}

	single := filepath.Join(dir, "single.safetensors")
	if _, err := Patch(ctx, f.clean, single, applied, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out", "model.safetensors.index.json")
	os.Mkdir(filepath.Dir(out), 0o755)
	rep, err := Patch(ctx, index, out, applied, PatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Tensors) != len(sig.Tensors) || len(rep.Shards) != 2 || rep.Signatures[0].Tensors != len(sig.Tensors) {
		t.Errorf("report: %d tensors in shards %v, signature of %d tensors; want %d in 2 shards", len(rep.Tensors), rep.Shards, rep.Signatures[0].Tensors, len(sig.Tensors))
	}
	if !sameFile(t, out, index) {
		t.Error("the output index differs from the input's")
	}
	untouched := "model-00001-of-00003.safetensors"
	if !sameFile(t, filepath.Join(dir, "in", untouched), filepath.Join(dir, "out", untouched)) {
		t.Error("the untouched shard was not copied byte for byte")
	}
	// Every tensor holds the bytes of the single-file patch.
	want, err := safetensors.Open(single)
	if err != nil {
		t.Fatal(err)
	}
	defer want.Close()
	got, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer got.Close()
	for _, in := range want.Tensors() {
		w, err := want.ReadRaw(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		g, err := got.ReadRaw(in.Name)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(w, g) {
			t.Errorf("tensor %q differs from the single-file patch", in.Name)
		}
	}
	// Each patched shard carries its own undo record.
	for s := range spans {
		h, err := History(filepath.Join(dir, "out", s))
		if err != nil || len(h) != 1 {
			t.Errorf("shard %s: history %v, %v; want one patch", s, h, err)
		}
	}

	back := filepath.Join(dir, "back", "model.safetensors.index.json")
	os.Mkdir(filepath.Dir(back), 0o755)
	urep, err := Unpatch(ctx, out, back, UnpatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if urep.ID != rep.ID || len(urep.Tensors) != len(sig.Tensors) {
		t.Errorf("unpatch removed %s (%d tensors), want %s (%d)", urep.ID, len(urep.Tensors), rep.ID, len(sig.Tensors))
	}
	in := dirFiles(t, filepath.Join(dir, "in"))
	if b := dirFiles(t, filepath.Dir(back)); strings.Join(b, " ") != strings.Join(in, " ") {
		t.Errorf("unpatched folder holds %v, want %v", b, in)
	}
	for _, name := range in {
		if !sameFile(t, filepath.Join(dir, "in", name), filepath.Join(filepath.Dir(back), name)) {
			t.Errorf("%s differs from the original after unpatch", name)
		}
	}

	// Unpatching the original, or patching in place, is refused.
	os.Mkdir(filepath.Join(dir, "none"), 0o755)
	if _, err := Unpatch(ctx, index, filepath.Join(dir, "none", "model.safetensors.index.json"), UnpatchOptions{}); !errors.Is(err, ErrNotPatched) {
		t.Errorf("unpatch of an unpatched sharded checkpoint: %v, want ErrNotPatched", err)
	}
	if _, err := PatchInPlace(ctx, index, applied, PatchOptions{}); !errors.Is(err, ErrShardedInPlace) {
		t.Errorf("in-place patch of a sharded checkpoint: %v, want ErrShardedInPlace", err)
	}
	if _, err := UnpatchInPlace(ctx, out, UnpatchOptions{}); !errors.Is(err, ErrShardedInPlace) {
		t.Errorf("in-place unpatch of a sharded checkpoint: %v, want ErrShardedInPlace", err)
	}
	// An existing output needs Force.
	if _, err := Patch(ctx, index, out, applied, PatchOptions{}); !errors.Is(err, atomicfile.ErrExists) {
		t.Errorf("patch over an existing output: %v, want it refused", err)
	}
	if _, err := Patch(ctx, index, out, applied, PatchOptions{Force: true}); err != nil {
		t.Errorf("patch with Force over an existing output: %v", err)
	}
}

// TestPatchShardedErrors checks that a failed sharded patch names the problem and leaves no file
// behind, also when it fails after some shards were written.
func TestPatchShardedErrors(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	sig := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2"}), filepath.Join(dir, "a.rws"))
	index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	// The last shard in F16: a large α overflows it only, after the second shard is written.
	halfIndex := writeSharded(t, f.clean, filepath.Join(dir, "half"), "model-00003-of-00003.safetensors")
	extra := *sig
	ghost := *sig.Tensors[0]
	ghost.Name = "features.99.weight"
	extra.Tensors = append(append([]*Tensor(nil), sig.Tensors...), &ghost)
	shaped := *sig
	wrong := *sig.Tensors[len(sig.Tensors)-1]
	wrong.Shape = []int64{3}
	shaped.Tensors = append(append([]*Tensor(nil), sig.Tensors[:len(sig.Tensors)-1]...), &wrong)
	tests := []struct {
		name  string
		model string
		out   string // relative to dir
		sig   *Signature
		alpha float64
		want  string
	}{
		{"input folder", index, "in/p.safetensors.index.json", sig, 1, "in the folder of the sharded checkpoint"},
		{"not an index", index, "out/p.safetensors", sig, 1, "must be an index"},
		{"missing", index, "out/model.safetensors.index.json", &extra, 1, `tensor "features.99.weight" of signature`},
		{"shape", index, "out/model.safetensors.index.json", &shaped, 1, `tensor "` + wrong.Name + `": signature`},
		{"non-finite", halfIndex, "out/model.safetensors.index.json", sig, 1e7, "non-finite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			outDir := filepath.Join(dir, "out")
			os.RemoveAll(outDir)
			if err := os.Mkdir(outDir, 0o755); err != nil {
				t.Fatal(err)
			}
			before := dirFiles(t, filepath.Dir(tc.model))
			_, err := Patch(context.Background(), tc.model, filepath.Join(dir, tc.out), []Applied{{tc.sig, tc.alpha}}, PatchOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if left := dirFiles(t, outDir); len(left) > 0 {
				t.Errorf("left behind: %v", left)
			}
			if after := dirFiles(t, filepath.Dir(tc.model)); strings.Join(after, " ") != strings.Join(before, " ") {
				t.Errorf("input folder now holds %v, was %v", after, before)
			}
		})
	}
}
