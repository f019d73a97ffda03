package signature

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// expectPatched computes θ + Σ α·RWS independently: float32 (float64 for F64) in the order given,
// rounded once into dt.
func expectPatched(t *testing.T, dt tensor.DType, raw []byte, alphas []float64, vals [][]float32) []byte {
	t.Helper()
	n := len(raw) / dt.Size()
	out := make([]byte, len(raw))
	if dt == tensor.F64 {
		v := make([]float64, n)
		tensor.DecodeFloat64(dt, raw, v)
		for k := range vals {
			for i := range v {
				p := alphas[k] * float64(vals[k][i])
				v[i] = v[i] + p
			}
		}
		for i := range v {
			for b := range 8 {
				out[8*i+b] = byte(math.Float64bits(v[i]) >> (8 * b))
			}
		}
		return out
	}
	v := make([]float32, n)
	tensor.DecodeFloat32(dt, raw, v)
	for k := range vals {
		a := float32(alphas[k])
		for i := range v {
			p := a * vals[k][i]
			v[i] = v[i] + p
		}
	}
	tensor.EncodeFloat32(dt, v, out)
	return out
}

type sigCase struct {
	layers string
	spec   quant.Spec
	alpha  float64
}

// TestPatchUnpatchProperty is the exactness property: for every dtype and many mixes of
// signatures and α (negative included), patch gives the formula's bytes on the covered tensors,
// copies every other tensor, and unpatch gives back the original file byte for byte.
func TestPatchUnpatchProperty(t *testing.T) {
	dir := t.TempDir()
	mixes := [][]sigCase{
		{{"first:1", quant.Spec{Codec: quant.None}, 1}},
		{{"first:2", quant.Spec{Codec: quant.Linear, Bits: 8}, 0.5}},
		{{"first:4", quant.Spec{Codec: quant.Gauss, Bits: 2}, -1}},
		{{"first:2", quant.Spec{Codec: quant.Log, Bits: 3}, -2.5}, {"first:3", quant.Spec{Codec: quant.None}, 0.75}},
		{{"first:1", quant.Spec{Codec: quant.Tanh, Bits: 4}, 3}, {"features.10,classifier", quant.Spec{Codec: quant.None}, -0.3}, {"first:4", quant.Spec{Codec: quant.Linear, Bits: 1}, 1e-3}},
		{{"first:2", quant.Spec{Codec: quant.None}, 0}},
		{{"first:2", quant.Spec{Codec: quant.None}, 1}, {"first:2", quant.Spec{Codec: quant.None}, -1}},
	}
	modes := map[bool]int{} // undo entries with and without stored terms
	defer func() {
		if modes[true] == 0 || modes[false] == 0 {
			t.Errorf("undo entries with terms: %d, XOR only: %d; the property must cover both", modes[true], modes[false])
		}
	}()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16, tensor.F64} {
		f := makeFamily(t, filepath.Join(dir), mediumCNN, dt, 1)
		// Patch a model other than the clean base too (transfer).
		other := baseModel(mediumCNN, 77).write(t, filepath.Join(dir, "other.safetensors"), mediumCNN, dt)
		for mi, mix := range mixes {
			var applied []Applied
			for k, c := range mix {
				s := mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: c.layers, Spec: c.spec})
				r := writeSig(t, s, filepath.Join(dir, fmt.Sprintf("%s-%d-%d.rws", dt, mi, k)))
				applied = append(applied, Applied{Sig: r, Alpha: c.alpha})
			}
			for _, target := range []string{f.clean, other} {
				name := fmt.Sprintf("%s/mix%d/%s", dt, mi, filepath.Base(target))
				out := filepath.Join(dir, "patched.safetensors")
				rep, err := Patch(context.Background(), target, out, applied, PatchOptions{Force: true})
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := rep.Signatures[0].Transfer; got != (target == other) {
					t.Errorf("%s: transfer = %v", name, got)
				}
				checkPatched(t, name, target, out, applied)
				for _, ut := range undoEntries(t, out) {
					modes[len(ut.Terms) > 0]++
				}
				back := filepath.Join(dir, "back.safetensors")
				if _, err := Unpatch(context.Background(), out, back, UnpatchOptions{Force: true}); err != nil {
					t.Fatalf("%s: unpatch: %v", name, err)
				}
				if !sameFile(t, target, back) {
					t.Fatalf("%s: unpatch did not give back the original bytes", name)
				}
			}
		}
	}
}

