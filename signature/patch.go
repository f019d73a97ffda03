package signature

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/internal/mem"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// Metadata keys a patched model carries.
const (
	// MetaPatch holds the JSON array of the patches applied out of place, oldest first.
	MetaPatch = "rws.patch"
	// MetaUndo holds what unpatch needs to restore the model before the last out-of-place patch.
	MetaUndo = "rws.undo"
)

// ErrNonFinite is wrapped when patching would produce a NaN or an infinity.
var ErrNonFinite = errors.New("non-finite result")

// Applied is a signature with its strength α.
type Applied struct {
	Sig   *Signature
	Alpha float64
}

// ParseAlpha splits "FILE@α" into the file and α (1 when there is no "@α"). A spec that names an
// existing file is taken whole, so file names may contain '@'.
func ParseAlpha(spec string) (string, float64, error) {
	if _, err := os.Stat(spec); err == nil {
		return spec, 1, nil
	}
	i := strings.LastIndexByte(spec, '@')
	if i < 0 {
		return spec, 1, nil
	}
	a, err := strconv.ParseFloat(spec[i+1:], 64)
	if err != nil || math.IsNaN(a) || math.IsInf(a, 0) || math.Abs(a) > math.MaxFloat32 {
		return "", 0, fmt.Errorf("signature: bad strength in %q: %q is not a finite number (write FILE@α, e.g. fog.rws@0.5 or fog.rws@-1)", spec, spec[i+1:])
	}
	return spec[:i], a, nil
}

// AppliedReport describes one signature of a patch.
type AppliedReport struct {
	Name    string  `json:"name"`
	File    string  `json:"file"`
	SHA256  string  `json:"sha256"`
	Alpha   float64 `json:"alpha"`
	Variant Variant `json:"variant"`
	Codec   string  `json:"codec"`
	Tensors int     `json:"tensors"`
	// Transfer is set when the model's tensors differ from the clean model the signature was
	// extracted from; Differ lists them.
	Transfer bool     `json:"transfer"`
	Differ   []string `json:"differ,omitempty"`
	// Stats lists the model's running statistics replaced by this signature's (SignatureStats).
	Stats []string `json:"stats_replaced,omitempty"`
}

// PatchReport describes a patch: what was applied to which tensors.
type PatchReport struct {
	ID         string          `json:"id"`
	Model      string          `json:"model"`
	Out        string          `json:"out,omitempty"`
	InPlace    bool            `json:"in_place"`
	Signatures []AppliedReport `json:"signatures"`
	Tensors    []string        `json:"tensors"`
	// TouchedBytes counts the bytes of the patched tensors; ModelBytes the model file.
	TouchedBytes int64 `json:"touched_bytes"`
	ModelBytes   int64 `json:"model_bytes"`
	// UndoBytes is what the record needed for an exact unpatch takes.
	UndoBytes int64  `json:"undo_bytes"`
	Command   string `json:"command,omitempty"`
	// Shards lists, for a sharded checkpoint, the shard files patched (relative to the index's
	// folder); the others are copied byte for byte.
	Shards []string `json:"shards,omitempty"`
	// BNStats is the batch-norm statistics policy applied; the signatures' Stats say which
	// statistics it replaced.
	BNStats StatsPolicy `json:"bn_stats"`
}

// touch is one tensor a patch changes.
type touch struct {
	info safetensors.Info
	rel  int64 // offset from the start of the data section
	// old and new are the tensor's bytes before and after; they may live in the scratch memory of
	// the operation, so they must not be kept past it.
	old, new []byte
	// oldSum and newSum are the hex SHA-256 of old and new (set by makePlan).
	oldSum, newSum string
	// alphas and sigs are the terms added to the tensor, in order.
	alphas []float64
	sigs   []*Tensor
}

// plan is a computed patch, not yet written.
type plan struct {
	path      string
	size      int64 // model file size
	header    []byte
	dataStart int64
	meta      map[string]string
	infos     []safetensors.Info // every tensor, in storage order
	touched   []*touch           // in storage order
	report    *PatchReport
	set       *SetPatch // recorded with the entry: the sharded patch this one is part of
}

