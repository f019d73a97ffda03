package signature

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"unsafe"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/internal/mem"
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

// ErrHeaderTooLarge is wrapped when an out-of-place patch's undo record would not fit in a
// safetensors header.
var ErrHeaderTooLarge = errors.New("patched header too large")

// maxHeader is the largest header Patch writes: the one readers accept (a variable for tests).
var maxHeader int64 = safetensors.MaxHeaderSize

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
	XOR      b64    `json:"xor,omitempty"`
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
	Codes  b64          `json:"codes,omitempty"`
	Params []float32    `json:"params,omitempty"`
	Raw    b64          `json:"raw,omitempty"`
}

// b64 is a []byte that encoding/json writes as base64, like any []byte, and reads into huge-page
// memory (mem.Bytes) on all cores: undo records hold megabytes of it.
type b64 []byte

// UnmarshalJSON decodes a JSON string of standard base64, or null.
func (b *b64) UnmarshalJSON(data []byte) error {
	if string(data) == "null" {
		*b = nil
		return nil
	}
	if len(data) < 2 || data[0] != '"' || data[len(data)-1] != '"' {
		return fmt.Errorf("want a base64 string, got %.20q", data)
	}
	src := data[1 : len(data)-1]
	if bytes.IndexByte(src, '\\') >= 0 {
		// json.Marshal never escapes base64; decode anything else the plain way.
		var plain []byte
		if err := json.Unmarshal(data, &plain); err != nil {
			return err
		}
		*b = plain
		return nil
	}
	out, err := decodeBase64(src)
	if err != nil {
		return err
	}
	*b = out
	return nil
}

