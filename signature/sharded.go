package signature

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/safetensors"
)

// ErrShardedInPlace is wrapped when an operation on one safetensors file is given a sharded
// checkpoint. (Its name is that of the time when sharded checkpoints were patched out of place
// only; PatchInPlace and UnpatchInPlace now take them through their index.)
var ErrShardedInPlace = errors.New("a sharded checkpoint is patched through its index (NAME.safetensors.index.json), not shard by shard here")

// isIndex reports whether path names a sharded checkpoint by its index, as safetensors.Open
// tells them apart.
func isIndex(path string) bool { return strings.HasSuffix(path, ".index.json") }

// shards is a sharded checkpoint: its index and the shard files it names.
type shards struct {
	index string
	raw   []byte   // the index file, byte for byte
	files []string // shard paths relative to the index's folder, sorted
	// of maps each tensor to the shard (relative path) that stores it.
	of map[string]string
	r  *safetensors.Reader
}

// openShards opens the sharded checkpoint index (validated as safetensors.Open does).
func openShards(index string) (*shards, error) {
	r, err := safetensors.Open(index)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	raw, err := os.ReadFile(index)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("signature: %w", err)
	}
	sh := &shards{index: index, raw: raw, of: map[string]string{}, r: r}
	dir := filepath.Dir(index)
	seen := map[string]bool{}
	for _, in := range r.Tensors() {
		rel, err := filepath.Rel(dir, in.File)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("signature: %w", err)
		}
		sh.of[in.Name] = rel
		if !seen[rel] {
			seen[rel] = true
			sh.files = append(sh.files, rel)
		}
	}
	sort.Strings(sh.files)
	return sh, nil
}

func (sh *shards) close() { sh.r.Close() }

// checkOut refuses an output index that would not make a sharded checkpoint beside the input:
// out must be a *.index.json in another folder, and, without force, neither it nor any shard
// file beside it may exist.
func (sh *shards) checkOut(out string, force bool) error {
	if !isIndex(out) {
		return fmt.Errorf("signature: output %q must be an index (*.index.json) for the sharded checkpoint %s; its shards are written beside it", out, sh.index)
	}
	inDir, err := os.Stat(filepath.Dir(sh.index))
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	outDir, err := os.Stat(filepath.Dir(out))
	if err != nil {
		return fmt.Errorf("signature: output folder: %w", err)
	}
	if os.SameFile(inDir, outDir) {
		return fmt.Errorf("signature: output %q is in the folder of the sharded checkpoint %s, whose shards it would overwrite: write it to another folder", out, sh.index)
	}
	for _, p := range sh.outputs(out) {
		st, err := os.Stat(p)
		if err == nil && st.IsDir() {
			return fmt.Errorf("signature: output %q is a directory", p)
		}
		if err == nil && !force {
			return fmt.Errorf("signature: %w: %q (use --force to replace it)", atomicfile.ErrExists, p)
		}
		if err := checkStale(p, force); err != nil {
			return err
		}
	}
	return nil
}

// outputs lists the files written for the output index out: every shard, then the index.
func (sh *shards) outputs(out string) []string {
	var ps []string
	for _, f := range sh.files {
		ps = append(ps, filepath.Join(filepath.Dir(out), f))
	}
	return append(ps, out)
}

