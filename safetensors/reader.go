package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"
	"unsafe"

	"github.com/rws-project/rws/tensor"
)

// Reader gives lazy access to the tensors of one checkpoint: a single .safetensors file, or a
// sharded checkpoint opened through its *.safetensors.index.json. Only headers are read on Open;
// tensor data is read on demand with pread, one tensor at a time.
type Reader struct {
	path   string
	files  map[string]*os.File
	infos  []Info
	byName map[string]int
	meta   map[string]string
}

// Open opens a .safetensors file or a sharded checkpoint index (a path ending in .index.json) and
// validates every header. It reads no tensor data.
func Open(path string) (*Reader, error) {
	if strings.HasSuffix(path, ".index.json") {
		return openIndex(path)
	}
	r := &Reader{path: path, files: map[string]*os.File{}, byName: map[string]int{}}
	if err := r.addFile(path); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Reader) addFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	r.files[path] = f
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if st.IsDir() {
		return fmt.Errorf("%s is a directory, not a safetensors file", path)
	}
	h, dataStart, err := readHeader(path, f, st.Size())
	if err != nil {
		return err
	}
	if r.meta == nil {
		r.meta = h.meta
	}
	for _, in := range h.infos {
		if _, dup := r.byName[in.Name]; dup {
			return &FormatError{Path: path, Offset: -1, Rule: RuleDuplicateShard,
				Detail: fmt.Sprintf("tensor %q is also in %s", in.Name, r.infos[r.byName[in.Name]].File)}
		}
		in.Offset += dataStart
		in.File = path
		r.byName[in.Name] = len(r.infos)
		r.infos = append(r.infos, in)
	}
	return nil
}

