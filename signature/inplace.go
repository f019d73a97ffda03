package signature

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// In-place patching keeps the model's header untouched (it cannot grow without moving every
// tensor) and records each patch in a sidecar file, MODEL.rws-undo: a safetensors file whose
// metadata lists the patches (newest last) and whose U8 tensors "ID/TENSOR" hold the original
// bytes of every tensor a patch rewrote. While a patch or unpatch is being written, a journal
// MODEL.rws-journal (same format) exists; Recover finishes or rolls back whatever a crash
// interrupted, and every function of this package that opens a model calls it first.

// Metadata keys of undo sidecars and journals.
const (
	keyUndoVersion = "rws.undo.version"
	keyUndoRecords = "rws.undo.records"
	// keyUndoTarget marks an unpatch journal: the id of the record being removed.
	keyUndoTarget = "rws.undo.unpatch"
)

// UndoSuffix and JournalSuffix are appended to a model's path to name its undo sidecar and its
// journal.
const (
	UndoSuffix    = ".rws-undo"
	JournalSuffix = ".rws-journal"
)

func undoPath(model string) string    { return model + UndoSuffix }
func journalPath(model string) string { return model + JournalSuffix }

// sideRecord is one in-place patch: where it wrote and a fingerprint of the model it applies to.
type sideRecord struct {
	ID           string       `json:"id"`
	Patch        PatchEntry   `json:"patch"`
	ModelBytes   int64        `json:"model_bytes"`
	HeaderSHA256 string       `json:"header_sha256"`
	Tensors      []undoTensor `json:"tensors"`
}

type sidecar struct {
	path    string
	records []sideRecord
	data    map[string][]byte // "ID/TENSOR" → original bytes, of the records loaded
	target  string            // unpatch journals: the record being removed
}

func dataName(id, tensor string) string { return id + "/" + tensor }

// readSidecar reads the header of an undo sidecar or journal: its records, checked against the
// stored tensors' layout. The original bytes are read by load, when they are needed.
func readSidecar(path string) (*sidecar, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, err
	}
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signature: undo file %w", err)
	}
	defer r.Close()
	m := r.Metadata()
	if m[keyFormat] != UndoFormat {
		return nil, fmt.Errorf("signature: %s: format %q is not %q", path, m[keyFormat], UndoFormat)
	}
	if v, err := strconv.Atoi(m[keyUndoVersion]); err != nil || v < MinUndoVersion || v > MaxUndoVersion {
		return nil, fmt.Errorf("signature: %s: undo version %q is not supported (this rws reads %d to %d)", path, m[keyUndoVersion], MinUndoVersion, MaxUndoVersion)
	}
	sc := &sidecar{path: path, data: map[string][]byte{}, target: m[keyUndoTarget]}
	if err := json.Unmarshal([]byte(m[keyUndoRecords]), &sc.records); err != nil {
		return nil, fmt.Errorf("signature: %s: records: %v", path, err)
	}
	for _, rec := range sc.records {
		for _, t := range rec.Tensors {
			if in, ok := r.Info(dataName(rec.ID, t.Name)); !ok || in.Size != t.Size {
				return nil, fmt.Errorf("signature: %s: original bytes of tensor %q (patch %s) are damaged", path, t.Name, rec.ID)
			}
		}
	}
	return sc, nil
}

// load reads the original bytes of the records with the given ids (of every record when there
// are none) into memory from s, checking them against their SHA-256.
func (sc *sidecar) load(s *scratch, ids ...string) error {
	r, err := safetensors.Open(sc.path)
	if err != nil {
		return fmt.Errorf("signature: undo file %w", err)
	}
	defer r.Close()
	for _, rec := range sc.records {
		if len(ids) > 0 && !slices.Contains(ids, rec.ID) {
			continue
		}
		for _, t := range rec.Tensors {
			name := dataName(rec.ID, t.Name)
			if sc.data[name] != nil {
				continue
			}
			b := s.alloc(t.Size)
			if err := r.ReadRawInto(name, b); err != nil {
				return fmt.Errorf("signature: %s: %w", sc.path, err)
			}
			if hexSHA256(b) != t.Before {
				return fmt.Errorf("signature: %s: original bytes of tensor %q (patch %s) are damaged", sc.path, t.Name, rec.ID)
			}
			sc.data[name] = b
		}
	}
	return nil
}