// shardedID is the identifier of a patch of an rws that recorded no sharded history: a digest of
// its shards' patch identifiers.
func shardedID(ids []string) string {
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s\n", id)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// part is what a sharded patch applies to one shard: the part of every signature that the shard
// stores.
type part struct {
	sigs  []Applied
	from  []int // index in the signatures given of each part's signature
	stats bool  // some of its signatures carry running statistics to blend in
}

// split cuts the signatures into the parts each shard stores; every tensor must be in the
// checkpoint (matchTerms), and so must the running statistics that policy blends in
// (matchStats). It returns the parts, the shards they go to, sorted, and whether statistics are
// blended in.
func (sh *shards) split(sigs []Applied, policy StatsPolicy) (map[string]*part, []string, bool, error) {
	if len(sigs) == 0 {
		return nil, nil, false, fmt.Errorf("signature: no signature to apply")
	}
	terms, err := matchTerms(sh.r, sh.index, sigs)
	if err != nil {
		return nil, nil, false, err
	}
	stats, err := matchStats(sh.r, sh.index, sigs, policy, terms)
	if err != nil {
		return nil, nil, false, err
	}
	parts := map[string]*part{}
	for k, a := range sigs {
		by := map[string]*Signature{}
		sub := func(f string) *Signature {
			if by[f] == nil {
				s := *a.Sig
				s.Tensors, s.Stats = nil, nil
				by[f] = &s
			}
			return by[f]
		}
		for _, t := range a.Sig.Tensors {
			s := sub(sh.of[t.Name])
			s.Tensors = append(s.Tensors, t)
		}
		for _, st := range a.Sig.Stats {
			if _, ok := stats[st.Name]; ok {
				s := sub(sh.of[st.Name])
				s.Stats = append(s.Stats, st)
			}
		}
		for f, s := range by {
			if parts[f] == nil {
				parts[f] = &part{}
			}
			parts[f].sigs = append(parts[f].sigs, Applied{Sig: s, Alpha: a.Alpha})
			parts[f].from = append(parts[f].from, k)
			parts[f].stats = parts[f].stats || len(s.Stats) > 0
		}
	}
	var touched []string
	for _, f := range sh.files {
		if parts[f] != nil {
			touched = append(touched, f)
		}
	}
	return parts, touched, stats != nil, nil
}

// options are the options of the patch of one shard: the statistics to blend in may lie in other
// shards.
func (p *part) options(opts PatchOptions) PatchOptions {
	if !p.stats {
		opts.BNStats = KeepStats
	}
	return opts
}

// newReport starts the report of a sharded patch; stats says whether it blends in running
// statistics.
func newReport(index string, sigs []Applied, opts PatchOptions, stats bool) *PatchReport {
	rep := &PatchReport{Model: index, Command: opts.Command, Signatures: make([]AppliedReport, len(sigs)), BNStats: KeepStats}
	if stats {
		rep.BNStats = SignatureStats
	}
	for k, a := range sigs {
		rep.Signatures[k] = AppliedReport{Name: a.Sig.Name, File: a.Sig.Path, SHA256: a.Sig.FileSHA256, Alpha: a.Alpha,
			Variant: a.Sig.Variant, Codec: a.Sig.Spec.String(), Tensors: len(a.Sig.Tensors)}
	}
	return rep
}

// add counts the patch r of shard f, made with part p, into the report.
func (rep *PatchReport) add(f string, r *PatchReport, p *part) {
	rep.Shards = append(rep.Shards, f)
	rep.Tensors = append(rep.Tensors, r.Tensors...)
	rep.TouchedBytes += r.TouchedBytes
	rep.UndoBytes += r.UndoBytes
	for i, k := range p.from {
		rep.Signatures[k].Stats = append(rep.Signatures[k].Stats, r.Signatures[i].Stats...)
		if s := r.Signatures[i]; s.Transfer {
			rep.Signatures[k].Transfer = true
			rep.Signatures[k].Differ = append(rep.Signatures[k].Differ, s.Differ...)
		}
	}
}

// prepare recovers what an interrupted operation left of the sharded checkpoint index and of the
// output out, opens the checkpoint and checks out (see checkOut).
func prepare(index, out string, force bool) (*shards, error) {
	for _, p := range []string{index, out} {
		if _, err := recoverSharded(p); err != nil {
			return nil, err
		}
	}
	sh, err := openShards(index)
	if err != nil {
		return nil, err
	}
	if err := sh.checkOut(out, force); err != nil {
		sh.close()
		return nil, err
	}
	return sh, nil
}

// patchSharded is Patch for a sharded checkpoint (see Patch).
func patchSharded(ctx context.Context, index, out string, sigs []Applied, opts PatchOptions) (rep *PatchReport, err error) {
	sh, err := prepare(index, out, opts.Force)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	// Every tensor must be found across the shards before anything is written.
	parts, touched, stats, err := sh.split(sigs, opts.BNStats)
	if err != nil {
		return nil, err
	}
	h, err := readShardHistory(sh)
	if err != nil {
		return nil, err
	}
	dir := filepath.Dir(index)
	for _, f := range sh.files {
		if recs, err := sidecarRecords(filepath.Join(dir, f)); err != nil {
			return nil, err
		} else if len(recs) > 0 {
			return nil, fmt.Errorf("signature: shard %s of %s has %d in-place patches recorded in %s; unpatch them first (rws unpatch --in-place %s) or patch in place (--in-place)", f, index, len(recs), undoPath(filepath.Join(dir, f)), index)
		}
	}
	rep = newReport(index, sigs, opts, stats)
	rep.Out = out
	set := &SetPatch{Seq: h.depth() + 1, Shards: touched}
	if set.ID, err = setID(sh, set.Seq, false, touched, sigs); err != nil {
		return nil, err
	}
	rep.ID = set.ID
	o, err := startOutput(out, opts.NoSync)
	if err != nil {
		return nil, err
	}
	defer func() { o.finish(err) }()
	sopts := opts
	sopts.Force, sopts.set = false, set
	for _, f := range sh.files {
		src, dst := filepath.Join(dir, f), o.path(f)
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("signature: %w", err)
		}
		rep.ModelBytes += st.Size()
		if err := o.stageDirs(f); err != nil {
			return nil, err
		}
		p := parts[f]
		if p == nil {
			if err := copyShard(ctx, src, dst, opts.NoSync); err != nil {
				return nil, err
			}
		} else {
			r, err := Patch(ctx, src, dst, p.sigs, p.options(sopts))
			if err != nil {
				return nil, err
			}
			rep.add(f, r, p)
		}
		if err := o.stage(f); err != nil {
			return nil, err
		}
	}
	if err := o.commit(sh.raw, sh.files); err != nil {
		return nil, err
	}
	return rep, nil
}