// readHeader returns the raw 8-byte length and JSON header of a single-file checkpoint.
func readHeader(f *os.File) ([]byte, error) {
	var n [8]byte
	if _, err := f.ReadAt(n[:], 0); err != nil {
		return nil, err
	}
	size := binary.LittleEndian.Uint64(n[:])
	if size > safetensors.MaxHeaderSize {
		return nil, fmt.Errorf("header of %d bytes exceeds %d", size, safetensors.MaxHeaderSize)
	}
	out := mem.Bytes(int(8 + size)) // a patched model's header holds its undo record: megabytes
	_, err := f.ReadAt(out, 0)
	return out, err
}

// openModel opens a single-file checkpoint and reads its raw header.
func openModel(path string) (*safetensors.Reader, []byte, int64, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, 0, fmt.Errorf("signature: %w", err)
	}
	if r.Sharded() {
		r.Close()
		return nil, nil, 0, fmt.Errorf("signature: %s is a sharded checkpoint: %w", path, ErrShardedInPlace)
	}
	f, err := os.Open(path)
	if err != nil {
		r.Close()
		return nil, nil, 0, err
	}
	defer f.Close()
	hdr, err := readHeader(f)
	if err != nil {
		r.Close()
		return nil, nil, 0, fmt.Errorf("signature: %s: %w", path, err)
	}
	st, err := f.Stat()
	if err != nil {
		r.Close()
		return nil, nil, 0, err
	}
	return r, hdr, st.Size(), nil
}