// decodeBase64 decodes standard base64 (padded), on all cores for large inputs: pieces of a
// multiple of 4 characters decode independently.
func decodeBase64(src []byte) ([]byte, error) {
	const piece = 1 << 20 // characters, a multiple of 4
	if len(src)%4 != 0 {
		return nil, fmt.Errorf("base64 of %d characters is not a multiple of 4", len(src))
	}
	out := mem.Bytes(base64.StdEncoding.DecodedLen(len(src)))
	if len(src) < 2*piece {
		n, err := base64.StdEncoding.Decode(out, src)
		return out[:n], err
	}
	pieces := (len(src) + piece - 1) / piece
	ns := make([]int, pieces)
	err := each(context.Background(), pieces, nil, func(i int) error {
		lo, hi := i*piece, min(len(src), (i+1)*piece)
		if i < pieces-1 && bytes.IndexByte(src[lo:hi], '=') >= 0 {
			return fmt.Errorf("base64 padding inside the data at %d", lo)
		}
		// Decode writes 8 bytes at a time while dst has room: bound dst to this piece, or it
		// writes into the next one.
		at, end := lo/4*3, lo/4*3+base64.StdEncoding.DecodedLen(hi-lo)
		var err error
		ns[i], err = base64.StdEncoding.Decode(out[at:end:end], src[lo:hi])
		return err
	})
	if err != nil {
		return nil, err
	}
	// Only the last piece may be short (padding), so the pieces lie end to end.
	return out[:(pieces-1)*piece/4*3+ns[pieces-1]], nil
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

// xorPlanes writes to out a ^ b with byte planes split (all first bytes of the elements, then all
// second bytes, …), which puts the rarely changing sign and exponent bytes together.
func xorPlanes(a, b []byte, es int, out []byte) {
	n := len(a) / es
	if es == 4 {
		// F32, the common case: one 32-bit load per element and operand.
		p0, p1, p2, p3 := out[:n], out[n:2*n], out[2*n:3*n], out[3*n:4*n]
		a, b = a[:4*n], b[:4*n]
		for i := range p0 {
			x := binary.LittleEndian.Uint32(a[4*i:]) ^ binary.LittleEndian.Uint32(b[4*i:])
			p0[i], p1[i], p2[i], p3[i] = byte(x), byte(x>>8), byte(x>>16), byte(x>>24)
		}
		return
	}
	for i := range n {
		for k := range es {
			out[k*n+i] = a[i*es+k] ^ b[i*es+k]
		}
	}
}

// unXORPlanes inverts xorPlanes: given b and the planes of a ^ b, it writes a to out.
func unXORPlanes(planes, b []byte, es int, out []byte) {
	n := len(b) / es
	for i := range n {
		for k := range es {
			out[i*es+k] = planes[k*n+i] ^ b[i*es+k]
		}
	}
}

// sidecarRecords returns the in-place undo records of model (nil when there is no sidecar). It
// reads the sidecar's header only.
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
// byte (in the kernel where it can); the header gains MetaPatch (the patch history) and MetaUndo
// (what Unpatch needs to give back model exactly). Any mismatch or non-finite result is an error
// and leaves no output.
//
// A model ending in .index.json is a sharded checkpoint: out must then be an index in another
// folder. Each shard holding some of the signatures' tensors is patched as a single file (its own
// MetaPatch and MetaUndo, recording the sharded patch as a SetPatch), the others and the index
// are copied byte for byte. The files are staged beside out and moved into place together (see
// shardjournal.go): a failure leaves no output, a kill one that the next Recover of out removes
// or completes.
func Patch(ctx context.Context, model, out string, sigs []Applied, opts PatchOptions) (*PatchReport, error) {
	if isIndex(model) {
		return patchSharded(ctx, model, out, sigs, opts)
	}
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
	var s scratch
	defer s.release()
	p, err := makePlan(ctx, model, sigs, opts.BNStats, &s)
	if err != nil {
		return nil, err
	}
	p.report.Out = out
	p.report.Command = opts.Command
	p.report.ID = p.planID(0)
	p.set = opts.set
	rec := undoRecord{Format: UndoFormat, Version: UndoVersion, ID: p.report.ID, Header: deflate(p.header, nil),
		DataBytes: p.size - p.dataStart, Tensors: make([]undoTensor, len(p.touched))}
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
	hdrLen, err := p.write(ctx, out, meta, &rec, atomicfile.Options{Force: opts.Force, NoSync: opts.NoSync}, &s)
	if err != nil {
		return nil, err
	}
	if err := verifyTensors(out, hdrLen, p.touched, false); err != nil {
		os.Remove(out)
		return nil, err
	}
	if err := removeStale(out); err != nil {
		return nil, err
	}
	return p.report, nil
}

// write writes the patched model to out: the model's data with the touched tensors' new bytes,
// under a header of meta and rec (whose XOR fields it computes), and returns the header's length.
func (p *plan) write(ctx context.Context, out string, meta map[string]string, rec *undoRecord, opts atomicfile.Options, s *scratch) (int64, error) {
	align := dataAlign(rec.DataBytes)
	if storeUndo(p) {
		if n, ok, err := p.writeStored(ctx, out, meta, rec, align, opts, s); ok || err != nil {
			return n, err
		}
	}
	if err := undoAll(ctx, p.touched, rec.Tensors, s); err != nil {
		return 0, err
	}
	hdr, undoBytes, err := undoHeader(p.infos, meta, rec, p.dataStart, align, s)
	if err != nil {
		return 0, fmt.Errorf("signature: %w", err)
	}
	p.report.UndoBytes = undoBytes
	if err := p.checkHeader(out, int64(len(hdr))-8, undoBytes); err != nil {
		return 0, err
	}
	if err := writeModel(ctx, out, opts, hdr, p.path, p.dataStart, rec.DataBytes, p.touched, false); err != nil {
		return 0, err
	}
	return int64(len(hdr)), nil
}

// writeStored is write for a patch storeUndo chooses: the record's length, and so the header's,
// is known before its bytes, so the model is copied while they are computed. It reports false,
// having written nothing, where the header cannot be laid out ahead (see layoutHeader).
func (p *plan) writeStored(ctx context.Context, out string, meta map[string]string, rec *undoRecord, align int64, opts atomicfile.Options, s *scratch) (int64, bool, error) {
	for i, t := range p.touched {
		rec.Tensors[i] = undoTensor{Name: t.info.Name, Offset: t.rel, Size: t.info.Size, ElemSize: t.info.DType.Size(),
			Before: t.oldSum, After: t.newSum, XOR: s.alloc(storedLen(t.info.Size))}
	}
	l, ok, err := layoutHeader(p.infos, meta, rec, p.dataStart, align)
	if err != nil || !ok {
		return 0, false, err
	}
	p.report.UndoBytes = l.size
	if err := p.checkHeader(out, l.n, l.size); err != nil {
		return 0, false, err
	}
	m, err := startModel(ctx, out, opts, l.Len(), p.path, p.dataStart, rec.DataBytes, p.touched)
	if err != nil {
		return 0, false, err
	}
	defer m.abort()
	if crashAt("copying") {
		return 0, false, errCrash
	}
	if err := storeAll(ctx, p.touched, rec.Tensors); err != nil {
		return 0, false, err
	}
	hdr, err := l.fill(rec, s)
	if err != nil {
		return 0, false, err
	}
	return l.Len(), true, m.finish(hdr, false)
}

// checkHeader refuses a header of n bytes (after its length) over what readers accept.
func (p *plan) checkHeader(out string, n, undoBytes int64) error {
	if n <= maxHeader {
		return nil
	}
	return fmt.Errorf("signature: %w: the undo record (%s) would make the header of %s %s, over the %s that safetensors readers accept; patch in place (--in-place keeps the originals in %s), or apply a quantized signature, whose record holds its codes",
		ErrHeaderTooLarge, Bytes(undoBytes), out, Bytes(n), Bytes(maxHeader), undoPath(p.path))
}

// storeUndoShare bounds the share of a model that storeUndo lets a patch touch.
const storeUndoShare = 64

// storeUndo reports whether the undo record of p should store the XOR of each touched tensor with
// its patched bytes as it is (store) rather than compressed. It does for a patch of at most a
// 64th of a model whose every tensor takes that XOR (unquantized signatures: their terms would
// cost more than the XOR, see undoOf). Compression saves a fifth to a third of those bytes, under
// 0.6 % of the model then; storing them lets the header's length be known at once, so that the
// model is copied while the record is computed, which hides its cost behind the copy.
func storeUndo(p *plan) bool {
	var touched int64
	for _, t := range p.touched {
		touched += t.info.Size
		cost := 0
		for k, sg := range t.sigs {
			cost += termOf(t.alphas[k], sg).size()
		}
		if int64(cost) < t.info.Size/4 {
			return false
		}
	}
	return touched > 0 && touched*storeUndoShare <= p.size-p.dataStart
}

// storeAll writes into undo[i].XOR, which holds storedLen bytes, the XOR of touched[i]'s original
// and patched bytes as stored blocks, on all cores.
func storeAll(ctx context.Context, touched []*touch, undo []undoTensor) error {
	return each(ctx, len(touched), func(i int) int64 { return touched[i].info.Size }, func(i int) error {
		t := touched[i]
		planes, free := mem.Mapped(int(t.info.Size))
		defer free()
		xorPlanes(t.old, t.new, t.info.DType.Size(), planes)
		undo[i].XOR = store(undo[i].XOR, planes)
		return nil
	})
}

// undoAll fills undo[i] with the undo entry of touched[i], on all cores.
func undoAll(ctx context.Context, touched []*touch, undo []undoTensor, s *scratch) error {
	return each(ctx, len(touched), func(i int) int64 { return touched[i].info.Size }, func(i int) error {
		undo[i] = undoOf(touched[i], s)
		return nil
	})
}

// undoHeader returns the header of a patched model: EncodeHeader of infos and meta plus MetaUndo,
// the JSON of rec, padded (see pagePad) so that the data starts at the offset of like modulo
// align; and the length of the JSON of rec.
//
// The record is about as large as the touched tensors (base64 of their compressed XOR data or of
// the signature terms), and json.Marshal and EncodeHeader would each copy it several times over.
// So the record is marshalled with a short marker in place of each large byte field, the header
// is encoded with a marker in place of the record, and the header is then assembled once, with
// the large fields base64-encoded straight into it. The bytes are those of the plain way
// (undoHeaderPlain), which it falls back to when a marker is not unique or the record holds
// characters that EncodeHeader would escape differently (TestUndoHeader).
func undoHeader(infos []safetensors.Info, meta map[string]string, rec *undoRecord, like, align int64, s *scratch) ([]byte, int64, error) {
	l, ok, err := layoutHeader(infos, meta, rec, like, align)
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return undoHeaderPlain(infos, meta, rec, like, align)
	}
	hdr, err := l.fill(rec, s)
	return hdr, l.size, err
}