// checkPatched compares every tensor of out with the formula (covered) or the input (others).
func checkPatched(t *testing.T, name, in, out string, applied []Applied) {
	t.Helper()
	ri, err := safetensors.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer ri.Close()
	ro, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for _, info := range ri.Tensors() {
		a, _ := ri.ReadRaw(info.Name)
		b, err := ro.ReadRaw(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		var alphas []float64
		var vals [][]float32
		for _, ap := range applied {
			if st := ap.Sig.Tensor(info.Name); st != nil {
				v, _ := st.Values()
				alphas = append(alphas, ap.Alpha)
				vals = append(vals, v)
			}
		}
		want := a
		if vals != nil {
			want = expectPatched(t, info.DType, a, alphas, vals)
		}
		if string(b) != string(want) {
			t.Fatalf("%s: tensor %q differs from the formula (covered: %v)", name, info.Name, vals != nil)
		}
	}
	meta := ro.Metadata()
	if meta[MetaPatch] == "" || meta[MetaUndo] == "" || meta["format"] != "pt" {
		t.Errorf("%s: patched metadata lacks the record or lost the original keys: %v", name, keys(meta))
	}
}

// undoEntries returns the undo record entries of a patched file.
func undoEntries(t *testing.T, path string) []undoTensor {
	t.Helper()
	r, err := safetensors.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var rec undoRecord
	if err := json.Unmarshal([]byte(r.Metadata()[MetaUndo]), &rec); err != nil {
		t.Fatal(err)
	}
	return rec.Tensors
}

// TestUndoSize checks that the undo record of a quantized signature stores the signature terms
// and a small residual, much less than the touched bytes, and stays exact.
func TestUndoSize(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, mediumCNN, tensor.F32, 1)
	ctx := context.Background()
	// Limits: the record is base64 in the metadata (4/3 of its bytes). Unquantized, the XOR of
	// these test weights with their large change is barely compressible; 8-bit codes take a
	// quarter of F32 values, 2-bit codes a sixteenth, plus a residual of a few percent.
	for _, tc := range []struct {
		spec  quant.Spec
		terms bool
		max   float64 // undo bytes / touched bytes
	}{
		{quant.Spec{Codec: quant.None}, false, 4.0 / 3 * 1.0},
		{quant.Spec{Codec: quant.Linear, Bits: 8}, true, 4.0 / 3 * (0.25 + 0.15)},
		{quant.Spec{Codec: quant.Gauss, Bits: 2}, true, 4.0 / 3 * (1.0/16 + 0.15)},
	} {
		s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2", Spec: tc.spec}), filepath.Join(dir, "s.rws"))
		out := filepath.Join(dir, "p")
		rep, err := Patch(ctx, f.clean, out, []Applied{{s, 0.8}}, PatchOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		ratio := float64(rep.UndoBytes) / float64(rep.TouchedBytes)
		t.Logf("%s: undo record %d bytes for %d touched bytes (%.3f)", tc.spec, rep.UndoBytes, rep.TouchedBytes, ratio)
		for _, ut := range undoEntries(t, out) {
			if ut.Size > 4096 && (len(ut.Terms) > 0) != tc.terms {
				t.Errorf("%s: tensor %q stores terms: %v, want %v", tc.spec, ut.Name, len(ut.Terms) > 0, tc.terms)
			}
		}
		if ratio > tc.max {
			t.Errorf("%s: undo record is %.3f of the touched bytes, want ≤ %g", tc.spec, ratio, tc.max)
		}
		back := filepath.Join(dir, "b")
		if _, err := Unpatch(ctx, out, back, UnpatchOptions{Force: true}); err != nil || !sameFile(t, back, f.clean) {
			t.Fatalf("%s: unpatch not exact: %v", tc.spec, err)
		}
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestStackedPatches patches twice out of place, then in place twice, and peels them off one by
// one, checking each intermediate file.
func TestStackedPatches(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.BF16, 1)
	s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2",
		Spec: quant.Spec{Codec: quant.Linear, Bits: 4}}), filepath.Join(dir, "a.rws"))
	ctx := context.Background()
	p1, p2 := filepath.Join(dir, "p1"), filepath.Join(dir, "p2")
	mustPatch := func(in, out string, a float64) {
		if _, err := Patch(ctx, in, out, []Applied{{s, a}}, PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mustPatch(f.clean, p1, 1)
	mustPatch(p1, p2, -0.5)
	// Two in-place patches on a copy of p2.
	work := filepath.Join(dir, "work")
	copyFile(t, p2, work)
	for _, a := range []float64{2, 2} {
		if _, err := PatchInPlace(ctx, work, []Applied{{s, a}}, PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	afterOne := filepath.Join(dir, "after1")
	rep, err := Unpatch(ctx, work, afterOne, UnpatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Remaining != 1 {
		t.Errorf("remaining %d, want 1", rep.Remaining)
	}
	if _, err := os.Stat(afterOne + UndoSuffix); err != nil {
		t.Errorf("the older in-place record did not travel with the output: %v", err)
	}
	h, err := History(work)
	if err != nil {
		t.Fatal(err)
	}
	if len(h) != 4 || h[0].InPlace || h[1].InPlace || !h[2].InPlace || !h[3].InPlace || h[1].Signatures[0].Alpha != -0.5 {
		t.Errorf("history %+v, want two out-of-place then two in-place patches", h)
	}
	for range 2 {
		if _, err := UnpatchInPlace(ctx, work, UnpatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if !sameFile(t, work, p2) {
		t.Fatal("two in-place unpatches did not give back p2")
	}
	if _, err := os.Stat(work + UndoSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("sidecar left after the last unpatch: %v", err)
	}
	back1, back0 := filepath.Join(dir, "b1"), filepath.Join(dir, "b0")
	if _, err := Unpatch(ctx, p2, back1, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !sameFile(t, back1, p1) {
		t.Fatal("unpatch of p2 is not p1")
	}
	if _, err := Unpatch(ctx, back1, back0, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if !sameFile(t, back0, f.clean) {
		t.Fatal("unpatch of p1 is not the clean model")
	}
	if _, err := Unpatch(ctx, back0, filepath.Join(dir, "x"), UnpatchOptions{}); !errors.Is(err, ErrNotPatched) {
		t.Errorf("unpatch of an unpatched model: %v, want ErrNotPatched", err)
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestInPlaceMatchesOutOfPlace checks that an in-place patch writes the same tensors as Patch and
// leaves the header alone.
func TestInPlaceMatchesOutOfPlace(t *testing.T) {
	dir := t.TempDir()
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		f := makeFamily(t, dir, smallCNN, dt, 1)
		s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:3"}), filepath.Join(dir, "a.rws"))
		work := filepath.Join(dir, "work"+string(dt))
		copyFile(t, f.clean, work)
		ctx := context.Background()
		if _, err := PatchInPlace(ctx, work, []Applied{{s, -0.7}}, PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		checkTensorsEqualFormula(t, f.clean, work, []Applied{{s, -0.7}})
		if _, err := UnpatchInPlace(ctx, work, UnpatchOptions{}); err != nil {
			t.Fatal(err)
		}
		if !sameFile(t, work, f.clean) {
			t.Fatalf("%s: in-place unpatch did not restore the file", dt)
		}
	}
}

func checkTensorsEqualFormula(t *testing.T, in, out string, applied []Applied) {
	t.Helper()
	ri, _ := safetensors.Open(in)
	defer ri.Close()
	ro, _ := safetensors.Open(out)
	defer ro.Close()
	for _, info := range ri.Tensors() {
		a, _ := ri.ReadRaw(info.Name)
		b, _ := ro.ReadRaw(info.Name)
		want := a
		if st := applied[0].Sig.Tensor(info.Name); st != nil {
			v, _ := st.Values()
			want = expectPatched(t, info.DType, a, []float64{applied[0].Alpha}, [][]float32{v})
		}
		if string(b) != string(want) {
			t.Fatalf("tensor %q differs from the formula", info.Name)
		}
	}
}

// TestCrashSafety stops an in-place patch and unpatch at every step, as a kill would, and checks
// that the file is then the old or the new model and that Recover makes it whole.
func TestCrashSafety(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:3"}), filepath.Join(dir, "a.rws"))
	ctx := context.Background()
	// The fully patched reference.
	ref := filepath.Join(dir, "ref")
	copyFile(t, f.clean, ref)
	if _, err := PatchInPlace(ctx, ref, []Applied{{s, 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	newBytes, _ := os.ReadFile(ref)
	oldBytes, _ := os.ReadFile(f.clean)
	steps := []string{"journal", "write 0 half", "write 1 half", "write 4 half", "written"}
	for _, pre := range []int{0, 1} { // without and with an earlier in-place patch (merge commit)
		for _, step := range steps {
			name := fmt.Sprintf("pre%d/%s", pre, step)
			work := filepath.Join(dir, "work")
			copyFile(t, f.clean, work)
			os.Remove(work + UndoSuffix)
			os.Remove(work + JournalSuffix)
			base := oldBytes
			if pre == 1 {
				if _, err := PatchInPlace(ctx, work, []Applied{{s, 0.5}}, PatchOptions{}); err != nil {
					t.Fatal(err)
				}
				base, _ = os.ReadFile(work)
			}
			crashHook = func(st string) bool { return st == step }
			_, err := PatchInPlace(ctx, work, []Applied{{s, 1}}, PatchOptions{})
			crashHook = nil
			if !errors.Is(err, errCrash) {
				t.Fatalf("%s: err = %v, want the simulated crash", name, err)
			}
			did, err := RecoverReport(work)
			if err != nil {
				t.Fatalf("%s: recover: %v", name, err)
			}
			got, _ := os.ReadFile(work)
			if string(got) != string(base) {
				t.Fatalf("%s: after recovery (%s) the model is neither old nor new", name, did)
			}
			if _, err := os.Stat(work + JournalSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("%s: journal left after recovery", name)
			}
			// The model keeps working: patch and unpatch again.
			if _, err := PatchInPlace(ctx, work, []Applied{{s, 1}}, PatchOptions{}); err != nil {
				t.Fatalf("%s: patch after recovery: %v", name, err)
			}
			if pre == 0 {
				got, _ = os.ReadFile(work)
				if string(got) != string(newBytes) {
					t.Fatalf("%s: patch after recovery differs from an uninterrupted one", name)
				}
			}
			for range pre + 1 {
				if _, err := UnpatchInPlace(ctx, work, UnpatchOptions{}); err != nil {
					t.Fatalf("%s: unpatch after recovery: %v", name, err)
				}
			}
			got, _ = os.ReadFile(work)
			if string(got) != string(oldBytes) {
				t.Fatalf("%s: unpatch after recovery did not give back the original", name)
			}
		}
	}
	// A crash after the merge commit (pre = 1) counts as committed.
	work := filepath.Join(dir, "work")
	copyFile(t, f.clean, work)
	os.Remove(work + UndoSuffix)
	PatchInPlace(ctx, work, []Applied{{s, 0.5}}, PatchOptions{})
	crashHook = func(st string) bool { return st == "committed" }
	PatchInPlace(ctx, work, []Applied{{s, 1}}, PatchOptions{})
	crashHook = nil
	did, err := RecoverReport(work)
	if err != nil || !strings.HasPrefix(did, "completed patch") {
		t.Fatalf("recover after commit: %q, %v", did, err)
	}
	// An unpatch stopped after its journal, or half way, is completed.
	for _, step := range []string{"journal", "restored"} {
		crashHook = func(st string) bool { return st == step }
		_, err := UnpatchInPlace(ctx, work, UnpatchOptions{})
		crashHook = nil
		if !errors.Is(err, errCrash) {
			t.Fatalf("unpatch %s: %v", step, err)
		}
		did, err := RecoverReport(work)
		if err != nil || !strings.HasPrefix(did, "completed unpatch") {
			t.Fatalf("recover unpatch %s: %q, %v", step, did, err)
		}
	}
	got, _ := os.ReadFile(work)
	if string(got) != string(oldBytes) {
		t.Fatal("completed unpatches did not give back the original")
	}
}

func TestPatchErrors(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	good := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2"}), filepath.Join(dir, "a.rws"))
	// A model whose features.3.weight has another shape, and one without it.
	other := append([]entry(nil), smallCNN...)
	other[7] = entry{"features.3.weight", []int64{16, 8, 1, 1}}
	shaped := baseModel(other, 5).write(t, filepath.Join(dir, "shaped.safetensors"), other, tensor.F32)
	var fewer []entry
	for _, e := range smallCNN {
		if e.name != "features.3.bias" {
			fewer = append(fewer, e)
		}
	}
	missing := baseModel(fewer, 5).write(t, filepath.Join(dir, "missing.safetensors"), fewer, tensor.F32)
	half := baseModel(smallCNN, 1).write(t, filepath.Join(dir, "half.safetensors"), smallCNN, tensor.F16)
	tests := []struct {
		name  string
		model string
		alpha float64
		want  string
	}{
		{"shape", shaped, 1, `tensor "features.3.weight": signature ` + good.Path + ` has shape [16 8 3 3], model ` + shaped + ` has [16 8 1 1]`},
		{"missing", missing, 1, `tensor "features.3.bias"`},
		{"non-finite", half, 1e6, "non-finite"},
		{"huge alpha", f.clean, 1e39, "not finite"},
		{"nan alpha", f.clean, math.NaN(), "not finite"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(dir, "out-"+tc.name)
			_, err := Patch(context.Background(), tc.model, out, []Applied{{good, tc.alpha}}, PatchOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to contain %q", err, tc.want)
			}
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("output left behind")
			}
			work := filepath.Join(dir, "inplace-"+tc.name)
			copyFile(t, tc.model, work)
			if _, err := PatchInPlace(context.Background(), work, []Applied{{good, tc.alpha}}, PatchOptions{}); err == nil {
				t.Fatal("in-place patch succeeded")
			}
			if !sameFile(t, work, tc.model) {
				t.Error("failed in-place patch changed the model")
			}
			if _, err := os.Stat(work + JournalSuffix); !errors.Is(err, os.ErrNotExist) {
				t.Error("failed in-place patch left a journal")
			}
		})
	}
	// A patched tensor changed after patching: unpatch refuses rather than guessing.
	out := filepath.Join(dir, "p")
	if _, err := Patch(context.Background(), f.clean, out, []Applied{{good, 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r, _ := safetensors.Open(out)
	in, _ := r.Info("features.0.weight")
	r.Close()
	fh, _ := os.OpenFile(out, os.O_RDWR, 0)
	fh.WriteAt([]byte{1, 2, 3, 4}, in.Offset)
	fh.Close()
	if _, err := Unpatch(context.Background(), out, filepath.Join(dir, "back"), UnpatchOptions{}); !errors.Is(err, ErrChanged) {
		t.Errorf("unpatch of a changed file: %v, want ErrChanged", err)
	}
}

// TestHeaderTooLarge checks that an out-of-place patch whose undo record would push the header
// over what readers accept is refused with the fix, leaving no output, while in place works.
func TestHeaderTooLarge(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2"}), filepath.Join(dir, "s.rws"))
	out := filepath.Join(dir, "out")
	if _, err := Patch(context.Background(), f.clean, out, []Applied{{s, 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := safetensors.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	need := int64(len(r.Metadata()[MetaUndo]))
	r.Close()
	defer func(m int64) { maxHeader = m }(maxHeader)
	maxHeader = need // the record alone fills it: the header is larger still
	out2 := filepath.Join(dir, "out2")
	_, err = Patch(context.Background(), f.clean, out2, []Applied{{s, 1}}, PatchOptions{})
	if !errors.Is(err, ErrHeaderTooLarge) || !strings.Contains(err.Error(), "patch in place") {
		t.Fatalf("err = %v, want ErrHeaderTooLarge with the fix", err)
	}
	if _, err := os.Stat(out2); !errors.Is(err, os.ErrNotExist) {
		t.Error("output left behind")
	}
	work := filepath.Join(dir, "work")
	copyFile(t, f.clean, work)
	if _, err := PatchInPlace(context.Background(), work, []Applied{{s, 1}}, PatchOptions{}); err != nil {
		t.Errorf("in place: %v", err)
	}
}

// TestStaleSidecar checks that an undo sidecar left beside an output path is refused, and
// replaced with --force only once the new output is written.
func TestStaleSidecar(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:1"}), filepath.Join(dir, "a.rws"))
	out := filepath.Join(dir, "out")
	if err := os.WriteFile(out+UndoSuffix, []byte("stale"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := Patch(ctx, f.clean, out, []Applied{{s, 1}}, PatchOptions{}); err == nil || !strings.Contains(err.Error(), "records in-place patches of an earlier") {
		t.Fatalf("patch beside a stale sidecar: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("output written despite the error")
	}
	if _, err := Patch(ctx, f.clean, out, []Applied{{s, 1}}, PatchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(out + UndoSuffix); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("stale sidecar kept")
	}
	back := filepath.Join(dir, "back")
	if _, err := Unpatch(ctx, out, back, UnpatchOptions{}); err != nil || !sameFile(t, back, f.clean) {
		t.Fatalf("unpatch after replacing the stale sidecar: %v", err)
	}
}

func TestParseAlpha(t *testing.T) {
	tests := []struct {
		in    string
		file  string
		alpha float64
		ok    bool
	}{
		{"fog.rws", "fog.rws", 1, true},
		{"fog.rws@0.5", "fog.rws", 0.5, true},
		{"fog.rws@-1", "fog.rws", -1, true},
		{"a@b.rws@2", "a@b.rws", 2, true},
		{"fog.rws@", "", 0, false},
		{"fog.rws@x", "", 0, false},
		{"fog.rws@inf", "", 0, false},
		{"fog.rws@nan", "", 0, false},
		{"fog.rws@1e39", "", 0, false},
	}
	for _, tc := range tests {
		f, a, err := ParseAlpha(tc.in)
		if (err == nil) != tc.ok || (tc.ok && (f != tc.file || a != tc.alpha)) {
			t.Errorf("ParseAlpha(%q) = %q, %v, %v", tc.in, f, a, err)
		}
	}
}

// TestStoredUndo checks the path of a small unquantized patch of a large model: its undo record
// stores the XOR as it is, the model is copied while the record is computed, and the result is
// the same patch, removed exactly, in every float type; a failure while copying leaves nothing.
func TestStoredUndo(t *testing.T) {
	ctx := context.Background()
	// smallCNN's first two units (about 1 KB) beside 64 KiB values of classifier-like weights.
	layout := append(append([]entry(nil), smallCNN...), entry{"extra.weight", []int64{256, 256}})
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16, tensor.BF16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := t.TempDir()
			f := makeFamily(t, dir, layout, dt, 1)
			s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:1"}), filepath.Join(dir, "s.rws"))
			p, err := makePlan(ctx, f.clean, []Applied{{s, -0.7}}, KeepStats, &scratch{})
			if err != nil {
				t.Fatal(err)
			}
			if !storeUndo(p) {
				t.Fatal("storeUndo is false for this patch: the test does not cover the stored path")
			}
			out := filepath.Join(dir, "out")
			if _, err := Patch(ctx, f.clean, out, []Applied{{s, -0.7}}, PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			for _, ut := range undoEntries(t, out) {
				if int64(len(ut.XOR)) != storedLen(ut.Size) || len(ut.Terms) != 0 {
					t.Errorf("tensor %q: XOR of %d bytes, %d terms; want stored (%d bytes), no terms", ut.Name, len(ut.XOR), len(ut.Terms), storedLen(ut.Size))
				}
			}
			// The same tensors as an in-place patch writes.
			work := filepath.Join(dir, "work")
			copyFile(t, f.clean, work)
			if _, err := PatchInPlace(ctx, work, []Applied{{s, -0.7}}, PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			a, b := readAll(t, out), readAll(t, work)
			for name, v := range b {
				if !bytes.Equal(a[name], v) {
					t.Errorf("tensor %q differs from the in-place patch", name)
				}
			}
			back := filepath.Join(dir, "back")
			if _, err := Unpatch(ctx, out, back, UnpatchOptions{NoSync: true}); err != nil || !sameFile(t, back, f.clean) {
				t.Fatalf("unpatch not exact: %v", err)
			}
			// Killed while the model is being copied: no output, no temporary file.
			crashHook = func(step string) bool { return step == "copying" }
			defer func() { crashHook = nil }()
			failed := filepath.Join(dir, "failed")
			if _, err := Patch(ctx, f.clean, failed, []Applied{{s, 1}}, PatchOptions{}); !errors.Is(err, errCrash) {
				t.Fatalf("err = %v, want the simulated crash", err)
			}
			crashHook = nil
			entries, _ := os.ReadDir(dir)
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "failed") || strings.HasPrefix(e.Name(), ".failed") {
					t.Errorf("%s left behind", e.Name())
				}
			}
		})
	}
}
