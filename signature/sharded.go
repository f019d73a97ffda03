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
	"sort"
	"strings"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/safetensors"
)

// ErrShardedInPlace is returned by PatchInPlace and UnpatchInPlace for a sharded checkpoint: those
// are patched and unpatched out of place only.
var ErrShardedInPlace = errors.New("in-place patching of a sharded checkpoint is not supported; patch it out of place (-o OUTDIR/NAME.safetensors.index.json)")

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

// shardedID is the identifier of a sharded patch: a digest of its shards' patch identifiers.
func shardedID(ids []string) string {
	h := sha256.New()
	for _, id := range ids {
		fmt.Fprintf(h, "%s\n", id)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

// cleanup removes the files of a sharded output written so far, unless the operation succeeded.
type cleanup struct {
	written []string
	ok      bool
}

func (c *cleanup) done(path string) { c.written = append(c.written, path) }

func (c *cleanup) run() {
	if c.ok {
		return
	}
	for _, p := range c.written {
		os.Remove(p)
	}
}

// patchSharded is Patch for a sharded checkpoint (see Patch).
func patchSharded(ctx context.Context, index, out string, sigs []Applied, opts PatchOptions) (*PatchReport, error) {
	if len(sigs) == 0 {
		return nil, fmt.Errorf("signature: no signature to apply")
	}
	sh, err := openShards(index)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	if err := sh.checkOut(out, opts.Force); err != nil {
		return nil, err
	}
	// Every tensor must be found across the shards before anything is written.
	terms, err := matchTerms(sh.r, index, sigs)
	if err != nil {
		return nil, err
	}
	stats, err := matchStats(sh.r, index, sigs, opts.BNStats, terms)
	if err != nil {
		return nil, err
	}
	// Each shard gets the part of every signature that it stores.
	type part struct {
		sigs  []Applied
		from  []int // index in sigs of each part's signature
		stats bool  // some of its signatures carry running statistics to blend in
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
	rep := &PatchReport{Model: index, Out: out, Command: opts.Command, Signatures: make([]AppliedReport, len(sigs)), BNStats: KeepStats}
	if stats != nil {
		rep.BNStats = SignatureStats
	}
	for k, a := range sigs {
		rep.Signatures[k] = AppliedReport{Name: a.Sig.Name, File: a.Sig.Path, SHA256: a.Sig.FileSHA256, Alpha: a.Alpha,
			Variant: a.Sig.Variant, Codec: a.Sig.Spec.String(), Tensors: len(a.Sig.Tensors)}
	}
	c := &cleanup{}
	defer c.run()
	var ids []string
	for _, f := range sh.files {
		src, dst := filepath.Join(filepath.Dir(index), f), filepath.Join(filepath.Dir(out), f)
		st, err := os.Stat(src)
		if err != nil {
			return nil, fmt.Errorf("signature: %w", err)
		}
		rep.ModelBytes += st.Size()
		p := parts[f]
		if p == nil {
			if err := copyShard(ctx, src, dst, opts.Force); err != nil {
				return nil, err
			}
			c.done(dst)
			continue
		}
		o := opts
		if !p.stats {
			o.BNStats = KeepStats // the statistics to blend in lie in other shards
		}
		r, err := Patch(ctx, src, dst, p.sigs, o)
		if err != nil {
			return nil, err
		}
		c.done(dst)
		ids = append(ids, r.ID)
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
	if err := writeIndex(out, sh.raw, opts.Force); err != nil {
		return nil, err
	}
	c.done(out)
	rep.ID = shardedID(ids)
	c.ok = true
	return rep, nil
}

// unpatchSharded is Unpatch for a sharded checkpoint (see Unpatch).
func unpatchSharded(ctx context.Context, index, out string, opts UnpatchOptions) (*UnpatchReport, error) {
	sh, err := openShards(index)
	if err != nil {
		return nil, err
	}
	defer sh.close()
	if err := sh.checkOut(out, opts.Force); err != nil {
		return nil, err
	}
	patched := map[string]bool{}
	for _, f := range sh.files {
		p := filepath.Join(filepath.Dir(index), f)
		h, err := History(p)
		if err != nil {
			return nil, err
		}
		// The shards a patch did not touch carry no record of it, so the last patch of the
		// checkpoint is known only while each shard carries at most one.
		if len(h) > 1 {
			return nil, fmt.Errorf("signature: shard %s of %s carries %d patches; which shards the last one changed cannot be told, so unpatch its shards one by one (rws unpatch SHARD -o OUT)", p, index, len(h))
		}
		patched[f] = len(h) == 1
	}
	if len(patched) == 0 || !anyTrue(patched) {
		return nil, fmt.Errorf("signature: %s: %w (none of its %d shards carries a patch record)", index, ErrNotPatched, len(sh.files))
	}
	rep := &UnpatchReport{Model: index, Out: out}
	var ids []string
	var entries []any
	c := &cleanup{}
	defer c.run()
	for _, f := range sh.files {
		src, dst := filepath.Join(filepath.Dir(index), f), filepath.Join(filepath.Dir(out), f)
		if !patched[f] {
			if err := copyShard(ctx, src, dst, opts.Force); err != nil {
				return nil, err
			}
			c.done(dst)
			continue
		}
		r, err := Unpatch(ctx, src, dst, opts)
		if err != nil {
			return nil, err
		}
		c.done(dst)
		ids = append(ids, r.ID)
		rep.Shards = append(rep.Shards, f)
		rep.Tensors = append(rep.Tensors, r.Tensors...)
		if r.Patch != nil {
			entries = append(entries, r.Patch)
		}
	}
	if err := writeIndex(out, sh.raw, opts.Force); err != nil {
		return nil, err
	}
	c.done(out)
	rep.ID = shardedID(ids)
	if len(entries) > 0 {
		rep.Patch = entries
	}
	c.ok = true
	return rep, nil
}

func anyTrue(m map[string]bool) bool {
	for _, v := range m {
		if v {
			return true
		}
	}
	return false
}

// writeIndex writes the index of a sharded output, byte for byte as raw, and checks that the
// checkpoint it names reads back.
func writeIndex(out string, raw []byte, force bool) error {
	if err := atomicfile.WriteFile(out, raw, atomicfile.Options{Force: force}); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	r, err := safetensors.Open(out)
	if err != nil {
		os.Remove(out)
		return fmt.Errorf("signature: the written sharded checkpoint does not read back: %w", err)
	}
	return r.Close()
}

// copyShard copies src to dst atomically, in the kernel where it can, and checks the size written.
func copyShard(ctx context.Context, src, dst string, force bool) error {
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
	f, err := atomicfile.Create(dst, atomicfile.Options{Force: force})
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
	return removeStale(dst)
}