// headerLayout is a patched model's header laid out before the large byte fields of its record
// are filled in: only their lengths count, so it can be laid out while they are computed.
type headerLayout struct {
	body []byte // EncodeHeader's JSON with a placeholder for the record, spaces trimmed
	i    int    // where the placeholder starts in body
	skel []byte // the record's JSON with a marker for each large field
	at   []int  // where each marker's base64 starts in skel
	lens []int  // the large fields' lengths
	n    int64  // the header's bytes after the 8-byte length, padded
	size int64  // the record's JSON length
}

// Where the record goes in the header while it is laid out.
const (
	recordPlaceholder     = "\x00rws.undo record\x00"
	recordPlaceholderJSON = `"\u0000rws.undo record\u0000"`
)

// markerOf is the stand-in for the record's large field i.
func markerOf(i int) []byte {
	return []byte{0xfb, 0xef, 0xbe, 'r', 'w', 's', byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i), 0xfb, 0xef}
}

// withMarkers returns rec with markers in place of its large byte fields, and those fields in
// marker order. Every XOR field counts as large, whatever its length, so that a layout never
// holds XOR bytes that are still to be computed.
func withMarkers(rec *undoRecord) (undoRecord, [][]byte) {
	const minField = 4096 // smaller fields are marshalled as they are
	var big [][]byte
	marker := func(b []byte, least int) []byte {
		if len(b) < least {
			return b
		}
		big = append(big, b)
		return markerOf(len(big) - 1)
	}
	shadow := *rec
	shadow.Header = marker(rec.Header, minField)
	shadow.Tensors = make([]undoTensor, len(rec.Tensors))
	for i, ut := range rec.Tensors {
		ut.XOR = marker(ut.XOR, 1) // an empty one is left out of the JSON
		ut.Terms = append([]undoTerm(nil), ut.Terms...)
		for k := range ut.Terms {
			ut.Terms[k].Codes = marker(ut.Terms[k].Codes, minField)
			ut.Terms[k].Raw = marker(ut.Terms[k].Raw, minField)
		}
		shadow.Tensors[i] = ut
	}
	return shadow, big
}