// openIndex opens a Hugging Face sharded checkpoint: {"metadata": {...}, "weight_map": {name: file}}.
func openIndex(path string) (*Reader, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	bad := func(rule, format string, args ...any) error {
		return &FormatError{Path: path, Offset: -1, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(raw) {
		return nil, bad(RuleUTF8, "index is not valid UTF-8")
	}
	var idx struct {
		Metadata  map[string]any    `json:"metadata"`
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(raw, &idx); err != nil {
		return nil, bad(RuleIndex, "%v", err)
	}
	if len(idx.WeightMap) == 0 {
		return nil, bad(RuleIndex, "no weight_map entries")
	}
	shards := map[string]bool{}
	for name, file := range idx.WeightMap {
		if file == "" || filepath.IsAbs(file) || strings.Contains(file, "..") {
			return nil, bad(RuleIndex, "tensor %q maps to shard %q: want a file name beside the index", name, file)
		}
		shards[file] = true
	}
	names := make([]string, 0, len(shards))
	for s := range shards {
		names = append(names, s)
	}
	sort.Strings(names)
	r := &Reader{path: path, files: map[string]*os.File{}, byName: map[string]int{}}
	dir := filepath.Dir(path)
	for _, s := range names {
		if err := r.addFile(filepath.Join(dir, s)); err != nil {
			r.Close()
			return nil, err
		}
	}
	for name, file := range idx.WeightMap {
		i, ok := r.byName[name]
		if !ok {
			r.Close()
			return nil, bad(RuleIndexMismatch, "tensor %q is listed for %s but not found in it", name, file)
		}
		if r.infos[i].File != filepath.Join(dir, file) {
			r.Close()
			return nil, bad(RuleIndexMismatch, "tensor %q is listed for %s but stored in %s", name, file, r.infos[i].File)
		}
	}
	if len(r.infos) != len(idx.WeightMap) {
		for _, in := range r.infos {
			if _, ok := idx.WeightMap[in.Name]; !ok {
				r.Close()
				return nil, bad(RuleIndexMismatch, "tensor %q in %s is not in the weight_map", in.Name, in.File)
			}
		}
	}
	if r.meta == nil {
		r.meta = map[string]string{}
	}
	return r, nil
}

// Path is the path Open was given.
func (r *Reader) Path() string { return r.path }

// Sharded reports whether the checkpoint spans several files.
func (r *Reader) Sharded() bool { return len(r.files) > 1 || strings.HasSuffix(r.path, ".index.json") }

// Tensors lists the tensors in storage order (file, then offset). The slice must not be modified.
func (r *Reader) Tensors() []Info { return r.infos }

// Names lists the tensor names in storage order.
func (r *Reader) Names() []string {
	out := make([]string, len(r.infos))
	for i, in := range r.infos {
		out[i] = in.Name
	}
	return out
}

// Info returns the description of the named tensor.
func (r *Reader) Info(name string) (Info, bool) {
	i, ok := r.byName[name]
	if !ok {
		return Info{}, false
	}
	return r.infos[i], true
}

// Metadata is the file's __metadata__ map (of the first shard, for sharded checkpoints). It must
// not be modified.
func (r *Reader) Metadata() map[string]string { return r.meta }

// ErrNoTensor is returned for a tensor name the checkpoint does not have.
var ErrNoTensor = errors.New("no such tensor")

func (r *Reader) lookup(name string) (Info, error) {
	in, ok := r.Info(name)
	if !ok {
		return Info{}, fmt.Errorf("%s: tensor %q: %w", r.path, name, ErrNoTensor)
	}
	return in, nil
}

// Section returns a reader of the named tensor's raw little-endian bytes.
func (r *Reader) Section(name string) (*io.SectionReader, error) {
	in, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	return io.NewSectionReader(r.files[in.File], in.Offset, in.Size), nil
}

// ReadRaw returns the raw little-endian bytes of the named tensor.
func (r *Reader) ReadRaw(name string) ([]byte, error) {
	in, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, in.Size)
	return buf, r.readAt(in, buf, 0)
}

// ReadRawInto fills dst, which must have exactly the tensor's size, with its raw bytes.
func (r *Reader) ReadRawInto(name string, dst []byte) error {
	in, err := r.lookup(name)
	if err != nil {
		return err
	}
	if int64(len(dst)) != in.Size {
		return fmt.Errorf("%s: tensor %q has %d bytes, buffer has %d", r.path, name, in.Size, len(dst))
	}
	return r.readAt(in, dst, 0)
}

// ReadRawAt fills dst with the named tensor's raw bytes from byte off of the tensor on. It may be
// called from several goroutines at once.
func (r *Reader) ReadRawAt(name string, dst []byte, off int64) error {
	in, err := r.lookup(name)
	if err != nil {
		return err
	}
	if off < 0 || off > in.Size || int64(len(dst)) > in.Size-off {
		return fmt.Errorf("%s: tensor %q has %d bytes, cannot read %d at %d", r.path, name, in.Size, len(dst), off)
	}
	return r.readAt(in, dst, off)
}

// ReadFloat32At fills dst with elements at, at+1, … of the named tensor converted to float32 (see
// tensor.DecodeFloat32), reading through *scratch, which it grows as needed. F32 elements are
// read straight into dst. It may be called from several goroutines at once, each with its own
// dst and scratch.
func (r *Reader) ReadFloat32At(name string, dst []float32, at int64, scratch *[]byte) error {
	in, err := r.lookup(name)
	if err != nil {
		return err
	}
	n := in.Elements()
	if at < 0 || at > n || int64(len(dst)) > n-at {
		return fmt.Errorf("%s: tensor %q has %d elements, cannot read %d at %d", r.path, name, n, len(dst), at)
	}
	es := int64(in.DType.Size())
	if in.DType == tensor.F32 && littleEndian && len(dst) > 0 {
		return r.readAt(in, unsafe.Slice((*byte)(unsafe.Pointer(&dst[0])), 4*len(dst)), 4*at)
	}
	if need := int64(len(dst)) * es; int64(cap(*scratch)) < need {
		*scratch = make([]byte, need)
	}
	raw := (*scratch)[:int64(len(dst))*es]
	if err := r.readAt(in, raw, at*es); err != nil {
		return err
	}
	return tensor.DecodeFloat32(in.DType, raw, dst)
}

// littleEndian is whether float32 values in memory have the file's byte order.
var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

func (r *Reader) readAt(in Info, dst []byte, off int64) error {
	_, err := r.files[in.File].ReadAt(dst, in.Offset+off)
	if err == io.EOF {
		err = &FormatError{Path: in.File, Offset: in.Offset + off, Rule: RuleTruncated,
			Detail: fmt.Sprintf("tensor %q ends past the end of the file (was it changed while open?)", in.Name)}
	}
	return err
}

// ReadFloat32 returns the named tensor converted to float32 (see tensor.DecodeFloat32).
func (r *Reader) ReadFloat32(name string) ([]float32, error) {
	in, err := r.lookup(name)
	if err != nil {
		return nil, err
	}
	raw, err := r.ReadRaw(name)
	if err != nil {
		return nil, err
	}
	out := make([]float32, in.Elements())
	return out, tensor.DecodeFloat32(in.DType, raw, out)
}

// ChunkSize is the number of bytes Stream reads at a time.
const ChunkSize = 4 << 20

// Stream calls fn with consecutive chunks of the named tensor's raw bytes, each a whole number of
// elements and at most ChunkSize bytes, reusing one buffer. Memory stays bounded for any size.
func (r *Reader) Stream(name string, buf []byte, fn func(chunk []byte) error) error {
	in, err := r.lookup(name)
	if err != nil {
		return err
	}
	es := int64(in.DType.Size())
	if int64(cap(buf)) < es {
		buf = make([]byte, ChunkSize)
	}
	step := int64(cap(buf)) / es * es
	for off := int64(0); off < in.Size; off += step {
		n := min(step, in.Size-off)
		chunk := buf[:n]
		if err := r.readAt(in, chunk, off); err != nil {
			return err
		}
		if err := fn(chunk); err != nil {
			return err
		}
	}
	return nil
}

// Close closes every file of the checkpoint.
func (r *Reader) Close() error {
	var first error
	for _, f := range r.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	r.files = nil
	return first
}

// Parse validates data, the whole content of the single-file checkpoint at path (which only names
// it in errors), with the checks of Open, and returns its tensors in storage order, with Offset
// counted from the start of data, and its metadata. It copies nothing but the header: the
// tensors' bytes are data[in.Offset : in.Offset+in.Size].
func Parse(path string, data []byte) ([]Info, map[string]string, error) {
	h, dataStart, err := readHeader(path, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return nil, nil, err
	}
	for i := range h.infos {
		h.infos[i].Offset += dataStart
		h.infos[i].File = path
	}
	return h.infos, h.meta, nil
}
