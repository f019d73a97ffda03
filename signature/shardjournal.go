package signature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/safetensors"
)

// A sharded checkpoint is several files, which no single rename replaces together. So every
// operation that changes several of them keeps a journal beside the index, INDEX.rws-journal (a
// JSON object, see shardedJournal), and the next rws command on that index reads it first
// (RecoverReport):
//
//   - "patch": an in-place patch of the checkpoint, with its id and the shards it changes, written
//     and synced before any shard is touched and removed once every shard is committed. Each
//     shard is patched in place on its own (journal and undo sidecar of its own, so it is whole
//     at every moment); until the sharded journal is removed, recovery rolls the patch back by
//     removing it from every listed shard that carries it.
//   - "unpatch": an in-place unpatch, likewise; once its journal is written it is completed.
//   - "write": an output of Patch or Unpatch being written. Its files are written into a staging
//     folder beside the index, .INDEX.rws-staging, with a manifest; once every file is there and
//     synced, the folder is renamed .INDEX.rws-commit, which is the commit, and the files are
//     moved into place, the index last (an index it replaces first removed, so that no index
//     ever names a mix of old and new shards). Recovery removes a staging folder and finishes
//     moving a commit folder: after a kill at any moment the output is absent or complete.
//
// While the operation runs, the index (in place) or the journal itself (write) is locked, so that
// recovery leaves a live operation alone.

// ShardedJournalFormat names the journal of an operation on a sharded checkpoint, and the manifest
// of its staged output.
const ShardedJournalFormat = "rws.sharded-journal"

// ShardedJournalVersion is the version of sharded journals written; readers accept
// MinShardedJournalVersion to MaxShardedJournalVersion.
const (
	ShardedJournalVersion    = 1
	MinShardedJournalVersion = 1
	MaxShardedJournalVersion = 1
)

// Operations a sharded journal records.
const (
	opPatch   = "patch"
	opUnpatch = "unpatch"
	opWrite   = "write"
	opCommit  = "commit" // the manifest of a staged output
)

// shardedJournal is INDEX.rws-journal, and the manifest of a staged output (op "commit").
type shardedJournal struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	Op      string `json:"op"`
	// ID is the sharded patch added or removed (patch, unpatch).
	ID string `json:"id,omitempty"`
	// Shards are the shard files changed, relative to the index's folder (patch, unpatch).
	Shards []string `json:"shards,omitempty"`
	// Files are the files to move into the output folder, the index last (commit).
	Files []string `json:"files,omitempty"`
	// Remove are files of an earlier output, replaced with force, that the new one has no
	// counterpart of (undo sidecars, journals) and that go when it is moved into place (commit).
	Remove []string `json:"remove,omitempty"`
}

const manifestName = "rws-manifest.json"

func stagingPath(index string) string {
	return filepath.Join(filepath.Dir(index), "."+filepath.Base(index)+".rws-staging")
}

func commitPath(index string) string {
	return filepath.Join(filepath.Dir(index), "."+filepath.Base(index)+".rws-commit")
}

// validName checks a file name of a journal, manifest or index: a clean path below the index's
// folder, as safetensors.Open accepts shard names.
func validName(name string) bool {
	return filepath.IsLocal(name) && name != "." && filepath.Clean(name) == name && !strings.Contains(name, "..")
}

// readShardedJournal reads and checks a sharded journal or manifest.
func readShardedJournal(path string) (*shardedJournal, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return parseShardedJournal(path, b)
}

// parseShardedJournal checks the sharded journal or manifest b, read from path.
func parseShardedJournal(path string, b []byte) (*shardedJournal, error) {
	damaged := func(why string) error {
		return fmt.Errorf("signature: %s: %s; rws cannot tell what the interrupted operation had done: check the files it names, then remove it", path, why)
	}
	if len(b) == 0 {
		// The journal of an output is created empty, locked, then written (startOutput); a kill
		// in between leaves it empty, before anything else was written.
		j := newJournal(opWrite)
		return &j, nil
	}
	var j shardedJournal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, damaged(fmt.Sprintf("damaged journal (%v)", err))
	}
	if j.Format != ShardedJournalFormat {
		return nil, damaged(fmt.Sprintf("format %q is not %q", j.Format, ShardedJournalFormat))
	}
	if j.Version < MinShardedJournalVersion || j.Version > MaxShardedJournalVersion {
		return nil, fmt.Errorf("signature: %s: journal version %d is not supported (this rws reads %d to %d)", path, j.Version, MinShardedJournalVersion, MaxShardedJournalVersion)
	}
	switch j.Op {
	case opPatch, opUnpatch:
		if j.ID == "" || len(j.Shards) == 0 {
			return nil, damaged("no patch id or no shards")
		}
	case opWrite:
	case opCommit:
		if len(j.Files) == 0 {
			return nil, damaged("no files")
		}
	default:
		return nil, damaged(fmt.Sprintf("unknown operation %q", j.Op))
	}
	for _, n := range append(append(append([]string(nil), j.Shards...), j.Files...), j.Remove...) {
		if !validName(n) {
			return nil, damaged(fmt.Sprintf("file name %q is not below its folder", n))
		}
	}
	return &j, nil
}

