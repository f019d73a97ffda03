package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/rws-project/rws/signature"
)

func init() {
	register(&command{
		name:    "patch",
		summary: "apply signatures to a model: θ = θ + Σ α·RWS (out of place, or crash-safe in place)",
		usage: `rws patch MODEL -s SIG.rws[@α] [-s SIG2.rws@α2 …] (-o OUT | --in-place) [--authors-scaling]
       [--bn-stats keep|signature] [--force] [--no-sync] [--json]

α defaults to 1 and may be negative. Only the signatures' tensors change (computed in float32 and
rounded once into the model's type); every other tensor is copied byte for byte. OUT records the
patch and what 'rws unpatch' needs to give back MODEL exactly. --in-place rewrites only the
touched tensors of MODEL, keeping the originals in MODEL.rws-undo; an interrupted run is rolled
back by the next rws command on MODEL.

rws makes what it writes durable before it exits (fsync), which for a large OUT costs the time
the disk takes to store it. --no-sync skips that, as cp and most tools do: OUT is still complete
or absent, and an in-place patch is still undone by the next rws command if rws is killed, but a
power failure or an OS crash in the next seconds can lose OUT or leave an in-place patch that
cannot be rolled back. Use it for scratch models, sweeps and files that can be made again.

--authors-scaling reproduces the published script, which multiplies by α twice and divides by N
for N signatures, so that each signature gets α·α/N² (the sign of α is lost). It exists to
compare with results made by that script; without it, rws applies the formula θ + Σ α·RWS.
The patch record holds the coefficients actually applied.

Batch-norm running statistics are not signature material; --bn-stats says what becomes of the
model's. keep (the default) leaves them as they are. signature takes the robust model's, from a
signature extracted with 'rws extract --bn-stats': each running_mean and running_var it carries
becomes (1−α)·model + α·signature, with that signature's α (after --authors-scaling, if given),
computed in float64 and rounded once into the model's type; α = 1 gives the signature's values
exactly, and α must lie between 0 and 1. Each statistic must come from one signature: two
signatures carrying the same one is an error (statistics of different layers may come from
different signatures). num_batches_tracked is left alone. The output says which statistics were
replaced, and unpatch restores them byte for byte like every other tensor. The third policy,
re-estimating the statistics on corrupted images, is 'rws recalibrate'.

A sharded checkpoint is patched through its index, out of place only:
  rws patch model.safetensors.index.json -s SIG.rws -o OUTDIR/model.safetensors.index.json
OUT must end in .index.json and lie in another folder than MODEL. Every shard is written beside
OUT under its own name: a shard holding signature tensors is patched as a single file would be
(with its own undo record), the others and the index are copied byte for byte. A failed run
leaves none of them behind.`,
		run: runPatch,
	})
	describers = append(describers, describePatches)
}

// describePatches lists, for rws inspect, the patches a model carries (metadata and sidecar).
func describePatches(path string, meta map[string]string) (string, bool, error) {
	if signature.IsSignature(meta) {
		return "", false, nil
	}
	if _, err := os.Stat(path + signature.UndoSuffix); meta[signature.MetaPatch] == "" && err != nil {
		return "", false, nil
	}
	h, err := signature.History(path)
	if err != nil {
		return "cannot read the patch history: " + err.Error(), true, err
	}
	if len(h) == 0 {
		return "", false, nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "patched %d times (oldest first; rws unpatch removes the last):", len(h))
	for _, e := range h {
		var parts []string
		var stats []string
		for _, s := range e.Signatures {
			parts = append(parts, fmt.Sprintf("%s@%g", s.Name, s.Alpha))
			if len(s.Stats) > 0 {
				stats = append(stats, fmt.Sprintf("%d from %s", len(s.Stats), s.Name))
			}
		}
		where := "out of place"
		if e.InPlace {
			where = "in place"
		}
		fmt.Fprintf(&b, "\n  %s: %s, %s, %d tensors", e.ID, strings.Join(parts, " + "), where, len(e.Tensors))
		if len(stats) > 0 {
			fmt.Fprintf(&b, " (batch-norm statistics replaced: %s)", strings.Join(stats, ", "))
		}
	}
	return b.String(), true, nil
}