// makePlan checks the signatures against the model and computes the patched bytes of every
// touched tensor, running statistics as policy says, in buffers taken from s. Nothing is written.
func makePlan(ctx context.Context, model string, sigs []Applied, policy StatsPolicy, s *scratch) (*plan, error) {
	if len(sigs) == 0 {
		return nil, fmt.Errorf("signature: no signature to apply")
	}
	r, hdr, size, err := openModel(model)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := &plan{path: model, size: size, header: hdr, dataStart: int64(len(hdr)), meta: r.Metadata(),
		infos: r.Tensors(), report: &PatchReport{Model: model, ModelBytes: size}}
	terms, err := matchTerms(r, model, sigs)
	if err != nil {
		return nil, err
	}
	stats, err := matchStats(r, model, sigs, policy, terms)
	if err != nil {
		return nil, err
	}
	// The fingerprints are computed on the other cores while the next tensor is read and
	// patched; every buffer they read stays valid until they are done.
	var hashing sync.WaitGroup
	defer hashing.Wait()
	hash := func(dst *string, b []byte) {
		hashing.Add(1)
		go func() {
			defer hashing.Done()
			*dst = hexSHA256(b)
		}()
	}
	for _, in := range p.infos {
		ts, ok := terms[in.Name]
		if !ok {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t := &touch{info: in, rel: in.Offset - p.dataStart, old: s.alloc(in.Size), new: s.alloc(in.Size)}
		if err := r.ReadRawInto(in.Name, t.old); err != nil {
			return nil, err
		}
		hash(&t.oldSum, t.old)
		vals := make([][]float32, len(ts))
		t.alphas = make([]float64, len(ts))
		t.sigs = make([]*Tensor, len(ts))
		for k, tm := range ts {
			if vals[k], err = tm.t.Values(); err != nil {
				return nil, err
			}
			t.alphas[k], t.sigs[k] = tm.alpha, tm.t
		}
		if err := applyTensor(in.DType, t.old, t.alphas, vals, t.new); err != nil {
			return nil, fmt.Errorf("signature: tensor %q: %w", in.Name, err)
		}
		hash(&t.newSum, t.new)
		p.touched = append(p.touched, t)
		p.report.Tensors = append(p.report.Tensors, in.Name)
		p.report.TouchedBytes += in.Size
	}
	hashing.Wait()
	differ := make([][]string, len(sigs))
	for _, t := range p.touched {
		for k, a := range sigs {
			if st := a.Sig.Tensor(t.info.Name); st != nil && st.Sources.Clean != t.oldSum {
				differ[k] = append(differ[k], t.info.Name)
			}
		}
	}
	for k, a := range sigs {
		p.report.Signatures = append(p.report.Signatures, AppliedReport{
			Name: a.Sig.Name, File: a.Sig.Path, SHA256: a.Sig.FileSHA256, Alpha: a.Alpha, Variant: a.Sig.Variant,
			Codec: a.Sig.Spec.String(), Tensors: len(a.Sig.Tensors), Transfer: len(differ[k]) > 0, Differ: differ[k],
		})
	}
	if err := p.addStats(r, stats, policy, s); err != nil {
		return nil, err
	}
	sort.SliceStable(p.touched, func(i, j int) bool { return p.touched[i].rel < p.touched[j].rel })
	return p, nil
}

// term is one α·RWS term to add to a model tensor.
type term struct {
	alpha float64
	t     *Tensor
}

// matchTerms checks every tensor of the signatures against the model r (opened from model) and
// returns the terms to add per model tensor, in the order given.
func matchTerms(r *safetensors.Reader, model string, sigs []Applied) (map[string][]term, error) {
	terms := map[string][]term{}
	for _, a := range sigs {
		if math.IsNaN(a.Alpha) || math.IsInf(a.Alpha, 0) || math.Abs(a.Alpha) > math.MaxFloat32 {
			return nil, fmt.Errorf("signature: strength %v for %s is not finite in float32", a.Alpha, a.Sig.Path)
		}
		for _, t := range a.Sig.Tensors {
			in, ok := r.Info(t.Name)
			if !ok {
				return nil, fmt.Errorf("signature: %w: tensor %q of signature %s is not in the model %s", ErrMismatch, t.Name, a.Sig.Path, model)
			}
			if fmt.Sprint(in.Shape) != fmt.Sprint(t.Shape) {
				return nil, fmt.Errorf("signature: %w: tensor %q: signature %s has shape %v, model %s has %v", ErrMismatch, t.Name, a.Sig.Path, t.Shape, model, in.Shape)
			}
			if !in.DType.Writable() {
				return nil, fmt.Errorf("signature: tensor %q of %s is %s; patches apply to F32, F16, BF16 and F64 tensors", t.Name, model, in.DType)
			}
			terms[t.Name] = append(terms[t.Name], term{a.Alpha, t})
		}
	}
	return terms, nil
}

// arithChunk is the number of elements applyTensor and predictOriginal convert at a time, so that
// their float buffers stay small whatever the tensor size.
const arithChunk = 1 << 14

// applyTensor writes to out (len(raw) bytes) raw (elements of dt) plus Σ alphas[k]·vals[k],
// computed in float32 (float64 for F64) and rounded once into dt. A non-finite result is an error
// wrapping ErrNonFinite.
func applyTensor(dt tensor.DType, raw []byte, alphas []float64, vals [][]float32, out []byte) error {
	n := len(raw) / dt.Size()
	switch dt {
	case tensor.F32:
		// The common case, without a float32 copy of the tensor; one signature is the most common
		// of all and gets a loop of its own.
		raw, out = raw[:4*n], out[:4*n]
		if len(vals) == 1 {
			a, v := float32(alphas[0]), vals[0][:n]
			for i := range v {
				x := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:])) + float32(a*v[i]) // the conversion keeps the product rounded (no fused multiply-add)
				b := math.Float32bits(x)
				if b&0x7f800000 == 0x7f800000 {
					return fmt.Errorf("%w: value %d becomes %v", ErrNonFinite, i, x)
				}
				binary.LittleEndian.PutUint32(out[4*i:], b)
			}
			return nil
		}
		for i := range n {
			x := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			for k, v := range vals {
				x += float32(float32(alphas[k]) * v[i]) // the conversion keeps the product rounded (no fused multiply-add)
			}
			if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
				return fmt.Errorf("%w: value %d becomes %v", ErrNonFinite, i, x)
			}
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
		return nil
	case tensor.F64:
		for i := range n {
			x := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			for k, v := range vals {
				x += float64(alphas[k] * float64(v[i]))
			}
			if math.IsNaN(x) || math.IsInf(x, 0) {
				return fmt.Errorf("%w: value %d becomes %v", ErrNonFinite, i, x)
			}
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(x))
		}
		return nil
	}
	es := dt.Size()
	acc := make([]float32, min(n, arithChunk))
	check := make([]float32, len(acc))
	for lo := 0; lo < n; lo += arithChunk {
		hi := min(n, lo+arithChunk)
		a, c := acc[:hi-lo], check[:hi-lo]
		if err := tensor.DecodeFloat32(dt, raw[lo*es:hi*es], a); err != nil {
			return err
		}
		for k, v := range vals {
			al := float32(alphas[k])
			for i := range a {
				a[i] += float32(al * v[lo+i]) // the conversion keeps the product rounded (no fused multiply-add)
			}
		}
		for i, v := range a {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: value %d becomes %v", ErrNonFinite, lo+i, v)
			}
		}
		if err := tensor.EncodeFloat32(dt, a, out[lo*es:hi*es]); err != nil {
			return err
		}
		// Rounding into F16 or BF16 can overflow to infinity.
		if err := tensor.DecodeFloat32(dt, out[lo*es:hi*es], c); err != nil {
			return err
		}
		for i, v := range c {
			if math.IsInf(float64(v), 0) {
				return fmt.Errorf("%w: value %d becomes %v in %s", ErrNonFinite, lo+i, a[i], dt)
			}
		}
	}
	return nil
}

