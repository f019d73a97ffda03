package signature

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/rws-project/rws/internal/atomicfile"
)

// writeJournal writes a sharded journal for the operation j on index, synced unless noSync; one
// that exists is an error (recovery runs first).
func writeJournal(index string, j shardedJournal, noSync bool) error {
	if err := atomicfile.WriteFile(journalPath(index), []byte(marshal(j)+"\n"), atomicfile.Options{NoSync: noSync}); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}

// endJournal removes the sharded journal of index once its operation is committed.
func endJournal(index string, noSync bool) error {
	if err := os.Remove(journalPath(index)); err != nil {
		return err
	}
	return syncDir(filepath.Dir(index), noSync)
}

// openShardsInPlace locks the sharded checkpoint index for an in-place operation, finishes what
// an interrupted one left (the checkpoint's journal, then each shard's), and opens it; release
// closes and unlocks it.
func openShardsInPlace(index string) (*shards, func(), error) {
	unlock, err := lockIndex(index)
	if err != nil {
		return nil, nil, err
	}
	if _, err := recoverShardedLocked(index); err != nil {
		unlock()
		return nil, nil, err
	}
	sh, err := openShards(index)
	if err != nil {
		unlock()
		return nil, nil, err
	}
	release := func() { sh.close(); unlock() }
	dir := filepath.Dir(index)
	for _, f := range sh.files {
		if _, err := RecoverReport(filepath.Join(dir, f)); err != nil {
			release()
			return nil, nil, err
		}
	}
	return sh, release, nil
}

// patchShardedInPlace is PatchInPlace for a sharded checkpoint: each shard that stores some of
// the signatures' tensors is patched in place (PatchInPlace, its own journal and sidecar), all of
// them recording one SetPatch; the sharded journal written first makes the whole crash-safe (see
// shardjournal.go). A failure rolls back the shards patched so far.
func patchShardedInPlace(ctx context.Context, index string, sigs []Applied, opts PatchOptions) (rep *PatchReport, err error) {
	sh, release, err := openShardsInPlace(index)
	if err != nil {
		return nil, err
	}
	defer release()
	parts, touched, stats, err := sh.split(sigs, opts.BNStats)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(index)
	h, err := readShardHistory(sh)
	if err != nil {
		return nil, err
	}
	rep = newReport(index, sigs, opts, stats)
	rep.InPlace = true
	set := &SetPatch{Seq: h.depth() + 1, Shards: touched}
	if set.ID, err = setID(sh, set.Seq, true, touched, sigs); err != nil {
		return nil, err
	}
	rep.ID = set.ID
	for _, f := range sh.files {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return nil, fmt.Errorf("signature: %w", err)
		}
		rep.ModelBytes += st.Size()
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := newJournal(opPatch)
	j.ID, j.Shards = set.ID, touched
	if err := writeJournal(index, j, opts.NoSync); err != nil {
		return nil, err
	}
	if crashAt("set journal") {
		return nil, errCrash
	}
	sopts := opts
	sopts.set = set
	for i, f := range touched {
		r, err := PatchInPlace(ctx, filepath.Join(dir, f), parts[f].sigs, parts[f].options(sopts))
		if errors.Is(err, errCrash) {
			return nil, err
		}
		if err != nil {
			if _, rerr := recoverShardedLocked(index); rerr != nil {
				return nil, fmt.Errorf("%w; rolling back the shards patched before failed too (%v): the next rws command on %s tries again", err, rerr, index)
			}
			return nil, err
		}
		rep.add(f, r, parts[f])
		if crashAt(fmt.Sprintf("set shard %d", i+1)) {
			return nil, errCrash
		}
	}
	if err := endJournal(index, opts.NoSync); err != nil {
		return nil, err
	}
	return rep, nil
}

// unpatchShardedInPlace is UnpatchInPlace for a sharded checkpoint: it removes the newest sharded
// patch, which must have been made in place, from every shard that carries it, crash-safe like
// patchShardedInPlace (an interrupted unpatch is completed).
func unpatchShardedInPlace(ctx context.Context, index string, opts UnpatchOptions) (*UnpatchReport, error) {
	sh, release, err := openShardsInPlace(index)
	if err != nil {
		return nil, err
	}
	defer release()
	dir := filepath.Dir(index)
	h, err := readShardHistory(sh)
	if err != nil {
		return nil, err
	}
	if len(h.patches) == 0 {
		old, err := h.legacy()
		if err != nil {
			return nil, err
		}
		if len(old) > 0 {
			return nil, fmt.Errorf("signature: %s: %w in place: its patch was made out of place; remove it with rws unpatch %s -o OUTDIR/%s", index, ErrNotPatched, index, filepath.Base(index))
		}
		return nil, fmt.Errorf("signature: %s: %w (none of its %d shards carries a sharded patch)", index, ErrNotPatched, len(sh.files))
	}
	top, err := h.newest()
	if err != nil {
		return nil, err
	}
	if !top.inPlace {
		return nil, fmt.Errorf("signature: %s: %w in place: its newest patch %s was made out of place; remove it with rws unpatch %s -o OUTDIR/%s", index, ErrNotPatched, top.ID, index, filepath.Base(index))
	}
	// Every shard must still hold what the patch wrote before any is touched.
	recIDs := map[string]string{}
	for _, f := range top.Shards {
		p := filepath.Join(dir, f)
		side, err := readSidecar(undoPath(p))
		if err != nil {
			return nil, err
		}
		rec, _, err := topRecord(p, side)
		if err != nil {
			return nil, err
		}
		if rec.Patch.Set == nil || rec.Patch.Set.ID != top.ID {
			return nil, fmt.Errorf("signature: %s: its newest in-place patch %s is not part of sharded patch %s", p, rec.ID, top.ID)
		}
		recIDs[f] = rec.ID
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := newJournal(opUnpatch)
	j.ID, j.Shards = top.ID, top.Shards
	if err := writeJournal(index, j, opts.NoSync); err != nil {
		return nil, err
	}
	if crashAt("set journal") {
		return nil, errCrash
	}
	rep := &UnpatchReport{ID: top.ID, Model: index, InPlace: true, Patch: top.entry(), Remaining: len(h.patches) - 1}
	if old, err := h.legacy(); err == nil && len(old) > 0 {
		rep.Remaining++
	}
	for i, f := range top.Shards {
		// Once the journal is written the unpatch is completed, interrupted or not.
		r, err := unpatchInPlace(context.WithoutCancel(ctx), filepath.Join(dir, f), recIDs[f], opts)
		if errors.Is(err, errCrash) {
			return nil, err
		}
		if err != nil {
			return nil, fmt.Errorf("%w (the next rws command on %s completes the unpatch)", err, index)
		}
		rep.Shards = append(rep.Shards, f)
		rep.Tensors = append(rep.Tensors, r.Tensors...)
		if crashAt(fmt.Sprintf("set shard %d", i+1)) {
			return nil, errCrash
		}
	}
	if err := endJournal(index, opts.NoSync); err != nil {
		return nil, err
	}
	return rep, nil
}
