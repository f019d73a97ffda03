package signature

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

const indexName = "model.safetensors.index.json"

// snapshot is the content of a folder: each name (folders marked with a trailing slash) with the
// SHA-256 of the file.
type snapshot map[string]string

func snap(t *testing.T, dir string) snapshot {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	s := snapshot{}
	for _, e := range es {
		if e.IsDir() {
			s[e.Name()+"/"] = ""
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s[e.Name()] = hexSHA256(b)
	}
	return s
}

// visible is s without hidden names and journals: what a reader of the folder sees of it.
func (s snapshot) visible() snapshot {
	out := snapshot{}
	for n, h := range s {
		if !strings.HasPrefix(n, ".") && !strings.HasSuffix(n, JournalSuffix) {
			out[n] = h
		}
	}
	return out
}

// settled is s without the hidden temporary files (.NAME.tmp-*) that a kill leaves where a
// single file was being written atomically: the in-place machinery does not clean them up.
func (s snapshot) settled() snapshot {
	out := snapshot{}
	for n, h := range s {
		if !(strings.HasPrefix(n, ".") && strings.Contains(n, ".tmp-")) {
			out[n] = h
		}
	}
	return out
}

// diff says how s differs from want, "" when not at all.
func (s snapshot) diff(want snapshot) string {
	var out []string
	for n, h := range want {
		if g, ok := s[n]; !ok {
			out = append(out, "missing "+n)
		} else if g != h {
			out = append(out, "changed "+n)
		}
	}
	for n := range s {
		if _, ok := want[n]; !ok {
			out = append(out, "extra "+n)
		}
	}
	sort.Strings(out)
	return strings.Join(out, ", ")
}

// shardSigs writes the signatures the sharded tests apply: a (the first two layers, spanning two
// shards), b (features.7 alone), c (the first layer, 4-bit linear codes).
func shardSigs(t *testing.T, dir string) (family, map[string]*Signature) {
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	sigs := map[string]*Signature{}
	for name, o := range map[string]ExtractOptions{
		"a": {Layers: "first:2"},
		"b": {Layers: "features.7"},
		"c": {Layers: "first:1", Spec: quant.Spec{Codec: quant.Linear, Bits: 4}},
	} {
		o.Init, o.Clean, o.Robust = f.init, f.clean, f.robust
		sigs[name] = writeSig(t, mustExtract(t, o), filepath.Join(dir, name+".rws"))
	}
	return f, sigs
}

// shardStep is one operation of TestShardedStacks on the current checkpoint.
type shardStep struct {
	op      string // "patch" or "unpatch"
	inPlace bool
	sig     string // patch: the signature (shardSigs)
	alpha   float64
	refuse  string // the step must fail with this in its error and change nothing
}

func patchOut(sig string, alpha float64) shardStep {
	return shardStep{op: "patch", sig: sig, alpha: alpha}
}
func patchIn(sig string, alpha float64) shardStep {
	return shardStep{op: "patch", inPlace: true, sig: sig, alpha: alpha}
}

var (
	unpatchOut = shardStep{op: "unpatch"}
	unpatchIn  = shardStep{op: "unpatch", inPlace: true}
)

func refused(s shardStep, why string) shardStep { s.refuse = why; return s }

// TestShardedStacks patches sharded checkpoints of two and three shards in and out of place,
// stacked (with and without fsyncs), and checks that every unpatch gives back the folder as it was before the patch it
// removes, byte for byte (undo sidecars included), and that what is refused changes nothing.
func TestShardedStacks(t *testing.T) {
	dir := t.TempDir()
	f, sigs := shardSigs(t, dir)
	layouts := []struct {
		name   string
		shard  func(string) string
		f16    []string
		noSync bool
	}{
		{"2 shards", twoShards, nil, false},
		{"3 shards", shardOf, nil, false},
		{"3 shards, one F16", shardOf, []string{"model-00003-of-00003.safetensors"}, false},
		{"3 shards, no sync", shardOf, nil, true},
	}
	cases := []struct {
		name  string
		steps []shardStep
	}{
		{"out", []shardStep{patchOut("a", 0.5), unpatchOut}},
		{"in", []shardStep{patchIn("a", 0.5), unpatchIn}},
		{"in, unpatch out", []shardStep{patchIn("a", 0.5), unpatchOut}},
		{"out out", []shardStep{patchOut("a", 0.5), patchOut("b", -1), patchOut("c", 2), unpatchOut, unpatchOut, unpatchOut}},
		{"out in in", []shardStep{patchOut("a", 1), patchIn("b", 0.5), patchIn("c", -1), unpatchIn, unpatchOut, unpatchOut}},
		{"in in in", []shardStep{patchIn("a", 1), patchIn("c", 0.5), patchIn("a", -0.5), unpatchIn, unpatchIn, unpatchIn}},
		{"in in, unpatch out", []shardStep{patchIn("a", 1), patchIn("c", 0.5), unpatchOut, unpatchIn}},
		{"out on in", []shardStep{patchIn("a", 1), refused(patchOut("b", 1), "in-place patches recorded"), unpatchIn}},
		{"in unpatch of out", []shardStep{patchOut("a", 1), refused(unpatchIn, "was made out of place"), unpatchOut}},
		{"nothing to unpatch", []shardStep{refused(unpatchOut, "no recorded patch"), refused(unpatchIn, "no recorded patch")}},
	}
	ctx := context.Background()
	for _, l := range layouts {
		for _, tc := range cases {
			t.Run(l.name+"/"+tc.name, func(t *testing.T) {
				work := t.TempDir()
				cur := writeShardedBy(t, f.clean, filepath.Join(work, "0"), l.shard, l.f16...)
				var stack []snapshot
				folders := 0
				next := func() string {
					folders++
					d := filepath.Join(work, fmt.Sprint(folders))
					if err := os.Mkdir(d, 0o755); err != nil {
						t.Fatal(err)
					}
					return filepath.Join(d, indexName)
				}
				for i, st := range tc.steps {
					before := snap(t, filepath.Dir(cur))
					out := ""
					if !st.inPlace {
						out = next()
					}
					applied := []Applied{{sigs[st.sig], st.alpha}}
					var err error
					switch {
					case st.op == "patch" && st.inPlace:
						_, err = PatchInPlace(ctx, cur, applied, PatchOptions{NoSync: l.noSync})
					case st.op == "patch":
						_, err = Patch(ctx, cur, out, applied, PatchOptions{NoSync: l.noSync})
					case st.inPlace:
						_, err = UnpatchInPlace(ctx, cur, UnpatchOptions{NoSync: l.noSync})
					default:
						_, err = Unpatch(ctx, cur, out, UnpatchOptions{NoSync: l.noSync})
					}
					if st.refuse != "" {
						if err == nil || !strings.Contains(err.Error(), st.refuse) {
							t.Fatalf("step %d: err = %v, want it to contain %q", i, err, st.refuse)
						}
						if d := snap(t, filepath.Dir(cur)).diff(before); d != "" {
							t.Fatalf("step %d: the refused operation changed %s: %s", i, cur, d)
						}
						if out != "" {
							if left := dirFiles(t, filepath.Dir(out)); len(left) > 0 {
								t.Fatalf("step %d: the refused operation left %v", i, left)
							}
						}
						continue
					}
					if err != nil {
						t.Fatalf("step %d (%+v): %v", i, st, err)
					}
					if out != "" {
						if d := snap(t, filepath.Dir(cur)).diff(before); d != "" {
							t.Fatalf("step %d: the input changed: %s", i, d)
						}
						cur = out
					}
					if st.op == "patch" {
						stack = append(stack, before)
					} else {
						want := stack[len(stack)-1]
						stack = stack[:len(stack)-1]
						if d := snap(t, filepath.Dir(cur)).diff(want); d != "" {
							t.Fatalf("step %d: after the unpatch the checkpoint is not as before its patch: %s", i, d)
						}
					}
					h, err := History(cur)
					if err != nil {
						t.Fatalf("step %d: history: %v", i, err)
					}
					if len(h) != len(stack) {
						t.Fatalf("step %d: history of %d sharded patches, want %d", i, len(h), len(stack))
					}
				}
			})
		}
	}
}

// TestShardedReports checks what a sharded in-place patch reports and records: one id shared by
// the shards it changed, which carry it in their undo sidecars, the history of the index, and the
// report of its removal.
func TestShardedReports(t *testing.T) {
	dir := t.TempDir()
	f, sigs := shardSigs(t, dir)
	index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	ctx := context.Background()
	rep, err := PatchInPlace(ctx, index, []Applied{{sigs["a"], 0.5}, {sigs["b"], 1}}, PatchOptions{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	wantShards := []string{"model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"}
	if !rep.InPlace || strings.Join(rep.Shards, " ") != strings.Join(wantShards, " ") || len(rep.Tensors) != len(sigs["a"].Tensors)+len(sigs["b"].Tensors) {
		t.Errorf("report: in place %t, shards %v, %d tensors", rep.InPlace, rep.Shards, len(rep.Tensors))
	}
	if rep.Signatures[0].Tensors != len(sigs["a"].Tensors) || rep.Signatures[1].Tensors != 2 {
		t.Errorf("report: signatures %+v", rep.Signatures)
	}
	for _, s := range wantShards {
		recs, err := sidecarRecords(filepath.Join(dir, "in", s))
		if err != nil || len(recs) != 1 {
			t.Fatalf("shard %s: %d records, %v", s, len(recs), err)
		}
		set := recs[0].Patch.Set
		if set == nil || set.ID != rep.ID || set.Seq != 1 || strings.Join(set.Shards, " ") != strings.Join(wantShards, " ") {
			t.Errorf("shard %s records sharded patch %+v, want %s #1 of %v", s, set, rep.ID, wantShards)
		}
	}
	if _, err := os.Stat(journalPath(index)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("journal left after the patch: %v", err)
	}
	h, err := History(index)
	if err != nil || len(h) != 1 {
		t.Fatalf("history %v, %v", h, err)
	}
	if e := h[0]; e.ID != rep.ID || !e.InPlace || len(e.Tensors) != len(rep.Tensors) || len(e.Signatures) != 2 ||
		e.Signatures[0].Tensors != rep.Signatures[0].Tensors || e.Command != "test" {
		t.Errorf("history entry %+v does not describe the patch %+v", e, rep)
	}
	urep, err := UnpatchInPlace(ctx, index, UnpatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if urep.ID != rep.ID || !urep.InPlace || len(urep.Tensors) != len(rep.Tensors) || urep.Remaining != 0 || strings.Join(urep.Shards, " ") != strings.Join(wantShards, " ") {
		t.Errorf("unpatch report %+v", urep)
	}
	for _, s := range wantShards {
		if _, err := os.Stat(undoPath(filepath.Join(dir, "in", s))); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("shard %s keeps an undo sidecar after the unpatch", s)
		}
	}
}

// TestShardedRefusals checks the stacks whose newest sharded patch cannot be told or removed, and
// that the refusals name the shard and the fix.
func TestShardedRefusals(t *testing.T) {
	dir := t.TempDir()
	f, sigs := shardSigs(t, dir)
	ctx := context.Background()
	mk := func(name string) string {
		return writeSharded(t, f.clean, filepath.Join(dir, name))
	}
	outIn := func(name string) string {
		d := filepath.Join(dir, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return filepath.Join(d, indexName)
	}

	// A shard patched alone on top of a sharded patch.
	index := mk("alone")
	if _, err := PatchInPlace(ctx, index, []Applied{{sigs["a"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	shard := filepath.Join(dir, "alone", "model-00002-of-00003.safetensors")
	if _, err := PatchInPlace(ctx, shard, []Applied{{sigs["c"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, try := range []func() error{
		func() error { _, err := UnpatchInPlace(ctx, index, UnpatchOptions{}); return err },
		func() error { _, err := Unpatch(ctx, index, outIn("alone-out"), UnpatchOptions{}); return err },
	} {
		err := try()
		if err == nil || !strings.Contains(err.Error(), "made on the shard alone") || !strings.Contains(err.Error(), "rws unpatch --in-place "+shard) {
			t.Errorf("unpatch under a patch of one shard: %v", err)
		}
	}
	if left := dirFiles(t, filepath.Join(dir, "alone-out")); len(left) > 0 {
		t.Errorf("refused unpatch left %v", left)
	}
	// Removing the shard's own patch makes the sharded one removable again.
	if _, err := UnpatchInPlace(ctx, shard, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := UnpatchInPlace(ctx, index, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}

	// A shard patched alone, and no sharded patch: not the checkpoint's patch.
	if _, err := PatchInPlace(ctx, shard, []Applied{{sigs["c"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, try := range []func() error{
		func() error { _, err := UnpatchInPlace(ctx, index, UnpatchOptions{}); return err },
		func() error { _, err := Unpatch(ctx, index, outIn("alone-out"), UnpatchOptions{}); return err },
	} {
		err := try()
		if err == nil || !strings.Contains(err.Error(), "made in place on the shard alone; remove it first (rws unpatch --in-place "+shard+")") {
			t.Errorf("unpatch of a checkpoint with one shard patched alone: %v", err)
		}
	}
	if left := dirFiles(t, filepath.Join(dir, "alone-out")); len(left) > 0 {
		t.Errorf("refused unpatch left %v", left)
	}
	if _, err := UnpatchInPlace(ctx, shard, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}

	// Shards of two different patched checkpoints under one index.
	index = mk("mixed")
	p1, p2 := outIn("p1"), outIn("p2")
	if _, err := Patch(ctx, index, p1, []Applied{{sigs["a"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := Patch(ctx, index, p2, []Applied{{sigs["a"], 0.5}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	copyFile(t, filepath.Join(dir, "p2", "model-00003-of-00003.safetensors"), filepath.Join(dir, "p1", "model-00003-of-00003.safetensors"))
	_, err := Unpatch(ctx, p1, outIn("mixed-out"), UnpatchOptions{})
	if err == nil || !strings.Contains(err.Error(), "different") {
		t.Errorf("unpatch of mixed shards: %v", err)
	}

	// A checkpoint patched by an rws that recorded no sharded history: every shard patched on
	// its own. One patch per shard is the last patch; two on one shard cannot be told apart.
	index = mk("legacy")
	old := outIn("old")
	for _, s := range dirFiles(t, filepath.Join(dir, "legacy")) {
		src, dst := filepath.Join(dir, "legacy", s), filepath.Join(dir, "old", s)
		switch s {
		case "model-00002-of-00003.safetensors":
			sub := *sigs["c"]
			if _, err := Patch(ctx, src, dst, []Applied{{&sub, 1}}, PatchOptions{}); err != nil {
				t.Fatal(err)
			}
		default:
			copyFile(t, src, dst)
		}
	}
	back := outIn("old-back")
	urep, err := Unpatch(ctx, old, back, UnpatchOptions{})
	if err != nil {
		t.Fatalf("unpatch of a checkpoint patched shard by shard: %v", err)
	}
	if strings.Join(urep.Shards, " ") != "model-00002-of-00003.safetensors" {
		t.Errorf("unpatched shards %v", urep.Shards)
	}
	if d := snap(t, filepath.Dir(back)).diff(snap(t, filepath.Join(dir, "legacy"))); d != "" {
		t.Errorf("unpatch of a checkpoint patched shard by shard: %s", d)
	}
	twice, tmp := filepath.Join(dir, "old", "model-00002-of-00003.safetensors"), filepath.Join(dir, "twice.safetensors")
	if _, err := Patch(ctx, twice, tmp, []Applied{{sigs["c"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	copyFile(t, tmp, twice)
	_, err = Unpatch(ctx, old, outIn("old-back2"), UnpatchOptions{})
	if err == nil || !strings.Contains(err.Error(), "carries 2 patches") {
		t.Errorf("unpatch of a shard patched twice on its own: %v", err)
	}
}

// crashOn returns a crashHook that stops at the nth time step is reached.
func crashOn(step string, nth int) func(string) bool {
	n := 0
	return func(s string) bool {
		if s == step {
			n++
			return n == nth
		}
		return false
	}
}

// TestShardedCrash stops sharded in-place patches and unpatches, and sharded outputs, at every
// step, as a kill would, and checks what the next Recover makes of them: an in-place patch is
// rolled back on every shard, an in-place unpatch completed on every shard, an output written
// before its commit removed and one after it completed, and a replaced output kept whole until
// the commit.
func TestShardedCrash(t *testing.T) {
	dir := t.TempDir()
	f, sigs := shardSigs(t, dir)
	ctx := context.Background()
	type point struct {
		step string
		nth  int
	}
	// The reference states: the checkpoint, after a in place, after c, after c then a; and the
	// outputs of a and of b out of place.
	ref := writeSharded(t, f.clean, filepath.Join(dir, "ref"))
	s0 := snap(t, filepath.Dir(ref))
	if _, err := PatchInPlace(ctx, ref, []Applied{{sigs["a"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	sA := snap(t, filepath.Dir(ref))
	if _, err := UnpatchInPlace(ctx, ref, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := PatchInPlace(ctx, ref, []Applied{{sigs["c"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	sC := snap(t, filepath.Dir(ref))
	if _, err := PatchInPlace(ctx, ref, []Applied{{sigs["a"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	sCA := snap(t, filepath.Dir(ref))

	t.Run("patch in place", func(t *testing.T) {
		points := []point{{"set journal", 1}, {"journal", 1}, {"write 0 half", 1}, {"write 1 half", 1}, {"written", 1},
			{"set shard 1", 1}, {"journal", 2}, {"write 0 half", 2}, {"written", 2}, {"set shard 2", 1}}
		for _, pre := range []bool{false, true} {
			for _, pt := range append(points, point{"committed", 1}) {
				if pt.step == "committed" && !pre {
					continue // a shard commits by merging only when it has a sidecar already
				}
				name := fmt.Sprintf("pre %t/%s %d", pre, pt.step, pt.nth)
				d := filepath.Join(dir, "work")
				os.RemoveAll(d)
				index := writeSharded(t, f.clean, d)
				before, after := s0, sA
				if pre {
					if _, err := PatchInPlace(ctx, index, []Applied{{sigs["c"], 1}}, PatchOptions{}); err != nil {
						t.Fatal(err)
					}
					before, after = sC, sCA
				}
				sig := sigs["a"]
				crashHook = crashOn(pt.step, pt.nth)
				_, err := PatchInPlace(ctx, index, []Applied{{sig, 1}}, PatchOptions{})
				crashHook = nil
				if !errors.Is(err, errCrash) {
					t.Fatalf("%s: err = %v, want the simulated crash", name, err)
				}
				did, err := RecoverReport(index)
				if err != nil {
					t.Fatalf("%s: recover: %v", name, err)
				}
				if pt.step != "committed" && !strings.Contains(did, "rolled back sharded patch") {
					t.Errorf("%s: recovery says %q", name, did)
				}
				if got := snap(t, d).diff(before); got != "" {
					t.Fatalf("%s: after recovery (%s) the checkpoint is not as before the patch: %s", name, did, got)
				}
				// It works on: the same patch again gives the uninterrupted result.
				if _, err := PatchInPlace(ctx, index, []Applied{{sig, 1}}, PatchOptions{}); err != nil {
					t.Fatalf("%s: patch after recovery: %v", name, err)
				}
				if got := snap(t, d).diff(after); got != "" {
					t.Fatalf("%s: the patch after recovery differs from an uninterrupted one: %s", name, got)
				}
			}
		}
	})

	t.Run("unpatch in place", func(t *testing.T) {
		points := []point{{"set journal", 1}, {"journal", 1}, {"restored", 1}, {"committed", 1}, {"set shard 1", 1},
			{"journal", 2}, {"restored", 2}, {"committed", 2}, {"set shard 2", 1}}
		for _, pt := range points {
			name := fmt.Sprintf("%s %d", pt.step, pt.nth)
			d := filepath.Join(dir, "work")
			os.RemoveAll(d)
			index := writeSharded(t, f.clean, d)
			for _, s := range []string{"c", "a"} {
				if _, err := PatchInPlace(ctx, index, []Applied{{sigs[s], 1}}, PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			crashHook = crashOn(pt.step, pt.nth)
			_, err := UnpatchInPlace(ctx, index, UnpatchOptions{})
			crashHook = nil
			if !errors.Is(err, errCrash) {
				t.Fatalf("%s: err = %v, want the simulated crash", name, err)
			}
			did, err := RecoverReport(index)
			if err != nil {
				t.Fatalf("%s: recover: %v", name, err)
			}
			if !strings.Contains(did, "completed sharded unpatch") {
				t.Errorf("%s: recovery says %q", name, did)
			}
			if got := snap(t, d).diff(sC); got != "" {
				t.Fatalf("%s: after recovery (%s) the unpatch is not complete: %s", name, did, got)
			}
		}
	})

	t.Run("crash in the rollback", func(t *testing.T) {
		d := filepath.Join(dir, "work")
		os.RemoveAll(d)
		index := writeSharded(t, f.clean, d)
		crashHook = crashOn("set shard 2", 1)
		PatchInPlace(ctx, index, []Applied{{sigs["a"], 1}}, PatchOptions{})
		// The rollback itself is stopped in its second shard, then run again.
		crashHook = crashOn("restored", 2)
		if _, err := RecoverReport(index); !errors.Is(err, errCrash) {
			t.Fatalf("recover: err = %v, want the simulated crash", err)
		}
		crashHook = nil
		if _, err := os.Stat(journalPath(index)); err != nil {
			t.Fatalf("the interrupted rollback removed the journal: %v", err)
		}
		if _, err := RecoverReport(index); err != nil {
			t.Fatal(err)
		}
		if got := snap(t, d).diff(s0); got != "" {
			t.Fatalf("after the second recovery: %s", got)
		}
	})

	// The outputs of a (new) and of b (replaced by a with force).
	in := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	outputs := map[string]snapshot{}
	for _, s := range []string{"a", "b"} {
		o := filepath.Join(dir, "ref-"+s, indexName)
		os.Mkdir(filepath.Dir(o), 0o755)
		if _, err := Patch(ctx, in, o, []Applied{{sigs[s], 1}}, PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		outputs[s] = snap(t, filepath.Dir(o))
	}
	t.Run("output", func(t *testing.T) {
		points := []point{{"staged 1", 1}, {"staged 2", 1}, {"staged 3", 1}, {"staged", 1}, {"commit", 1},
			{"moved 1", 1}, {"moved 2", 1}, {"moved 3", 1}, {"moved 4", 1}}
		for _, replace := range []bool{false, true} {
			for i, pt := range points {
				committed := i >= 4
				name := fmt.Sprintf("replace %t/%s", replace, pt.step)
				d := filepath.Join(dir, "out")
				os.RemoveAll(d)
				os.Mkdir(d, 0o755)
				out := filepath.Join(d, indexName)
				before := snapshot{}
				if replace {
					if _, err := Patch(ctx, in, out, []Applied{{sigs["b"], 1}}, PatchOptions{}); err != nil {
						t.Fatal(err)
					}
					before = outputs["b"]
				}
				crashHook = crashOn(pt.step, pt.nth)
				_, err := Patch(ctx, in, out, []Applied{{sigs["a"], 1}}, PatchOptions{Force: replace})
				crashHook = nil
				if !errors.Is(err, errCrash) {
					t.Fatalf("%s: err = %v, want the simulated crash", name, err)
				}
				// Before recovery, an index names the old output or the new one, whole.
				if got := snap(t, d).visible(); got[indexName] != "" && got.diff(outputs["a"]) != "" && got.diff(before) != "" {
					t.Errorf("%s: before recovery the index names a mix: %s", name, got.diff(outputs["a"]))
				}
				if !committed && !replace && len(snap(t, d).visible()) > 0 {
					t.Errorf("%s: before the commit, files are visible: %v", name, snap(t, d).visible())
				}
				did, err := RecoverReport(out)
				if err != nil {
					t.Fatalf("%s: recover: %v", name, err)
				}
				want := before
				if committed {
					want = outputs["a"]
				}
				if got := snap(t, d).diff(want); got != "" {
					t.Fatalf("%s: after recovery (%s): %s", name, did, got)
				}
			}
		}
	})
}

// FuzzShardedJournal checks that the journal parser never panics, that what it accepts names
// only files below the journal's folder, and that an accepted journal reads back the same after
// it is written again.
func FuzzShardedJournal(f *testing.F) {
	f.Add([]byte(`{"format":"rws.sharded-journal","version":1,"op":"patch","id":"0123456789abcdef","shards":["model-00001-of-00002.safetensors"]}`))
	f.Add([]byte(`{"format":"rws.sharded-journal","version":1,"op":"unpatch","id":"0123456789abcdef","shards":["a","b/c"]}`))
	f.Add([]byte(`{"format":"rws.sharded-journal","version":1,"op":"write"}`))
	f.Add([]byte(`{"format":"rws.sharded-journal","version":1,"op":"commit","files":["a","m.index.json"],"remove":["a.rws-undo"]}`))
	f.Add([]byte(`{"format":"rws.sharded-journal","version":2,"op":"write"}`))
	f.Add([]byte(`{"format":"rws.sharded-journal","version":1,"op":"patch","id":"x","shards":["../a"]}`))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		j, err := parseShardedJournal("j", b)
		if err != nil {
			return
		}
		for _, n := range append(append(append([]string(nil), j.Shards...), j.Files...), j.Remove...) {
			if !validName(n) {
				t.Fatalf("accepted the file name %q", n)
			}
		}
		again, err := parseShardedJournal("j", []byte(marshal(j)))
		if err != nil || marshal(again) != marshal(j) {
			t.Fatalf("an accepted journal does not read back: %v", err)
		}
	})
}

// TestShardedForce checks that an output replaced with force is the new output exactly: the undo
// sidecars of the output it replaces go when the new one has none.
func TestShardedForce(t *testing.T) {
	dir := t.TempDir()
	f, sigs := shardSigs(t, dir)
	ctx := context.Background()
	index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	out := func(name string) string {
		d := filepath.Join(dir, name)
		os.Mkdir(d, 0o755)
		return filepath.Join(d, indexName)
	}
	plain := out("plain")
	if _, err := Patch(ctx, index, plain, []Applied{{sigs["b"], 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	// An output with sidecars: the checkpoint under a and c in place, without c.
	stacked := writeSharded(t, f.clean, filepath.Join(dir, "stacked"))
	for _, s := range []string{"a", "c"} {
		if _, err := PatchInPlace(ctx, stacked, []Applied{{sigs[s], 1}}, PatchOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	o := out("o")
	if _, err := Unpatch(ctx, stacked, o, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if len(snap(t, filepath.Dir(o))) != 6 {
		t.Fatalf("the unpatched output holds %v, want 3 shards, 2 sidecars and the index", snap(t, filepath.Dir(o)))
	}
	if _, err := Patch(ctx, index, o, []Applied{{sigs["b"], 1}}, PatchOptions{}); !errors.Is(err, atomicfile.ErrExists) {
		t.Fatalf("patch over an existing output without force: %v", err)
	}
	if _, err := Patch(ctx, index, o, []Applied{{sigs["b"], 1}}, PatchOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if d := snap(t, filepath.Dir(o)).diff(snap(t, filepath.Dir(plain))); d != "" {
		t.Errorf("the replaced output is not the new one: %s", d)
	}
}

// TestShardedInPlaceStats checks SignatureStats on a sharded checkpoint patched in place: every
// tensor holds what the single-file patch writes, and the unpatch gives back every file.
func TestShardedInPlaceStats(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	// With statistics: features.0 and .1 (shard 2); without: features.7 (shard 3).
	a := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:1", BNStats: true}), filepath.Join(dir, "a.rws"))
	b := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "features.7"}), filepath.Join(dir, "b.rws"))
	applied := []Applied{{a, 0.5}, {b, 1}}
	single := filepath.Join(dir, "single.safetensors")
	if _, err := Patch(ctx, f.clean, single, applied, PatchOptions{BNStats: SignatureStats}); err != nil {
		t.Fatal(err)
	}
	index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	before := snap(t, filepath.Dir(index))
	rep, err := PatchInPlace(ctx, index, applied, PatchOptions{BNStats: SignatureStats})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BNStats != SignatureStats || len(rep.Signatures[0].Stats) == 0 || len(rep.Signatures[1].Stats) != 0 {
		t.Errorf("report: policy %q, statistics replaced %v and %v", rep.BNStats, rep.Signatures[0].Stats, rep.Signatures[1].Stats)
	}
	r, err := safetensors.Open(single)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, in := range r.Tensors() {
		if !bytes.Equal(rawTensor(t, single, in.Name), rawTensor(t, index, in.Name)) {
			t.Errorf("tensor %q differs from the single-file patch", in.Name)
		}
	}
	if _, err := UnpatchInPlace(ctx, index, UnpatchOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := snap(t, filepath.Dir(index)).diff(before); d != "" {
		t.Errorf("after the unpatch: %s", d)
	}
}