func newJournal(op string) shardedJournal {
	return shardedJournal{Format: ShardedJournalFormat, Version: ShardedJournalVersion, Op: op}
}

// lockIndex takes an exclusive advisory lock on a sharded checkpoint's index for the duration of
// an in-place operation on the checkpoint.
func lockIndex(index string) (func(), error) {
	f, err := os.Open(index)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("signature: %s is being changed by another process (%v)", index, err)
	}
	return func() { unlockFile(f); f.Close() }, nil
}

// recoverSharded is RecoverReport for a sharded checkpoint: it finishes or rolls back what its
// journal records, then recovers each shard named by the index on its own (an in-place operation
// on the shard alone).
func recoverSharded(index string) (string, error) {
	var did []string
	j, err := readShardedJournal(journalPath(index))
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return "", err
	case j.Op == opWrite:
		d, err := recoverOutput(index)
		if err != nil {
			return "", err
		}
		did = append(did, d)
	default:
		unlock, err := lockIndex(index)
		if err != nil {
			return "", err
		}
		d, err := recoverShardedLocked(index)
		unlock()
		if err != nil {
			return "", err
		}
		did = append(did, d)
	}
	// An index that does not read is left to the command, which says why.
	files, _ := indexShards(index)
	for _, f := range files {
		p := filepath.Join(filepath.Dir(index), f)
		if _, err := os.Stat(journalPath(p)); err != nil {
			continue
		}
		d, err := RecoverReport(p)
		if err != nil {
			return "", err
		}
		if d != "" {
			did = append(did, "shard "+f+": "+d)
		}
	}
	return strings.Join(did, "; "), nil
}

// indexShards lists the shard files an index names, without opening them.
func indexShards(index string) ([]string, error) {
	b, err := os.ReadFile(index)
	if err != nil {
		return nil, err
	}
	var idx struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &idx); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, f := range idx.WeightMap {
		if validName(f) && !seen[f] {
			seen[f] = true
			out = append(out, f)
		}
	}
	return out, nil
}

// recoverShardedLocked finishes the in-place operation on the sharded checkpoint index that its
// journal records, with the index locked: the sharded patch it names is removed from every
// listed shard that carries it, which rolls back a patch and completes an unpatch.
func recoverShardedLocked(index string) (string, error) {
	jp := journalPath(index)
	j, err := readShardedJournal(jp)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if j.Op == opWrite {
		return recoverOutput(index)
	}
	dir := filepath.Dir(index)
	for i := len(j.Shards) - 1; i >= 0; i-- {
		if err := removeSetPatch(filepath.Join(dir, j.Shards[i]), j.ID, index); err != nil {
			return "", err
		}
	}
	if err := os.Remove(jp); err != nil {
		return "", err
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return "", err
	}
	if j.Op == opPatch {
		return fmt.Sprintf("rolled back sharded patch %s (shards %s)", j.ID, strings.Join(j.Shards, ", ")), nil
	}
	return fmt.Sprintf("completed sharded unpatch %s (shards %s)", j.ID, strings.Join(j.Shards, ", ")), nil
}

// removeSetPatch removes the in-place patch of shard that belongs to the sharded patch id, if
// the shard carries it, after recovering the shard's own interrupted operation.
func removeSetPatch(shard, id, index string) error {
	if _, err := RecoverReport(shard); err != nil {
		return err
	}
	recs, err := sidecarRecords(shard)
	if err != nil {
		return err
	}
	for k, rec := range recs {
		if rec.Patch.Set == nil || rec.Patch.Set.ID != id {
			continue
		}
		if k != len(recs)-1 {
			return fmt.Errorf("signature: %s: the patch of sharded patch %s lies under patch %s, made on the shard alone; remove that first (rws unpatch --in-place %s), then run rws on %s again", shard, id, recs[len(recs)-1].ID, shard, index)
		}
		_, err := unpatchInPlace(context.Background(), shard, rec.ID, UnpatchOptions{})
		return err
	}
	return nil
}

