package signature

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// UndoFormat names undo records: the MetaUndo value of a patched model, and the in-place undo
// sidecar and journal files.
const UndoFormat = "rws.undo"

// UndoVersion is the version of the undo record format written; readers accept MinUndoVersion to
// MaxUndoVersion.
const (
	UndoVersion    = 1
	MinUndoVersion = 1
	MaxUndoVersion = 1
)

// ErrNotPatched is returned by Unpatch for a model with no patch to remove.
var ErrNotPatched = errors.New("model has no recorded patch")

// ErrChanged is wrapped when a patched model no longer holds the bytes its patch wrote, so the
// original cannot be restored exactly.
var ErrChanged = errors.New("model changed since it was patched")

// undoRecord is what an out-of-place patch stores (as JSON) under MetaUndo: the original header
// and, per touched tensor, the XOR of the original bytes with a prediction of them (byte planes
// split, then DEFLATE; []byte fields are base64 in JSON). The prediction is either the patched
// bytes themselves, or, when Terms are stored, the patched bytes minus the stored signature
// terms (predictOriginal): close to the original, so the XOR is mostly zero and compresses to
// little. Patch keeps whichever is smaller with the terms counted.
type undoRecord struct {
	Format    string       `json:"format"`
	Version   int          `json:"version"`
	ID        string       `json:"id"`
	Header    []byte       `json:"header"` // DEFLATE of the original 8-byte length and JSON header
	DataBytes int64        `json:"data_bytes"`
	Tensors   []undoTensor `json:"tensors"`
}

type undoTensor struct {
	Name     string `json:"name"`
	Offset   int64  `json:"offset"` // from the start of the data section
	Size     int64  `json:"size"`
	ElemSize int    `json:"element_size"`
	Before   string `json:"sha256_before"`
	After    string `json:"sha256_after"`
	XOR      []byte `json:"xor,omitempty"`
	// Terms, when set, are the signature values added to the tensor, in order; the XOR is then
	// against predictOriginal of the patched bytes.
	Terms []undoTerm `json:"terms,omitempty"`
}

// undoTerm is one α·RWS term of a patched tensor, with the signature values as stored in their
// signature file (codes and parameters, or raw values of DType for codec none).
type undoTerm struct {
	Alpha  float64      `json:"alpha"`
	Codec  string       `json:"codec"`
	Bits   int          `json:"bits,omitempty"`
	Groups int          `json:"groups,omitempty"`
	DType  tensor.DType `json:"dtype,omitempty"`
	Codes  []byte       `json:"codes,omitempty"`
	Params []float32    `json:"params,omitempty"`
	Raw    []byte       `json:"raw,omitempty"`
}

// termOf records a signature tensor as an undo term.
func termOf(alpha float64, t *Tensor) undoTerm {
	u := undoTerm{Alpha: alpha, DType: t.DType}
	if t.q != nil {
		u.Codec, u.Bits, u.Groups, u.Codes, u.Params = string(t.q.Spec.Codec), t.q.Spec.Bits, t.q.Groups, t.q.Codes, t.q.Params
	} else {
		u.Codec, u.Raw = string(quant.None), t.raw
	}
	return u
}

func (u undoTerm) size() int { return len(u.Codes) + 4*len(u.Params) + len(u.Raw) + 64 }

// values decodes a term's signature values for a tensor of n elements.
func (u undoTerm) values(n int64) ([]float32, error) {
	t := &Tensor{DType: u.DType, Shape: []int64{n}}
	if u.Codec == string(quant.None) {
		if !u.DType.Writable() || int64(len(u.Raw)) != n*int64(u.DType.Size()) {
			return nil, fmt.Errorf("term of %d bytes of %q does not hold %d values", len(u.Raw), u.DType, n)
		}
		t.raw = u.Raw
	} else {
		c, err := quant.ParseCodec(u.Codec)
		if err != nil {
			return nil, err
		}
		t.q = &quant.Tensor{Spec: quant.Spec{Codec: c, Bits: u.Bits}, Len: int(n), Groups: u.Groups, Codes: u.Codes, Params: u.Params}
	}
	return t.decode()
}

func hexSHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// deflate compresses b (fastest level: the data is mostly either zero or noise).
func deflate(b []byte) []byte {
	var buf bytes.Buffer
	w, _ := flate.NewWriter(&buf, flate.BestSpeed)
	w.Write(b)
	w.Close()
	return buf.Bytes()
}

// inflate decompresses exactly n bytes, refusing more or fewer.
func inflate(b []byte, n int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out := make([]byte, n)
	if _, err := io.ReadFull(r, out); err != nil {
		return nil, fmt.Errorf("compressed data ends early: %w", err)
	}
	var one [1]byte
	if m, _ := r.Read(one[:]); m != 0 {
		return nil, fmt.Errorf("compressed data is longer than %d bytes", n)
	}
	return out, nil
}