// layoutHeader lays out the header undoHeader makes, reading only the lengths of rec's large
// fields. It reports false where undoHeader must take the plain way.
func layoutHeader(infos []safetensors.Info, meta map[string]string, rec *undoRecord, like, align int64) (*headerLayout, bool, error) {
	shadow, big := withMarkers(rec)
	skel, err := json.Marshal(&shadow)
	if err != nil {
		return nil, false, err
	}
	l := &headerLayout{skel: skel, at: make([]int, len(big)), lens: make([]int, len(big)), size: int64(len(skel))}
	// Where each marker's base64 lies in the skeleton, and the record's final length.
	for i, b := range big {
		tok := []byte(`"` + base64.StdEncoding.EncodeToString(markerOf(i)) + `"`)
		l.at[i] = bytes.Index(skel, tok)
		if l.at[i] < 0 || bytes.Count(skel, tok) != 1 || (i > 0 && l.at[i] < l.at[i-1]) {
			return nil, false, nil
		}
		l.at[i]++ // past the quote
		l.lens[i] = len(b)
		l.size += int64(base64.StdEncoding.EncodedLen(len(b)) - (len(tok) - 2))
	}
	// EncodeHeader escapes only '"' and '\' in what json.Marshal writes, as long as it is ASCII
	// without control characters.
	escaped := l.size
	for _, c := range skel {
		if c < 0x20 || c >= 0x80 {
			return nil, false, nil
		}
		if c == '"' || c == '\\' {
			escaped++
		}
	}
	m := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m[MetaUndo] = recordPlaceholder
	h0, err := safetensors.EncodeHeader(infos, m)
	if err != nil {
		return nil, false, err
	}
	l.body = bytes.TrimRight(h0[8:], " ")
	ph := []byte(recordPlaceholderJSON)
	l.i = bytes.Index(l.body, ph)
	if l.i < 0 || bytes.Count(l.body, ph) != 1 {
		return nil, false, nil
	}
	n := int64(len(l.body)-len(ph)) + 2 + escaped
	n = (n + 7) / 8 * 8
	l.n = n + pagePad(8+n, like, align)
	return l, true, nil
}