// shardedOut is a sharded output being written (see the journal comment above).
type shardedOut struct {
	index   string
	dir     string
	journal *os.File // locked while the output is written
	staging string
	files   []string // staged, relative to dir
	noSync  bool     // skip the fsyncs (PatchOptions.NoSync)
	// committed is set once the staging folder is renamed: the output is then completed, never
	// removed.
	committed bool
}

// startOutput starts writing the sharded output index: it creates its journal, locked, and the
// staging folder. noSync skips the fsyncs of the journal and of the commit.
func startOutput(index string, noSync bool) (*shardedOut, error) {
	jp := journalPath(index)
	f, err := os.OpenFile(jp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, os.ErrExist) {
		return nil, fmt.Errorf("signature: %s exists: another rws command is writing %s (wait for it), or its journal is damaged (remove it)", jp, index)
	}
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	o := &shardedOut{index: index, dir: filepath.Dir(index), journal: f, staging: stagingPath(index), noSync: noSync}
	fail := func(err error) (*shardedOut, error) {
		f.Close()
		os.Remove(jp)
		return nil, err
	}
	if err := lockFile(f); err != nil {
		return fail(fmt.Errorf("signature: %s: %w", jp, err))
	}
	if _, err := f.WriteString(marshal(newJournal(opWrite)) + "\n"); err != nil {
		return fail(err)
	}
	if !noSync {
		if err := f.Sync(); err != nil {
			return fail(err)
		}
	}
	if err := syncDir(o.dir, noSync); err != nil {
		return fail(err)
	}
	for _, p := range []string{o.staging, commitPath(index)} {
		if _, err := os.Lstat(p); err == nil {
			return fail(fmt.Errorf("signature: %s exists, left by an rws command that wrote %s; remove it", p, index))
		}
	}
	if err := os.Mkdir(o.staging, 0o755); err != nil {
		return fail(fmt.Errorf("signature: %w", err))
	}
	return o, nil
}

// path is where the file name, relative to the output folder, is staged; stage says that it has
// been written there.
func (o *shardedOut) path(name string) string {
	return filepath.Join(o.staging, name)
}

func (o *shardedOut) stage(name string) error {
	o.files = append(o.files, name)
	if crashAt(fmt.Sprintf("staged %d", len(o.files))) {
		return errCrash
	}
	return nil
}

// stageDirs creates the folders a shard name with a folder part needs in the staging folder.
func (o *shardedOut) stageDirs(name string) error {
	if d := filepath.Dir(name); d != "." {
		return os.MkdirAll(filepath.Join(o.staging, d), 0o755)
	}
	return nil
}

// commit writes the index (raw, byte for byte) into the staging folder, checks that the staged
// checkpoint reads, and moves every staged file into place. shards are the shard files of the
// checkpoint, whose stale sidecars and journals from an earlier output go.
func (o *shardedOut) commit(raw []byte, shards []string) error {
	name := filepath.Base(o.index)
	if err := atomicfile.WriteFile(o.path(name), raw, atomicfile.Options{NoSync: o.noSync}); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	r, err := safetensors.Open(o.path(name))
	if err != nil {
		return fmt.Errorf("signature: the written sharded checkpoint does not read back: %w", err)
	}
	r.Close()
	m := newJournal(opCommit)
	m.Files = append(append(m.Files, o.files...), name)
	staged := map[string]bool{}
	for _, f := range o.files {
		staged[f] = true
	}
	for _, f := range shards {
		for _, p := range []string{f + UndoSuffix, f + JournalSuffix} {
			if _, err := os.Lstat(filepath.Join(o.dir, p)); err == nil && !staged[p] {
				m.Remove = append(m.Remove, p)
			}
		}
	}
	if err := atomicfile.WriteFile(o.path(manifestName), []byte(marshal(m)+"\n"), atomicfile.Options{NoSync: o.noSync}); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	if crashAt("staged") {
		return errCrash
	}
	if err := os.Rename(o.staging, commitPath(o.index)); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	o.committed = true
	if err := syncDir(o.dir, o.noSync); err != nil {
		return fmt.Errorf("signature: %w (the next rws command on %s completes the output)", err, o.index)
	}
	if crashAt("commit") {
		return errCrash
	}
	if _, err := rollForward(o.index, o.noSync); err != nil {
		return fmt.Errorf("%w (the next rws command on %s completes the output)", err, o.index)
	}
	if err := os.Remove(journalPath(o.index)); err != nil {
		return err
	}
	return syncDir(o.dir, o.noSync)
}