// predictOriginal undoes applyTensor approximately: it writes to out raw (the patched elements of
// dt) minus Σ alphas[k]·vals[k], subtracting in reverse order with the same roundings. It is
// usually, not always, the original; Patch stores the XOR with the true original, which is then
// mostly zero.
func predictOriginal(dt tensor.DType, raw []byte, alphas []float64, vals [][]float32, out []byte) {
	n := len(raw) / dt.Size()
	switch dt {
	case tensor.F32:
		for i := range n {
			x := math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
			for k := len(vals) - 1; k >= 0; k-- {
				x -= float32(float32(alphas[k]) * vals[k][i])
			}
			binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(x))
		}
		return
	case tensor.F64:
		for i := range n {
			x := math.Float64frombits(binary.LittleEndian.Uint64(raw[8*i:]))
			for k := len(vals) - 1; k >= 0; k-- {
				x -= float64(alphas[k] * float64(vals[k][i]))
			}
			binary.LittleEndian.PutUint64(out[8*i:], math.Float64bits(x))
		}
		return
	}
	es := dt.Size()
	acc := make([]float32, min(n, arithChunk))
	for lo := 0; lo < n; lo += arithChunk {
		hi := min(n, lo+arithChunk)
		a := acc[:hi-lo]
		tensor.DecodeFloat32(dt, raw[lo*es:hi*es], a)
		for k := len(vals) - 1; k >= 0; k-- {
			al, v := float32(alphas[k]), vals[k]
			for i := range a {
				a[i] -= float32(al * v[lo+i])
			}
		}
		tensor.EncodeFloat32(dt, a, out[lo*es:hi*es])
	}
}

// PatchEntry describes one patch applied to a model: an element of the MetaPatch array, or an
// in-place patch recorded in the model's undo sidecar.
type PatchEntry struct {
	ID         string          `json:"id"`
	Signatures []AppliedReport `json:"signatures"`
	Tensors    []string        `json:"tensors"`
	Command    string          `json:"command,omitempty"`
	InPlace    bool            `json:"in_place,omitempty"`
	// Set, in the history of a shard, ties the entry to the patch of its sharded checkpoint.
	Set *SetPatch `json:"set,omitempty"`
}

// History lists the patches applied to the single-file model at path, oldest first: those
// recorded in its metadata (out of place), then those in its undo sidecar (in place). A model
// never patched has none. For a sharded checkpoint (an index) it lists its sharded patches.
func History(path string) ([]PatchEntry, error) {
	if isIndex(path) {
		return shardedHistory(path)
	}
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, fmt.Errorf("signature: %w", err)
	}
	raw := r.Metadata()[MetaPatch]
	r.Close()
	var out []PatchEntry
	if raw != "" {
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			return nil, fmt.Errorf("signature: %s: metadata %s is not a patch history: %v", path, MetaPatch, err)
		}
	}
	recs, err := sidecarRecords(path)
	if err != nil {
		return nil, err
	}
	for _, rec := range recs {
		e := rec.Patch
		e.InPlace = true
		out = append(out, e)
	}
	return out, nil
}