// Len is the length of the header, its 8-byte length included.
func (l *headerLayout) Len() int64 { return 8 + l.n }

// fill assembles the header with rec's large fields, which must have the lengths they had when
// it was laid out.
func (l *headerLayout) fill(rec *undoRecord, s *scratch) ([]byte, error) {
	_, big := withMarkers(rec)
	if len(big) != len(l.lens) {
		return nil, fmt.Errorf("signature: undo record has %d large fields where %d were laid out", len(big), len(l.lens))
	}
	for i, b := range big {
		if len(b) != l.lens[i] {
			return nil, fmt.Errorf("signature: undo record field %d has %d bytes where %d were laid out", i, len(b), l.lens[i])
		}
	}
	hdr := s.alloc(l.Len())
	binary.LittleEndian.PutUint64(hdr, uint64(l.n))
	w := 8 + copy(hdr[8:], l.body[:l.i+1]) // through the opening quote
	esc := func(b []byte) {
		for _, c := range b {
			if c == '"' || c == '\\' {
				hdr[w] = '\\'
				w++
			}
			hdr[w] = c
			w++
		}
	}
	prev := 0
	for k, b := range big {
		esc(l.skel[prev:l.at[k]])
		encodeBase64(hdr[w:], b)
		w += base64.StdEncoding.EncodedLen(len(b))
		prev = l.at[k] + base64.StdEncoding.EncodedLen(len(markerOf(k)))
	}
	esc(l.skel[prev:])
	w += copy(hdr[w:], l.body[l.i+len(recordPlaceholderJSON)-1:]) // from the closing quote
	for ; w < len(hdr); w++ {
		hdr[w] = ' '
	}
	return hdr, nil
}

// encodeBase64 is base64.StdEncoding.Encode, on all cores for large src: pieces of a multiple of
// 3 bytes encode independently.
func encodeBase64(dst, src []byte) {
	const piece = 3 << 18 // 768 KiB
	if len(src) < 2*piece {
		base64.StdEncoding.Encode(dst, src)
		return
	}
	each(context.Background(), (len(src)+piece-1)/piece, nil, func(i int) error {
		lo, hi := i*piece, min(len(src), (i+1)*piece)
		at, end := lo/3*4, lo/3*4+base64.StdEncoding.EncodedLen(hi-lo)
		base64.StdEncoding.Encode(dst[at:end:end], src[lo:hi])
		return nil
	})
}

// undoHeaderPlain is undoHeader the plain way.
func undoHeaderPlain(infos []safetensors.Info, meta map[string]string, rec *undoRecord, like, align int64) ([]byte, int64, error) {
	m := make(map[string]string, len(meta)+1)
	for k, v := range meta {
		m[k] = v
	}
	m[MetaUndo] = marshal(rec)
	hdr, err := safetensors.EncodeHeader(infos, m)
	if err != nil {
		return nil, 0, err
	}
	if pad := pagePad(int64(len(hdr)), like, align); pad > 0 {
		hdr = append(hdr, bytes.Repeat([]byte{' '}, int(pad))...)
		binary.LittleEndian.PutUint64(hdr, uint64(len(hdr)-8))
	}
	return hdr, int64(len(m[MetaUndo])), nil
}

// The alignments pagePad keeps: the page size of x86-64 and of most arm64 systems, and the size
// of their huge pages, which is also the largest folio Linux caches file data in (constants, so
// that the output does not depend on the machine).
const (
	alignPage = 4096
	alignHuge = 2 << 20
)

// hugeAlignFrom is the data size from which patched models keep the huge-page alignment: their
// header then grows by under 2 MiB, under 1 % of the data.
const hugeAlignFrom = 256 << 20

// dataAlign is the alignment pagePad keeps for a data section of n bytes.
func dataAlign(n int64) int64 {
	if n >= hugeAlignFrom {
		return alignHuge
	}
	return alignPage
}