// xorPlanes returns a ^ b with byte planes split (all first bytes of the elements, then all
// second bytes, …), which puts the rarely changing sign and exponent bytes together.
func xorPlanes(a, b []byte, es int) []byte {
	n := len(a) / es
	out := make([]byte, len(a))
	for i := range n {
		for k := range es {
			out[k*n+i] = a[i*es+k] ^ b[i*es+k]
		}
	}
	return out
}

// unXORPlanes inverts xorPlanes: given b and the planes of a ^ b, it returns a.
func unXORPlanes(planes, b []byte, es int) []byte {
	n := len(b) / es
	out := make([]byte, len(b))
	for i := range n {
		for k := range es {
			out[i*es+k] = planes[k*n+i] ^ b[i*es+k]
		}
	}
	return out
}

// sidecarRecords returns the in-place undo records of model (nil when there is no sidecar).
func sidecarRecords(model string) ([]sideRecord, error) {
	sc, err := readSidecar(undoPath(model))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return sc.records, nil
}

// Patch writes out = model + Σ α·RWS. Tensors the signatures do not cover are copied byte for
// byte; the header gains MetaPatch (the patch history) and MetaUndo (what Unpatch needs to give
// back model exactly). Any mismatch or non-finite result is an error and leaves no output.
func Patch(ctx context.Context, model, out string, sigs []Applied, opts PatchOptions) (*PatchReport, error) {
	if err := Recover(model); err != nil {
		return nil, err
	}
	if recs, err := sidecarRecords(model); err != nil {
		return nil, err
	} else if len(recs) > 0 {
		return nil, fmt.Errorf("signature: %s has %d in-place patches recorded in %s; unpatch them first (rws unpatch --in-place) or patch it in place", model, len(recs), undoPath(model))
	}
	if err := checkStale(out, opts.Force); err != nil {
		return nil, err
	}
	p, err := makePlan(ctx, model, sigs)
	if err != nil {
		return nil, err
	}
	p.report.Out = out
	p.report.Command = opts.Command
	p.report.ID = p.planID(0)
	rec := undoRecord{Format: UndoFormat, Version: UndoVersion, ID: p.report.ID, Header: deflate(p.header),
		DataBytes: p.size - p.dataStart}
	for _, t := range p.touched {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		rec.Tensors = append(rec.Tensors, undoOf(t))
	}
	meta := make(map[string]string, len(p.meta)+2)
	for k, v := range p.meta {
		meta[k] = v
	}
	var history []PatchEntry
	if h := p.meta[MetaPatch]; h != "" {
		if err := json.Unmarshal([]byte(h), &history); err != nil {
			return nil, fmt.Errorf("signature: %s: metadata %s is not a patch history: %v", model, MetaPatch, err)
		}
	}
	meta[MetaPatch] = marshal(append(history, p.entry()))
	meta[MetaUndo] = marshal(rec)
	p.report.UndoBytes = int64(len(meta[MetaUndo]))
	infos := make([]safetensors.Info, len(p.infos))
	copy(infos, p.infos)
	hdr, err := safetensors.EncodeHeader(infos, meta)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	if err := writeModel(ctx, out, opts.Force, hdr, model, p.dataStart, p.size-p.dataStart, p.touched, false); err != nil {
		return nil, err
	}
	if err := verifyTensors(out, int64(len(hdr)), p.touched, false); err != nil {
		os.Remove(out)
		return nil, err
	}
	if err := removeStale(out); err != nil {
		return nil, err
	}
	return p.report, nil
}

// writeModel writes path (atomically) as hdr followed by the data section of src (dataBytes
// bytes from srcStart) with the touched tensors' ranges replaced by their new bytes, or by their
// old bytes when restore is set.
func writeModel(ctx context.Context, path string, force bool, hdr []byte, src string, srcStart, dataBytes int64, touched []*touch, restore bool) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	f, err := atomicfile.Create(path, atomicfile.Options{Force: force})
	if err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	defer f.Abort()
	w := &flusher{f: f.File}
	if err := w.write(hdr); err != nil {
		return err
	}
	var cur int64
	for _, t := range touched {
		if err := w.copy(ctx, in, srcStart+cur, t.rel-cur); err != nil {
			return fmt.Errorf("signature: %w", err)
		}
		data := t.new
		if restore {
			data = t.old
		}
		if err := w.write(data); err != nil {
			return err
		}
		cur = t.rel + int64(len(data))
	}
	if err := w.copy(ctx, in, srcStart+cur, dataBytes-cur); err != nil {
		return fmt.Errorf("signature: %w", err)
	}
	return f.Commit()
}

