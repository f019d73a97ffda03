package safetensors

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/tensor"
)

// Tensor is a named tensor held in memory, for WriteFile.
type Tensor struct {
	Name  string
	DType tensor.DType
	Shape []int64
	Data  []byte // raw little-endian elements
}

// Info returns the description of t (without offsets).
func (t Tensor) Info() Info {
	return Info{Name: t.Name, DType: t.DType, Shape: t.Shape, Size: int64(len(t.Data))}
}

// WriteOptions controls writing.
type WriteOptions struct {
	// Force replaces an existing file.
	Force bool
	// NoSync skips the fsyncs (see atomicfile.Options).
	NoSync bool
}

// Writer streams a safetensors file tensor by tensor. The header, built from the declared
// tensors, is written first; tensors must then be written in the declared order. Nothing is
// visible at the target path until Commit; Abort (or a failed Commit) leaves nothing behind.
type Writer struct {
	f     *atomicfile.File
	infos []Info
	next  int
	left  int64 // bytes still expected for infos[next]
	err   error
}

// Create starts a file at path holding the declared tensors (in that data order) and metadata.
func Create(path string, infos []Info, meta map[string]string, opts WriteOptions) (*Writer, error) {
	hdr, err := EncodeHeader(infos, meta)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	f, err := atomicfile.Create(path, atomicfile.Options{Force: opts.Force, NoSync: opts.NoSync})
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(hdr); err != nil {
		f.Abort()
		return nil, err
	}
	w := &Writer{f: f, infos: infos}
	if len(infos) > 0 {
		w.left = infos[0].Size
	}
	return w, nil
}

// EncodeHeader returns the 8-byte length and the JSON header for tensors stored in the given
// order, padded with spaces to a multiple of 8 bytes so that the data area is aligned. Keys are
// written in data order, after __metadata__; the output is deterministic.
func EncodeHeader(infos []Info, meta map[string]string) ([]byte, error) {
	var b bytes.Buffer
	b.WriteString("{")
	first := true
	if len(meta) > 0 {
		keys := make([]string, 0, len(meta))
		for k := range meta {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString(`"__metadata__":{`)
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(&b, k)
			b.WriteByte(':')
			writeJSONString(&b, meta[k])
		}
		b.WriteString("}")
		first = false
	}
	seen := map[string]bool{}
	var off int64
	for _, in := range infos {
		if in.Name == "" || strings.IndexByte(in.Name, 0) >= 0 || in.Name == metadataKey {
			return nil, fmt.Errorf("bad tensor name %q", in.Name)
		}
		if seen[in.Name] {
			return nil, fmt.Errorf("tensor %q declared twice", in.Name)
		}
		seen[in.Name] = true
		if !in.DType.Valid() {
			return nil, fmt.Errorf("tensor %q: unknown dtype %q", in.Name, in.DType)
		}
		n := tensor.Elements(in.Shape)
		if n < 0 || n*int64(in.DType.Size()) != in.Size {
			return nil, fmt.Errorf("tensor %q: %s %v needs %d bytes, got %d", in.Name, in.DType, in.Shape,
				n*int64(in.DType.Size()), in.Size)
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		writeJSONString(&b, in.Name)
		fmt.Fprintf(&b, `:{"dtype":"%s","shape":[`, in.DType)
		for i, s := range in.Shape {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, "%d", s)
		}
		fmt.Fprintf(&b, `],"data_offsets":[%d,%d]}`, off, off+in.Size)
		off += in.Size
	}
	b.WriteString("}")
	for b.Len()%8 != 0 {
		b.WriteByte(' ')
	}
	out := make([]byte, 8, 8+b.Len())
	binary.LittleEndian.PutUint64(out, uint64(b.Len()))
	return append(out, b.Bytes()...), nil
}

// writeJSONString writes s as a JSON string without HTML escaping, so names round-trip as written.
func writeJSONString(b *bytes.Buffer, s string) {
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	enc.Encode(s)
	b.Truncate(b.Len() - 1) // Encode appends a newline
}

// Write appends raw bytes to the current tensor; a tensor may be written in several calls.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	done := 0
	for len(p) > 0 {
		w.skipEmpty("")
		if w.next >= len(w.infos) {
			w.err = fmt.Errorf("safetensors: %d bytes written past the last tensor", len(p))
			return done, w.err
		}
		n := min(int64(len(p)), w.left)
		m, err := w.f.Write(p[:n])
		done += m
		if err != nil {
			w.err = err
			return done, err
		}
		w.left -= n
		p = p[n:]
		if w.left == 0 {
			w.step()
		}
	}
	return done, nil
}

// step moves to the next declared tensor.
func (w *Writer) step() {
	w.next++
	if w.next < len(w.infos) {
		w.left = w.infos[w.next].Size
	}
}

// skipEmpty passes over zero-byte tensors (which need no data) other than the one named.
func (w *Writer) skipEmpty(name string) {
	for w.next < len(w.infos) && w.infos[w.next].Size == 0 && w.infos[w.next].Name != name {
		w.step()
	}
}

// WriteTensor writes the whole data of the next declared tensor, which must be name.
func (w *Writer) WriteTensor(name string, data []byte) error {
	in, err := w.current(name)
	if err != nil {
		return err
	}
	if int64(len(data)) != in.Size {
		return fmt.Errorf("safetensors: tensor %q: %d bytes given, %d declared", name, len(data), in.Size)
	}
	if in.Size == 0 {
		w.step()
		return nil
	}
	_, err = w.Write(data)
	return err
}

// CopyTensor copies the next declared tensor, which must be name, from r.
func (w *Writer) CopyTensor(name string, r io.Reader) error {
	in, err := w.current(name)
	if err != nil {
		return err
	}
	if in.Size == 0 {
		w.step()
		return nil
	}
	n, err := io.CopyN(w, r, in.Size)
	if err != nil {
		return fmt.Errorf("tensor %q: copied %d of %d bytes: %w", name, n, in.Size, err)
	}
	return nil
}

func (w *Writer) current(name string) (Info, error) {
	if w.err != nil {
		return Info{}, w.err
	}
	w.skipEmpty(name)
	if w.next >= len(w.infos) {
		return Info{}, fmt.Errorf("safetensors: tensor %q written after the last declared tensor", name)
	}
	in := w.infos[w.next]
	if in.Name != name || w.left != in.Size {
		return Info{}, fmt.Errorf("safetensors: tensor %q written out of order (expected %q)", name, in.Name)
	}
	return in, nil
}

// Commit checks that every declared byte was written, then makes the file visible atomically.
func (w *Writer) Commit() error {
	if w.err != nil {
		w.f.Abort()
		return w.err
	}
	w.skipEmpty("")
	if w.next < len(w.infos) {
		w.f.Abort()
		return fmt.Errorf("safetensors: tensor %q was not written", w.infos[w.next].Name)
	}
	return w.f.Commit()
}

// Abort discards the file. It is a no-op after Commit.
func (w *Writer) Abort() { w.f.Abort() }

// WriteFile writes tensors (in the given order) and metadata to path atomically.
func WriteFile(path string, ts []Tensor, meta map[string]string, opts WriteOptions) error {
	infos := make([]Info, len(ts))
	for i, t := range ts {
		infos[i] = t.Info()
	}
	w, err := Create(path, infos, meta, opts)
	if err != nil {
		return err
	}
	defer w.Abort()
	for _, t := range ts {
		if err := w.WriteTensor(t.Name, t.Data); err != nil {
			return err
		}
	}
	return w.Commit()
}
