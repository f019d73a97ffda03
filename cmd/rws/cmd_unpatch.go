package main

import (
	"context"
	"errors"
	"strings"

	"github.com/rws-project/rws/signature"
)

func init() {
	register(&command{
		name:    "unpatch",
		summary: "remove the last patch: give back the model exactly as it was before",
		usage: `rws unpatch PATCHED (-o OUT | --in-place) [--force] [--no-sync] [--json]

Every tensor comes back byte for byte, with the original metadata. The newest in-place patch
(recorded in PATCHED.rws-undo) is removed first, then the out-of-place one recorded in the
metadata. A model whose patched tensors were changed since is refused.

--no-sync skips the fsyncs, as for rws patch.

A sharded checkpoint patched by 'rws patch' is unpatched through its index, out of place only:
  rws unpatch OUTDIR/model.safetensors.index.json -o BACKDIR/model.safetensors.index.json
OUT must end in .index.json and lie in another folder than PATCHED. Each patched shard is
unpatched, the others and the index are copied, so the result is the original checkpoint byte for
byte. A shard carrying several patches is refused (unpatch its shards one by one).`,
		run: runUnpatch,
	})
}

func runUnpatch(ctx context.Context, a *app, args []string) error {
	c := commands["unpatch"]
	fs := a.flagSet(c)
	out := fs.String("o", "", "output model `file`")
	inPlace := fs.Bool("in-place", false, "restore PATCHED itself (its newest in-place patch)")
	force := fs.Bool("force", false, "replace an existing output file")
	noSync := fs.Bool("no-sync", false, "do not fsync: safe against a killed process, not against a power failure (see rws patch --help)")
	asJSON := fs.Bool("json", false, "print JSON: {id, model, out, in_place, tensors, patch, remaining}")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("unpatch: want one PATCHED model, got %d arguments", len(pos))
	}
	model := pos[0]
	if *inPlace == (*out != "") {
		return usagef("unpatch: give either -o OUT or --in-place")
	}
	if err := checkShardedArgs("unpatch", model, *out, *inPlace); err != nil {
		return err
	}
	if !*inPlace {
		if err := checkOutput(*out, *force, model); err != nil {
			return err
		}
	}
	if did, err := signature.RecoverReport(model); err != nil {
		return err
	} else if did != "" {
		a.logf("rws: %s: an interrupted operation was found and %s\n", model, did)
	}
	var rep *signature.UnpatchReport
	opts := signature.UnpatchOptions{Force: *force, NoSync: *noSync}
	if *inPlace {
		rep, err = signature.UnpatchInPlace(ctx, model, opts)
	} else {
		rep, err = signature.Unpatch(ctx, model, *out, opts)
	}
	if err != nil {
		if errors.Is(err, signature.ErrNotPatched) {
			return withHint(err, "only models written by rws patch can be unpatched")
		}
		return err
	}
	if *asJSON {
		return a.json(rep)
	}
	target := rep.Out
	if rep.InPlace {
		target = rep.Model + " (in place)"
	}
	a.printf("removed patch %s from %s → %s\n  restored %d tensors: %s\n", rep.ID, rep.Model, target,
		len(rep.Tensors), strings.Join(rep.Tensors, ", "))
	if len(rep.Shards) > 0 {
		a.printf("  shards unpatched: %s (the others copied)\n", strings.Join(rep.Shards, ", "))
	}
	if rep.Remaining > 0 {
		a.printf("  %d earlier patches remain; run unpatch again to remove the next\n", rep.Remaining)
	}
	return nil
}