// planID is a deterministic identifier of a patch: a digest of the model header, the depth of
// earlier in-place patches, and every touched tensor's bytes before and after.
func (p *plan) planID(depth int) string {
	h := sha256.New()
	h.Write(p.header)
	fmt.Fprintf(h, "depth %d\n", depth)
	for _, t := range p.touched {
		fmt.Fprintf(h, "%s %d %s %s\n", t.info.Name, t.rel, t.oldSum, t.newSum)
	}
	return hex.EncodeToString(h.Sum(nil))[:16]
}

func (p *plan) entry() PatchEntry {
	return PatchEntry{ID: p.report.ID, Signatures: p.report.Signatures, Tensors: p.report.Tensors, Command: p.report.Command,
		InPlace: p.report.InPlace, Set: p.set}
}

// PatchOptions controls Patch and PatchInPlace.
type PatchOptions struct {
	// Force replaces an existing output.
	Force bool
	// Command is recorded with the patch.
	Command string
	// BNStats is what happens to the model's batch-norm running statistics; "" is KeepStats.
	BNStats StatsPolicy
	// NoSync skips the fsyncs. Outputs are still written atomically and in-place patches stay
	// safe against a killed process (the page cache keeps the order of writes), but a power
	// failure or an OS crash soon after may lose the output, or leave an in-place patch that
	// the journal cannot roll back.
	NoSync bool
	// set is recorded with the patch of each shard of a sharded patch.
	set *SetPatch
}

// syncData is dataSync unless noSync is set.
func syncData(f *os.File, noSync bool) error {
	if noSync {
		return nil
	}
	return dataSync(f)
}

// syncDir is atomicfile.SyncDir unless noSync is set.
func syncDir(dir string, noSync bool) error {
	if noSync {
		return nil
	}
	return atomicfile.SyncDir(dir)
}

// scratch holds the large temporary buffers of one operation (the touched tensors before and
// after, undo data) and frees them together. Buffers from alloc must not be used after release.
type scratch struct {
	mu   sync.Mutex
	free []func()
}

// alloc returns n zero bytes (see mem.Mapped).
func (s *scratch) alloc(n int64) []byte {
	b, free := mem.Mapped(int(n))
	s.mu.Lock()
	s.free = append(s.free, free)
	s.mu.Unlock()
	return b
}

// release frees every buffer alloc returned.
func (s *scratch) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.free {
		f()
	}
	s.free = nil
}

// errNoKernelCopy says that the kernel cannot copy between two files (kernelCopy).
var errNoKernelCopy = errors.New("no kernel copy between these files")

// copyBufSize is the buffer of a rangeCopier where the kernel cannot copy.
const copyBufSize = 1 << 20

// rangeCopier copies byte ranges of src to dst: in the kernel while it can (copy_file_range),
// through a buffer from the first time it cannot on.
type rangeCopier struct {
	dst, src *os.File
	buf      []byte // set once the kernel could not copy
}

// copy copies n bytes at srcOff of src to dstOff of dst. A src shorter than srcOff+n is an error.
func (c *rangeCopier) copy(dstOff, srcOff, n int64) error {
	if n <= 0 {
		return nil
	}
	short := func() error {
		return fmt.Errorf("%s is shorter than its header says (was it changed?)", c.src.Name())
	}
	if c.buf == nil {
		done, err := kernelCopy(c.dst, c.src, dstOff, srcOff, n)
		switch {
		case err == nil && done == n:
			return nil
		case err == nil:
			return short()
		case !errors.Is(err, errNoKernelCopy):
			return err
		}
		c.buf = make([]byte, copyBufSize)
	}
	for done := int64(0); done < n; {
		b := c.buf[:min(int64(len(c.buf)), n-done)]
		k, err := c.src.ReadAt(b, srcOff+done)
		if k < len(b) {
			if err == nil || errors.Is(err, io.EOF) {
				err = short()
			}
			return err
		}
		if _, err := c.dst.WriteAt(b, dstOff+done); err != nil {
			return err
		}
		done += int64(k)
	}
	return nil
}

// marshal is json.Marshal for values that cannot fail.
func marshal(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