func runPatch(ctx context.Context, a *app, args []string) error {
	c := commands["patch"]
	fs := a.flagSet(c)
	var sigs stringList
	fs.Var(&sigs, "s", "signature `file[@α]` to apply; repeat to compose several")
	out := fs.String("o", "", "output model `file`")
	authors := fs.Bool("authors-scaling", false, "compatibility: apply each of N signatures at α·α/N², as the authors' script does by accident")
	inPlace := fs.Bool("in-place", false, "patch MODEL itself (crash-safe, cost follows the signature size)")
	bnStats := fs.String("bn-stats", "keep", "batch-norm running statistics: `keep|signature` (keep the model's, or take a signature's, blended with its α)")
	force := fs.Bool("force", false, "replace an existing output file")
	noSync := fs.Bool("no-sync", false, "do not fsync: safe against a killed process, not against a power failure")
	asJSON := fs.Bool("json", false, "print JSON: {id, model, out, in_place, signatures:[{name,file,sha256,alpha,variant,codec,tensors,transfer,differ,stats_replaced}], tensors, touched_bytes, model_bytes, undo_bytes, bn_stats}")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("patch: want one MODEL, got %d arguments", len(pos))
	}
	if len(sigs) == 0 {
		return usagef("patch: no signature given (-s SIG.rws[@α])")
	}
	model := pos[0]
	if *inPlace == (*out != "") {
		return usagef("patch: give either -o OUT or --in-place")
	}
	if err := checkShardedArgs("patch", model, *out, *inPlace); err != nil {
		return err
	}
	policy, err := signature.ParseStatsPolicy(*bnStats)
	if err != nil {
		return usagef("patch: --bn-stats %q: want keep or signature", *bnStats)
	}
	if !*inPlace {
		if err := checkOutput(*out, *force, model); err != nil {
			return err
		}
	}
	var applied []signature.Applied
	for _, s := range sigs {
		file, alpha, err := signature.ParseAlpha(s)
		if err != nil {
			return err
		}
		sig, err := signature.Read(file)
		if err != nil {
			return err
		}
		applied = append(applied, signature.Applied{Sig: sig, Alpha: alpha})
	}
	if *authors {
		n := float64(len(applied))
		for i := range applied {
			a.logf("rws: authors' scaling: %s at %g·%g/%g² = %g\n", applied[i].Sig.Name, applied[i].Alpha, applied[i].Alpha, n, applied[i].Alpha*applied[i].Alpha/(n*n))
			applied[i].Alpha *= applied[i].Alpha / (n * n)
		}
	}
	if did, err := signature.RecoverReport(model); err != nil {
		return err
	} else if did != "" {
		a.logf("rws: %s: an interrupted operation was found and %s\n", model, did)
	}
	opts := signature.PatchOptions{Force: *force, Command: commandLine("patch", args), BNStats: policy, NoSync: *noSync}
	var rep *signature.PatchReport
	if *inPlace {
		rep, err = signature.PatchInPlace(ctx, model, applied, opts)
	} else {
		rep, err = signature.Patch(ctx, model, *out, applied, opts)
	}
	if err != nil {
		if errors.Is(err, signature.ErrMismatch) {
			return withHint(err, "a signature applies to models of the architecture it was extracted from")
		}
		if errors.Is(err, signature.ErrNoStats) {
			return withHint(err, "patch with --bn-stats keep (the default), or extract the signature again with --bn-stats")
		}
		return err
	}
	if *asJSON {
		return a.json(rep)
	}
	printPatch(a, rep)
	if rep.BNStats == signature.KeepStats {
		for _, s := range applied {
			if len(s.Sig.Stats) > 0 {
				a.printf("  batch-norm statistics: the model's kept; %q carries the robust model's for %d tensors (--bn-stats signature takes them)\n", s.Sig.Name, len(s.Sig.Stats))
			}
		}
	}
	return nil
}

func printPatch(a *app, rep *signature.PatchReport) {
	var parts []string
	for _, s := range rep.Signatures {
		parts = append(parts, fmt.Sprintf("%s@%g", s.Name, s.Alpha))
	}
	target := rep.Out
	if rep.InPlace {
		target = rep.Model + " (in place)"
	}
	a.printf("patched %s with %s → %s\n", rep.Model, strings.Join(parts, " + "), target)
	if len(rep.Shards) > 0 {
		a.printf("  shards patched: %s (the others copied)\n", strings.Join(rep.Shards, ", "))
	}
	a.printf("  %d tensors changed (%s of %s): %s\n", len(rep.Tensors), signature.Bytes(rep.TouchedBytes),
		signature.Bytes(rep.ModelBytes), strings.Join(rep.Tensors, ", "))
	for _, s := range rep.Signatures {
		if len(s.Stats) > 0 {
			a.printf("  batch-norm statistics replaced by %q's (blended at α = %g: (1−α)·model + α·signature): %s\n", s.Name, s.Alpha, strings.Join(s.Stats, ", "))
		}
	}
	for _, s := range rep.Signatures {
		if s.Transfer {
			a.printf("  transfer: %d of %d tensors of %s differ from the clean model %q was extracted from\n",
				len(s.Differ), s.Tensors, rep.Model, s.Name)
		} else {
			a.printf("  %q was extracted from this model (its tensors match the clean model's fingerprints)\n", s.Name)
		}
	}
	if rep.InPlace {
		a.printf("  undo: rws unpatch --in-place %s (originals kept in %s, %s)\n", rep.Model, rep.Model+signature.UndoSuffix, signature.Bytes(rep.UndoBytes))
	} else {
		a.printf("  undo: rws unpatch %s -o FILE gives back %s byte for byte (record in the metadata: %s)\n", rep.Out, rep.Model, signature.Bytes(rep.UndoBytes))
	}
}