// loadFor loads what removing records[i] needs: its originals, and those of the other records
// when some stay (the sidecar is rewritten with them).
func (sc *sidecar) loadFor(s *scratch, i int) error {
	if len(sc.records) == 1 {
		return sc.load(s, sc.records[i].ID)
	}
	return sc.load(s)
}

// write stores sc at path atomically (synced unless noSync); the data of every record must be
// loaded.
func (sc *sidecar) write(path string, force, noSync bool) error {
	meta := map[string]string{keyFormat: UndoFormat, keyUndoVersion: strconv.Itoa(UndoVersion), keyUndoRecords: marshal(sc.records)}
	if sc.target != "" {
		meta[keyUndoTarget] = sc.target
	}
	var ts []safetensors.Tensor
	for _, rec := range sc.records {
		for _, t := range rec.Tensors {
			b := sc.data[dataName(rec.ID, t.Name)]
			ts = append(ts, safetensors.Tensor{Name: dataName(rec.ID, t.Name), DType: tensor.U8, Shape: []int64{int64(len(b))}, Data: b})
		}
	}
	if err := safetensors.WriteFile(path, ts, meta, safetensors.WriteOptions{Force: force, NoSync: noSync}); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return nil
}

// errCrash is returned where crashHook simulated a kill.
var errCrash = errors.New("simulated crash")

// crashHook, when set (by tests), is asked at every step of an in-place operation whether to stop
// there as if the process were killed: no cleanup runs. Step "write N half" tears range N.
var crashHook func(step string) bool

func crashAt(step string) bool { return crashHook != nil && crashHook(step) }

// lockModel takes an exclusive advisory lock on the model file for the duration of an in-place
// operation.
func lockModel(model string) (func(), error) {
	f, err := os.OpenFile(model, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if err := lockFile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("signature: %s is being changed by another process (%v)", model, err)
	}
	return func() { unlockFile(f); f.Close() }, nil
}

// Recover completes or rolls back an in-place patch or unpatch of model that a crash
// interrupted, as recorded in its journal, and reports what it did ("" when there was nothing to
// do). A patch is rolled back unless it was committed; an unpatch is completed.
func Recover(model string) error {
	_, err := RecoverReport(model)
	return err
}

// RecoverReport is Recover that says what it did: "", "rolled back patch ID",
// "completed patch ID", or "completed unpatch ID". For a sharded checkpoint (an index) it also
// rolls back an in-place sharded patch, completes an unpatch, and removes or completes an
// output whose writing was interrupted (see shardjournal.go).
func RecoverReport(model string) (string, error) {
	if isIndex(model) {
		return recoverSharded(model)
	}
	if _, err := os.Stat(journalPath(model)); errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	unlock, err := lockModel(model)
	if err != nil {
		return "", err
	}
	defer unlock()
	return recoverLocked(model)
}

func recoverLocked(model string) (string, error) {
	jp := journalPath(model)
	j, err := readSidecar(jp)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	}
	var s scratch
	defer s.release()
	if err == nil {
		err = j.load(&s)
	}
	if err != nil {
		return "", fmt.Errorf("%w; the journal is damaged, so rws cannot tell whether %s is whole: check it, then remove %s", err, model, jp)
	}
	side, err := readSidecar(undoPath(model))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return "", err
	}
	if side == nil {
		side = &sidecar{path: undoPath(model), data: map[string][]byte{}}
	}
	find := func(id string) int {
		for i, r := range side.records {
			if r.ID == id {
				return i
			}
		}
		return -1
	}
	var did string
	if j.target != "" {
		// An unpatch: finish it from the sidecar, which still holds the originals.
		if i := find(j.target); i >= 0 {
			if err := restoreInPlace(model, side, i, &s, false); err != nil {
				return "", err
			}
		}
		did = "completed unpatch " + j.target
	} else {
		if len(j.records) != 1 {
			return "", fmt.Errorf("signature: %s: a patch journal holds one record, not %d", jp, len(j.records))
		}
		rec := j.records[0]
		if find(rec.ID) >= 0 {
			did = "completed patch " + rec.ID
		} else {
			if err := writeRanges(model, rec, j.data, true, false); err != nil {
				return "", err
			}
			did = "rolled back patch " + rec.ID
		}
	}
	if err := os.Remove(jp); err != nil {
		return "", err
	}
	return did, atomicfile.SyncDir(filepath.Dir(model))
}