// finish ends the write, err being its outcome: before the commit, a failure removes the staged
// files and the journal (a simulated crash leaves them, as a kill would); the journal's lock goes.
func (o *shardedOut) finish(err error) {
	if err != nil && !o.committed && !errors.Is(err, errCrash) {
		os.RemoveAll(o.staging)
		os.Remove(journalPath(o.index))
		syncDir(o.dir, o.noSync)
	}
	o.journal.Close()
}

// rollForward moves the files of the committed output index from its commit folder into place,
// the index last, and removes the folder, syncing the folder unless noSync. It may be run again
// after a crash. It returns how many files it moved.
func rollForward(index string, noSync bool) (int, error) {
	cdir := commitPath(index)
	m, err := readShardedJournal(filepath.Join(cdir, manifestName))
	if errors.Is(err, os.ErrNotExist) {
		// The manifest goes once every file is moved: what is left are empty folders.
		return 0, removeEmpty(cdir, noSync)
	}
	if err != nil {
		return 0, err
	}
	if m.Op != opCommit {
		return 0, fmt.Errorf("signature: %s: not a manifest (operation %q)", filepath.Join(cdir, manifestName), m.Op)
	}
	dir := filepath.Dir(index)
	name := m.Files[len(m.Files)-1]
	if name != filepath.Base(index) {
		return 0, fmt.Errorf("signature: %s: the manifest ends with %q, not the index %q", cdir, name, filepath.Base(index))
	}
	// An index being replaced goes first, so that no index names a mix of old and new shards.
	if _, err := os.Lstat(filepath.Join(cdir, name)); err == nil {
		if err := os.Remove(index); err != nil && !errors.Is(err, os.ErrNotExist) {
			return 0, err
		}
	}
	moved := 0
	move := func(f string) error {
		src := filepath.Join(cdir, f)
		if _, err := os.Lstat(src); errors.Is(err, os.ErrNotExist) {
			return nil // moved before a crash
		}
		if d := filepath.Dir(f); d != "." {
			if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
				return err
			}
		}
		if err := os.Rename(src, filepath.Join(dir, f)); err != nil {
			return err
		}
		moved++
		if crashAt(fmt.Sprintf("moved %d", moved)) {
			return errCrash
		}
		return nil
	}
	for _, f := range m.Files[:len(m.Files)-1] {
		if err := move(f); err != nil {
			return moved, err
		}
	}
	for _, f := range m.Remove {
		if err := os.Remove(filepath.Join(dir, f)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return moved, err
		}
	}
	if err := syncDir(dir, noSync); err != nil {
		return moved, err
	}
	if err := move(name); err != nil {
		return moved, err
	}
	if err := syncDir(dir, noSync); err != nil {
		return moved, err
	}
	if err := os.Remove(filepath.Join(cdir, manifestName)); err != nil {
		return moved, err
	}
	return moved, removeEmpty(cdir, noSync)
}

// removeEmpty removes the folder dir, which must hold nothing but empty folders, if it exists,
// and syncs its parent unless noSync.
func removeEmpty(dir string, noSync bool) error {
	var dirs []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return fmt.Errorf("signature: %s is left in %s, which should hold nothing more: check it, then remove the folder", p, dir)
		}
		dirs = append(dirs, p)
		return nil
	})
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := os.Remove(dirs[i]); err != nil {
			return err
		}
	}
	return syncDir(filepath.Dir(dir), noSync)
}

// recoverOutput finishes an interrupted write of the sharded output index: a committed output
// is moved into place, a staged one removed.
func recoverOutput(index string) (string, error) {
	jp := journalPath(index)
	f, err := os.OpenFile(jp, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer f.Close()
	if err := lockFile(f); err != nil {
		return "", fmt.Errorf("signature: %s is being written by another rws command (its journal %s is locked); wait for it to end", index, jp)
	}
	// The writer may have finished, and removed the journal, before the lock was taken.
	held, err := f.Stat()
	if err != nil {
		return "", err
	}
	if now, err := os.Stat(jp); err != nil || !os.SameFile(held, now) {
		return "", nil
	}
	var did string
	if _, err := os.Lstat(commitPath(index)); err == nil {
		n, err := rollForward(index, false)
		if err != nil {
			return "", fmt.Errorf("signature: completing the interrupted output %s: %w", index, err)
		}
		did = fmt.Sprintf("completed the output of an interrupted rws command (%d files moved into place)", n)
	} else {
		if err := os.RemoveAll(stagingPath(index)); err != nil {
			return "", err
		}
		did = "removed the unfinished output of an interrupted rws command"
	}
	if err := os.Remove(jp); err != nil {
		return "", err
	}
	return did, atomicfile.SyncDir(filepath.Dir(index))
}