// unpatchSharded is Unpatch for a sharded checkpoint (see Unpatch).
func unpatchSharded(ctx context.Context, index, out string, opts UnpatchOptions) (rep *UnpatchReport, err error) {
	sh, err := prepare(index, out, opts.Force)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	h, err := readShardHistory(sh)
	if err != nil {
		return nil, err
	}
	rep = &UnpatchReport{Model: index, Out: out}
	var unpatch []string
	var legacyIDs []string
	var top *shardedPatch
	if len(h.patches) > 0 {
		if top, err = h.newest(); err != nil {
			return nil, err
		}
		unpatch = top.Shards
		rep.ID = top.ID
		e := top.entry()
		rep.Patch = e
		rep.Remaining = len(h.patches) - 1
		if old, err := h.legacy(); err == nil && len(old) > 0 {
			rep.Remaining++
		}
	} else if unpatch, err = h.legacy(); err != nil {
		return nil, err
	}
	if len(unpatch) == 0 {
		return nil, fmt.Errorf("signature: %s: %w (none of its %d shards carries a patch record)", index, ErrNotPatched, len(sh.files))
	}
	o, err := startOutput(out, opts.NoSync)
	if err != nil {
		return nil, err
	}
	defer func() { o.finish(err) }()
	dir := filepath.Dir(index)
	var entries []any
	for _, f := range sh.files {
		src, dst := filepath.Join(dir, f), o.path(f)
		if err := o.stageDirs(f); err != nil {
			return nil, err
		}
		if slices.Contains(unpatch, f) {
			r, err := Unpatch(ctx, src, dst, UnpatchOptions{NoSync: opts.NoSync})
			if err != nil {
				return nil, err
			}
			legacyIDs = append(legacyIDs, r.ID)
			rep.Shards = append(rep.Shards, f)
			rep.Tensors = append(rep.Tensors, r.Tensors...)
			if r.Patch != nil {
				entries = append(entries, r.Patch)
			}
		} else {
			if err := copyShard(ctx, src, dst, opts.NoSync); err != nil {
				return nil, err
			}
			// The originals of older in-place patches go with the shard.
			if _, err := os.Stat(undoPath(src)); err == nil {
				if err := copyShard(ctx, undoPath(src), undoPath(dst), opts.NoSync); err != nil {
					return nil, err
				}
			}
		}
		if err := o.stage(f); err != nil {
			return nil, err
		}
		if _, err := os.Stat(undoPath(dst)); err == nil {
			if err := o.stage(f + UndoSuffix); err != nil {
				return nil, err
			}
		}
	}
	if err := o.commit(sh.raw, sh.files); err != nil {
		return nil, err
	}
	if top == nil {
		rep.ID = shardedID(legacyIDs)
		if len(entries) > 0 {
			rep.Patch = entries
		}
	}
	return rep, nil
}

// copyShard copies src to the new file dst atomically (synced unless noSync), in the kernel where
// it can, and checks the size written.
func copyShard(ctx context.Context, src, dst string, noSync bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	defer in.Close()
	st, err := in.Stat()
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	f, err := atomicfile.Create(dst, atomicfile.Options{NoSync: noSync})
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	defer f.Abort()
	n, err := io.Copy(f.File, in)
	if err != nil {
		return fmt.Errorf("signature: copying %s: %w", src, err)
	}
	if n != st.Size() {
		return fmt.Errorf("signature: copying %s: %d bytes written, want %d (was it changed?)", src, n, st.Size())
	}
	if err := f.Commit(); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}