// writeRanges writes the original bytes of rec's tensors (from data) into model and syncs it
// (unless noSync), after checking that the model's header is the one rec was made for.
func writeRanges(model string, rec sideRecord, data map[string][]byte, check, noSync bool) error {
	f, err := os.OpenFile(model, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	hdr, err := readHeader(f)
	if err != nil {
		return fmt.Errorf("signature: %s: %w", model, err)
	}
	if check && hexSHA256(hdr) != rec.HeaderSHA256 {
		return fmt.Errorf("signature: %s: %w: its header is not the one patch %s was made for", model, ErrChanged, rec.ID)
	}
	for _, t := range rec.Tensors {
		if _, err := f.WriteAt(data[dataName(rec.ID, t.Name)], int64(len(hdr))+t.Offset); err != nil {
			return err
		}
	}
	return syncData(f, noSync)
}

// restoreInPlace writes back the originals of side.records[i] and drops that record (and the
// sidecar with it when it was the last), syncing unless noSync.
func restoreInPlace(model string, side *sidecar, i int, s *scratch, noSync bool) error {
	rec := side.records[i]
	if err := side.loadFor(s, i); err != nil {
		return err
	}
	if err := writeRanges(model, rec, side.data, true, noSync); err != nil {
		return err
	}
	if crashAt("restored") {
		return errCrash
	}
	rest := &sidecar{data: side.data, records: append(append([]sideRecord(nil), side.records[:i]...), side.records[i+1:]...)}
	if len(rest.records) == 0 {
		if err := os.Remove(undoPath(model)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return syncDir(filepath.Dir(model), noSync)
	}
	return rest.write(undoPath(model), true, noSync)
}

// PatchInPlace applies the signatures to model itself, rewriting only the touched tensors' bytes.
// It is crash-safe: the original bytes go to the journal (synced) before the model is written; a
// kill at any point leaves the old or the new model, and the next Recover (which every function
// here runs first) rolls back an unfinished patch. The committed journal becomes the undo sidecar
// MODEL.rws-undo, which UnpatchInPlace and Unpatch use. The header, and so the metadata, is left
// as it is. A model ending in .index.json is patched shard by shard, the whole crash-safe through
// a journal beside the index (patchShardedInPlace).
func PatchInPlace(ctx context.Context, model string, sigs []Applied, opts PatchOptions) (*PatchReport, error) {
	if isIndex(model) {
		return patchShardedInPlace(ctx, model, sigs, opts)
	}
	unlock, err := lockModel(model)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := recoverLocked(model); err != nil {
		return nil, err
	}
	side, err := readSidecar(undoPath(model))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	var s scratch
	defer s.release()
	depth := 0
	if side != nil {
		depth = len(side.records)
		// The commit rewrites the sidecar with the new record added.
		if err := side.load(&s); err != nil {
			return nil, err
		}
	}
	p, err := makePlan(ctx, model, sigs, opts.BNStats, &s)
	if err != nil {
		return nil, err
	}
	p.report.InPlace = true
	p.report.Command = opts.Command
	p.report.ID = p.planID(depth)
	p.set = opts.set
	rec := sideRecord{ID: p.report.ID, Patch: p.entry(), ModelBytes: p.size, HeaderSHA256: hexSHA256(p.header)}
	j := &sidecar{data: map[string][]byte{}}
	for _, t := range p.touched {
		rec.Tensors = append(rec.Tensors, undoTensor{Name: t.info.Name, Offset: t.rel, Size: t.info.Size,
			ElemSize: t.info.DType.Size(), Before: t.oldSum, After: t.newSum})
		j.data[dataName(rec.ID, t.info.Name)] = t.old
		p.report.UndoBytes += t.info.Size
	}
	j.records = []sideRecord{rec}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := j.write(journalPath(model), false, opts.NoSync); err != nil {
		return nil, err
	}
	if crashAt("journal") {
		return nil, errCrash
	}
	f, err := os.OpenFile(model, os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	for i, t := range p.touched {
		off := p.dataStart + t.rel
		if crashAt(fmt.Sprintf("write %d half", i)) {
			f.WriteAt(t.new[:len(t.new)/2], off)
			f.Close()
			return nil, errCrash
		}
		if _, err := f.WriteAt(t.new, off); err != nil {
			f.Close()
			return nil, fmt.Errorf("%w (the next rws command on %s rolls the patch back)", err, model)
		}
	}
	if err := syncData(f, opts.NoSync); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	if crashAt("written") {
		return nil, errCrash
	}
	// Commit: the record joins the sidecar, then the journal goes.
	if side == nil {
		if err := os.Rename(journalPath(model), undoPath(model)); err != nil {
			return nil, err
		}
	} else {
		side.records = append(side.records, rec)
		for k, v := range j.data {
			side.data[k] = v
		}
		if err := side.write(undoPath(model), true, opts.NoSync); err != nil {
			return nil, err
		}
		if crashAt("committed") {
			return nil, errCrash
		}
		if err := os.Remove(journalPath(model)); err != nil {
			return nil, err
		}
	}
	if err := syncDir(filepath.Dir(model), opts.NoSync); err != nil {
		return nil, err
	}
	return p.report, nil
}

// topRecord checks that model still holds what the newest in-place patch wrote and returns it.
func topRecord(model string, side *sidecar) (sideRecord, int64, error) {
	rec := side.records[len(side.records)-1]
	f, err := os.Open(model)
	if err != nil {
		return rec, 0, err
	}
	defer f.Close()
	hdr, err := readHeader(f)
	if err != nil {
		return rec, 0, fmt.Errorf("signature: %s: %w", model, err)
	}
	st, err := f.Stat()
	if err != nil {
		return rec, 0, err
	}
	if st.Size() != rec.ModelBytes || hexSHA256(hdr) != rec.HeaderSHA256 {
		return rec, 0, fmt.Errorf("signature: %s: %w: it is not the file patch %s was made for", model, ErrChanged, rec.ID)
	}
	buf := make([]byte, verifyBufSize)
	for _, t := range rec.Tensors {
		h := sha256.New()
		if _, err := io.CopyBuffer(h, io.NewSectionReader(f, int64(len(hdr))+t.Offset, t.Size), buf); err != nil {
			return rec, 0, err
		}
		if hex.EncodeToString(h.Sum(nil)) != t.After {
			return rec, 0, fmt.Errorf("signature: %s: %w: tensor %q no longer holds the patched values, so the original cannot be restored exactly", model, ErrChanged, t.Name)
		}
	}
	return rec, int64(len(hdr)), nil
}

// UnpatchInPlace removes the newest in-place patch of model, writing back the original bytes of
// the tensors it changed. It is crash-safe like PatchInPlace (an interrupted unpatch is completed
// by the next Recover). For a model ending in .index.json it removes the newest sharded patch,
// which must have been made in place, from every shard it changed.
func UnpatchInPlace(ctx context.Context, model string, opts UnpatchOptions) (*UnpatchReport, error) {
	if isIndex(model) {
		return unpatchShardedInPlace(ctx, model, opts)
	}
	return unpatchInPlace(ctx, model, "", opts)
}

// unpatchInPlace is UnpatchInPlace of a single file; an id other than "" must be that of the
// newest in-place patch, which is refused otherwise.
func unpatchInPlace(ctx context.Context, model, id string, opts UnpatchOptions) (*UnpatchReport, error) {
	unlock, err := lockModel(model)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := recoverLocked(model); err != nil {
		return nil, err
	}
	side, err := readSidecar(undoPath(model))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("signature: %s: %w in place (no %s); an out-of-place patch is removed with rws unpatch MODEL -o OUT", model, ErrNotPatched, undoPath(model))
	}
	if err != nil {
		return nil, err
	}
	// Every original the unpatch writes (and, when other records stay, the sidecar it rewrites)
	// is read and checked before anything changes, while the model is checked on another core.
	var s scratch
	defer s.release()
	var rec sideRecord
	checked := make(chan error, 1)
	go func() {
		var err error
		rec, _, err = topRecord(model, side)
		checked <- err
	}()
	loadErr := side.loadFor(&s, len(side.records)-1)
	if err := <-checked; err != nil {
		return nil, err
	}
	if loadErr != nil {
		return nil, loadErr
	}
	if id != "" && rec.ID != id {
		return nil, fmt.Errorf("signature: %s: its newest in-place patch is %s, not %s", model, rec.ID, id)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	j := &sidecar{target: rec.ID}
	if err := j.write(journalPath(model), false, opts.NoSync); err != nil {
		return nil, err
	}
	if crashAt("journal") {
		return nil, errCrash
	}
	if err := restoreInPlace(model, side, len(side.records)-1, &s, opts.NoSync); err != nil {
		return nil, err
	}
	if crashAt("committed") {
		return nil, errCrash
	}
	if err := os.Remove(journalPath(model)); err != nil {
		return nil, err
	}
	if err := syncDir(filepath.Dir(model), opts.NoSync); err != nil {
		return nil, err
	}
	rep := &UnpatchReport{ID: rec.ID, Model: model, InPlace: true, Patch: rec.Patch, Remaining: len(side.records) - 1}
	for _, t := range rec.Tensors {
		rep.Tensors = append(rep.Tensors, t.Name)
	}
	return rep, nil
}

// unpatchSidecarTo writes out as model without its newest in-place patch; older in-place records
// go to out's own sidecar.
func unpatchSidecarTo(ctx context.Context, model, out string, opts UnpatchOptions) (*UnpatchReport, error) {
	side, err := readSidecar(undoPath(model))
	if err != nil {
		return nil, err
	}
	rec, dataStart, err := topRecord(model, side)
	if err != nil {
		return nil, err
	}
	var s scratch
	defer s.release()
	if err := side.loadFor(&s, len(side.records)-1); err != nil {
		return nil, err
	}
	r, hdr, size, err := openModel(model)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	var touched []*touch
	for _, t := range rec.Tensors {
		in, ok := r.Info(t.Name)
		if !ok {
			return nil, fmt.Errorf("signature: %s: %w: tensor %q is gone", model, ErrChanged, t.Name)
		}
		touched = append(touched, &touch{info: in, rel: t.Offset, old: side.data[dataName(rec.ID, t.Name)]})
	}
	if err := writeModel(ctx, out, atomicfile.Options{Force: opts.Force, NoSync: opts.NoSync}, hdr, model, dataStart, size-dataStart, touched, true); err != nil {
		return nil, err
	}
	if err := verifyTensors(out, dataStart, touched, true); err != nil {
		os.Remove(out)
		return nil, err
	}
	if err := removeStale(out); err != nil {
		return nil, err
	}
	if len(side.records) > 1 {
		rest := &sidecar{data: side.data, records: side.records[:len(side.records)-1]}
		if err := rest.write(undoPath(out), true, opts.NoSync); err != nil {
			os.Remove(out)
			return nil, err
		}
	}
	rep := &UnpatchReport{ID: rec.ID, Model: model, Out: out, Patch: rec.Patch, Remaining: len(side.records) - 1}
	for _, t := range rec.Tensors {
		rep.Tensors = append(rep.Tensors, t.Name)
	}
	return rep, nil
}