// flushChunk is how much flusher writes before starting the writeback of what it wrote.
const flushChunk = 64 << 20

// flusher writes a file sequentially and starts the disk writeback of every flushChunk bytes as
// it goes, so that the data is mostly on disk by the time the file is synced.
type flusher struct {
	f       *os.File
	off     int64 // bytes written
	flushed int64 // bytes whose writeback was started
}

func (w *flusher) advance(n int64) {
	w.off += n
	if w.off-w.flushed >= flushChunk {
		startWriteback(w.f, w.flushed, w.off-w.flushed)
		w.flushed = w.off
	}
}

func (w *flusher) write(b []byte) error {
	for len(b) > 0 {
		n := min(len(b), flushChunk)
		if _, err := w.f.Write(b[:n]); err != nil {
			return err
		}
		w.advance(int64(n))
		b = b[n:]
	}
	return nil
}

// copy copies n bytes at offset off of src, in the kernel when it can (copy_file_range).
func (w *flusher) copy(ctx context.Context, src *os.File, off, n int64) error {
	for n > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := min(n, flushChunk)
		if err := copyRange(w.f, src, off, k); err != nil {
			return err
		}
		w.advance(k)
		off += k
		n -= k
	}
	return nil
}

// verifyTensors reads back the touched tensors of a file written by writeModel with a header of
// hdrLen bytes and checks that they hold the bytes written.
func verifyTensors(path string, hdrLen int64, touched []*touch, restore bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("signature: reading back %s: %w", path, err)
	}
	defer f.Close()
	for _, t := range touched {
		want := t.new
		if restore {
			want = t.old
		}
		got := make([]byte, len(want))
		if _, err := f.ReadAt(got, hdrLen+t.rel); err != nil {
			return fmt.Errorf("signature: reading back %s: %w", path, err)
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("signature: reading back %s: tensor %q does not hold the bytes written", path, t.info.Name)
		}
	}
	return nil
}

// UnpatchReport describes a removed patch.
type UnpatchReport struct {
	ID        string   `json:"id"`
	Model     string   `json:"model"`
	Out       string   `json:"out,omitempty"`
	InPlace   bool     `json:"in_place"`
	Tensors   []string `json:"tensors"`
	Patch     any      `json:"patch,omitempty"` // the removed patch's record
	Remaining int      `json:"remaining"`       // patches still recorded in the output
}

// UnpatchOptions controls Unpatch.
type UnpatchOptions struct {
	// Force replaces an existing output.
	Force bool
}