// pagePad returns how many spaces to append to a header of n bytes (a multiple of 8, as
// EncodeHeader writes them) so that the data after it starts at the same offset modulo align as
// the data of a file whose header takes like bytes: the kernel then copies the data between the
// two files in whole pages, about a third cheaper than straddling pages, and with huge-page
// alignment in whole folios, 12 % cheaper again for a 2 GiB model. Trailing spaces are allowed by
// the format. It returns 0 when that would break the 8-byte alignment of the data.
func pagePad(n, like, align int64) int64 {
	pad := ((like-n)%align + align) % align
	if pad%8 != 0 {
		return 0
	}
	return pad
}

// verifyBufSize is the buffer verifyTensors reads back through: small, because fresh memory costs
// a page fault per 4 KiB (see mem.Bytes).
const verifyBufSize = 256 << 10

// verifyTensors reads back the touched tensors of a file written by writeModel with a header of
// hdrLen bytes and checks that they hold the bytes written.
func verifyTensors(path string, hdrLen int64, touched []*touch, restore bool) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("signature: reading back %s: %w", path, err)
	}
	defer f.Close()
	buf := make([]byte, verifyBufSize)
	for _, t := range touched {
		want := t.new
		if restore {
			want = t.old
		}
		for off := 0; off < len(want); off += len(buf) {
			got := buf[:min(len(buf), len(want)-off)]
			if _, err := f.ReadAt(got, hdrLen+t.rel+int64(off)); err != nil {
				return fmt.Errorf("signature: reading back %s: %w", path, err)
			}
			if !bytes.Equal(got, want[off:off+len(got)]) {
				return fmt.Errorf("signature: reading back %s: tensor %q does not hold the bytes written", path, t.info.Name)
			}
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
	// Shards lists, for a sharded checkpoint, the shard files unpatched (relative to the index's
	// folder); the others are copied byte for byte.
	Shards []string `json:"shards,omitempty"`
}

// UnpatchOptions controls Unpatch and UnpatchInPlace.
type UnpatchOptions struct {
	// Force replaces an existing output.
	Force bool
	// NoSync skips the fsyncs (see PatchOptions).
	NoSync bool
}

// Unpatch writes out as the model was before its last patch: every tensor byte for byte, and its
// original metadata (the original file, byte for byte, for a patch made by Patch). The last patch
// is the newest in-place one (see PatchInPlace) if any, else the out-of-place one in the header.
//
// A patched ending in .index.json is a sharded checkpoint: its newest sharded patch (in place or
// out of place, as its shards record it) is removed from every shard it changed, the other shards
// (with their undo sidecars) and the index are copied, into out's folder (another than
// patched's), as Patch writes them.
func Unpatch(ctx context.Context, patched, out string, opts UnpatchOptions) (*UnpatchReport, error) {
	if isIndex(patched) {
		return unpatchSharded(ctx, patched, out, opts)
	}
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
	// The record is read where it lies in the header's memory (Unmarshal does not write to it).
	if err := json.Unmarshal(unsafe.Slice(unsafe.StringData(raw), len(raw)), &rec); err != nil {
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
	var s scratch
	defer s.release()
	var touched []*touch
	rep := &UnpatchReport{ID: rec.ID, Model: patched, Out: out}
	var cur int64
	for _, ut := range rec.Tensors {
		in, ok := r.Info(ut.Name)
		if !ok || in.Offset-dataStart != ut.Offset || in.Size != ut.Size || ut.ElemSize != in.DType.Size() || ut.Offset < cur {
			return nil, fmt.Errorf("signature: %s: %w: tensor %q is not where the patch wrote it", patched, ErrChanged, ut.Name)
		}
		cur = ut.Offset + ut.Size
		touched = append(touched, &touch{info: in, rel: ut.Offset})
		rep.Tensors = append(rep.Tensors, ut.Name)
	}
	// The model is copied while the originals are rebuilt and checked.
	m, err := startModel(ctx, out, atomicfile.Options{Force: opts.Force, NoSync: opts.NoSync}, int64(len(orig)), patched, dataStart, rec.DataBytes, touched)
	if err != nil {
		return nil, err
	}
	defer m.abort()
	for i, ut := range rec.Tensors {
		t := touched[i]
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t.new = s.alloc(ut.Size)
		if err := r.ReadRawInto(ut.Name, t.new); err != nil {
			return nil, err
		}
		if hexSHA256(t.new) != ut.After {
			return nil, fmt.Errorf("signature: %s: %w: tensor %q no longer holds the patched values, so the original cannot be restored exactly", patched, ErrChanged, ut.Name)
		}
		if t.old, err = restoreTensor(t.info, ut, t.new, &s); err != nil {
			return nil, fmt.Errorf("signature: %s: undo data of tensor %q: %v", patched, ut.Name, err)
		}
		if hexSHA256(t.old) != ut.Before {
			return nil, fmt.Errorf("signature: %s: undo data of tensor %q does not restore the recorded original (damaged record)", patched, ut.Name)
		}
	}
	if err := m.finish(orig, true); err != nil {
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

// restoreTensor returns the original bytes (in memory from s) of the tensor in, which holds now,
// from its undo entry ut.
func restoreTensor(in safetensors.Info, ut undoTensor, now []byte, s *scratch) ([]byte, error) {
	// The planes and the prediction are freed at once (see undoOf).
	planes, free := mem.Mapped(int(ut.Size))
	defer free()
	if err := inflate(ut.XOR, planes); err != nil {
		return nil, err
	}
	pred := now
	if len(ut.Terms) > 0 {
		alphas := make([]float64, len(ut.Terms))
		vals := make([][]float32, len(ut.Terms))
		for k, term := range ut.Terms {
			alphas[k] = term.Alpha
			var err error
			if vals[k], err = term.values(in.Elements()); err != nil {
				return nil, err
			}
		}
		var freePred func()
		pred, freePred = mem.Mapped(int(ut.Size))
		defer freePred()
		predictOriginal(in.DType, now, alphas, vals, pred)
	}
	old := s.alloc(ut.Size)
	unXORPlanes(planes, pred, ut.ElemSize, old)
	return old, nil
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
// bytes, or with predictOriginal plus the terms, whichever takes fewer bytes. Its byte fields
// live in s. When the terms are small (quantized signatures), the prediction is tried first and
// kept without trying the other when it takes under an eighth of the tensor: the plain XOR holds
// the changed low mantissa bytes of every value and is never that small in practice.
func undoOf(t *touch, s *scratch) undoTensor {
	es := t.info.DType.Size()
	size := t.info.Size
	ut := undoTensor{Name: t.info.Name, Offset: t.rel, Size: size, ElemSize: es, Before: t.oldSum, After: t.newSum}
	vals := make([][]float32, len(t.sigs))
	terms := make([]undoTerm, len(t.sigs))
	cost := 0
	for k, sg := range t.sigs {
		v, err := sg.Values()
		if err != nil {
			cost = math.MaxInt // cannot happen: makePlan decoded them
			break
		}
		vals[k] = v
		terms[k] = termOf(t.alphas[k], sg)
		cost += terms[k].size()
	}
	// The planes and the prediction are freed at once: a large patch must not hold several
	// copies of every touched tensor at the same time.
	planes, free := mem.Mapped(int(size))
	defer free()
	predicted := func() []byte {
		pred, freePred := mem.Mapped(int(size))
		defer freePred()
		predictOriginal(t.info.DType, t.new, t.alphas, vals, pred)
		xorPlanes(t.old, pred, es, planes)
		return deflate(planes, s.alloc(deflateBound(size)))
	}
	var withTerms []byte
	if int64(cost) < size/4 {
		withTerms = predicted()
		if int64(len(withTerms)+cost) <= size/8 {
			ut.XOR, ut.Terms = withTerms, terms
			return ut
		}
	}
	xorPlanes(t.old, t.new, es, planes)
	ut.XOR = deflate(planes, s.alloc(deflateBound(size)))
	if withTerms == nil && cost < len(ut.XOR) {
		withTerms = predicted()
	}
	if withTerms != nil && len(withTerms)+cost < len(ut.XOR) {
		ut.XOR, ut.Terms = withTerms, terms
	}
	return ut
}