// Unpatch writes out as the model was before its last patch: every tensor byte for byte, and its
// original metadata (the original file, byte for byte, for a patch made by Patch). The last patch
// is the newest in-place one (see PatchInPlace) if any, else the out-of-place one in the header.
func Unpatch(ctx context.Context, patched, out string, opts UnpatchOptions) (*UnpatchReport, error) {
	if err := Recover(patched); err != nil {
		return nil, err
	}
	recs, err := sidecarRecords(patched)
	if err != nil {
		return nil, err
	}
	if err := checkStale(out, opts.Force); err != nil {
		return nil, err
	}
	if len(recs) > 0 {
		return unpatchSidecarTo(ctx, patched, out, opts)
	}
	r, hdr, size, err := openModel(patched)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	raw := r.Metadata()[MetaUndo]
	if raw == "" {
		return nil, fmt.Errorf("signature: %s: %w (no %s metadata and no %s)", patched, ErrNotPatched, MetaUndo, undoPath(patched))
	}
	var rec undoRecord
	if err := json.Unmarshal([]byte(raw), &rec); err != nil {
		return nil, fmt.Errorf("signature: %s: metadata %s is damaged: %v", patched, MetaUndo, err)
	}
	if rec.Format != UndoFormat || rec.Version < MinUndoVersion || rec.Version > MaxUndoVersion {
		return nil, fmt.Errorf("signature: %s: undo record format %q version %d is not supported (this rws reads %s %d to %d)", patched, rec.Format, rec.Version, UndoFormat, MinUndoVersion, MaxUndoVersion)
	}
	dataStart := int64(len(hdr))
	if rec.DataBytes != size-dataStart {
		return nil, fmt.Errorf("signature: %s: %w: data section is %d bytes, the patch wrote %d", patched, ErrChanged, size-dataStart, rec.DataBytes)
	}
	orig, err := inflateAll(rec.Header, 8+safetensors.MaxHeaderSize)
	if err != nil {
		return nil, fmt.Errorf("signature: %s: undo record header: %v", patched, err)
	}
	var touched []*touch
	rep := &UnpatchReport{ID: rec.ID, Model: patched, Out: out}
	var cur int64
	for _, ut := range rec.Tensors {
		in, ok := r.Info(ut.Name)
		if !ok || in.Offset-dataStart != ut.Offset || in.Size != ut.Size || ut.ElemSize != in.DType.Size() || ut.Offset < cur {
			return nil, fmt.Errorf("signature: %s: %w: tensor %q is not where the patch wrote it", patched, ErrChanged, ut.Name)
		}
		cur = ut.Offset + ut.Size
		now, err := r.ReadRaw(ut.Name)
		if err != nil {
			return nil, err
		}
		if hexSHA256(now) != ut.After {
			return nil, fmt.Errorf("signature: %s: %w: tensor %q no longer holds the patched values, so the original cannot be restored exactly", patched, ErrChanged, ut.Name)
		}
		planes, err := inflate(ut.XOR, ut.Size)
		if err != nil {
			return nil, fmt.Errorf("signature: %s: undo data of tensor %q: %v", patched, ut.Name, err)
		}
		pred := now
		if len(ut.Terms) > 0 {
			alphas := make([]float64, len(ut.Terms))
			vals := make([][]float32, len(ut.Terms))
			for k, term := range ut.Terms {
				alphas[k] = term.Alpha
				if vals[k], err = term.values(in.Elements()); err != nil {
					return nil, fmt.Errorf("signature: %s: undo data of tensor %q: %v", patched, ut.Name, err)
				}
			}
			pred = predictOriginal(in.DType, now, alphas, vals)
		}
		old := unXORPlanes(planes, pred, ut.ElemSize)
		if hexSHA256(old) != ut.Before {
			return nil, fmt.Errorf("signature: %s: undo data of tensor %q does not restore the recorded original (damaged record)", patched, ut.Name)
		}
		touched = append(touched, &touch{info: in, rel: ut.Offset, old: old, new: now})
		rep.Tensors = append(rep.Tensors, ut.Name)
	}
	if err := writeModel(ctx, out, opts.Force, orig, patched, dataStart, rec.DataBytes, touched, true); err != nil {
		return nil, err
	}
	if err := verifyTensors(out, int64(len(orig)), touched, true); err != nil {
		os.Remove(out)
		return nil, err
	}
	// The restored header must describe the file (its own layout checks).
	r2, err := safetensors.Open(out)
	if err != nil {
		os.Remove(out)
		return nil, fmt.Errorf("signature: the restored model does not read back: %w", err)
	}
	r2.Close()
	if err := removeStale(out); err != nil {
		return nil, err
	}
	var history []PatchEntry
	if json.Unmarshal([]byte(r.Metadata()[MetaPatch]), &history) == nil && len(history) > 0 {
		rep.Patch = history[len(history)-1]
		rep.Remaining = len(history) - 1
	}
	return rep, nil
}

// inflateAll decompresses at most limit bytes.
func inflateAll(b []byte, limit int64) ([]byte, error) {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	out, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > limit {
		return nil, fmt.Errorf("decompresses to more than %d bytes", limit)
	}
	return out, nil
}

// checkStale refuses, without force, an undo sidecar or journal left beside an output path by an
// earlier file: it would be taken for the new file's. With force, removeStale deletes it once the
// new output is written.
func checkStale(out string, force bool) error {
	for _, p := range []string{undoPath(out), journalPath(out)} {
		if _, err := os.Stat(p); err == nil && !force {
			return fmt.Errorf("signature: %s exists: it records in-place patches of an earlier %s (remove it, or use --force to replace both)", p, out)
		}
	}
	return nil
}

func removeStale(out string) error {
	for _, p := range []string{journalPath(out), undoPath(out)} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// undoOf makes the undo entry of a touched tensor: the XOR of the original with the patched
// bytes, or with predictOriginal plus the terms, whichever takes fewer bytes.
func undoOf(t *touch) undoTensor {
	es := t.info.DType.Size()
	ut := undoTensor{Name: t.info.Name, Offset: t.rel, Size: t.info.Size, ElemSize: es, Before: t.oldSum, After: t.newSum,
		XOR: deflate(xorPlanes(t.old, t.new, es))}
	vals := make([][]float32, len(t.sigs))
	terms := make([]undoTerm, len(t.sigs))
	cost := 0
	for k, s := range t.sigs {
		v, err := s.Values()
		if err != nil {
			return ut // cannot happen: makePlan decoded them
		}
		vals[k] = v
		terms[k] = termOf(t.alphas[k], s)
		cost += terms[k].size()
	}
	if cost >= len(ut.XOR) {
		return ut
	}
	pred := predictOriginal(t.info.DType, t.new, t.alphas, vals)
	if x := deflate(xorPlanes(t.old, pred, es)); len(x)+cost < len(ut.XOR) {
		ut.XOR, ut.Terms = x, terms
	}
	return ut
}
