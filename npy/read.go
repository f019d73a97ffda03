package npy

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"os"

	"github.com/rws-project/rws/tensor"
)

// Array is a decoded .npy array: its header and its raw little-endian C-order data.
type Array struct {
	Header
	Data []byte
}

// Reader gives random access to the data of a .npy file without loading all of it, e.g. one
// severity of a 50000×32×32×3 CIFAR-10-C file.
type Reader struct {
	f      *os.File
	path   string
	h      Header
	offset int64 // of the data
}

// Open opens the .npy file at path and validates its header and its size.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	r, err := newReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

func newReader(f *os.File, path string) (*Reader, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	if st.IsDir() {
		return nil, fmt.Errorf("npy: %q is a folder, not a .npy file", path)
	}
	h, off, err := readHeader(f)
	if err != nil {
		return nil, withPath(err, path)
	}
	if err := checkSize(h, int64(off), st.Size()); err != nil {
		return nil, withPath(err, path)
	}
	return &Reader{f: f, path: path, h: h, offset: int64(off)}, nil
}

// withPath sets the path of a *FormatError.
func withPath(err error, path string) error {
	var fe *FormatError
	if errors.As(err, &fe) {
		fe.Path = path
	}
	return err
}

// readHeader reads and parses the header from r.
func readHeader(r io.Reader) (Header, int, error) {
	pre := make([]byte, 12)
	n, err := io.ReadFull(r, pre[:8])
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return Header{}, 0, fmt.Errorf("npy: %w", err)
	}
	version, plen, err := parsePrefix(pre[:n])
	if err != nil {
		return Header{}, 0, err
	}
	if m, err := io.ReadFull(r, pre[8:plen]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Header{}, 0, &FormatError{Offset: int64(8 + m), Err: errors.New("file ends inside the header length field")}
		}
		return Header{}, 0, fmt.Errorf("npy: %w", err)
	}
	hl, err := headerLen(pre, version)
	if err != nil {
		return Header{}, 0, err
	}
	buf := make([]byte, plen+hl)
	copy(buf, pre[:plen])
	if m, err := io.ReadFull(r, buf[plen:]); err != nil {
		if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return Header{}, 0, &FormatError{Offset: int64(plen + m), Err: fmt.Errorf("file ends inside the %d-byte header", hl)}
		}
		return Header{}, 0, fmt.Errorf("npy: %w", err)
	}
	return ParseHeader(buf)
}

// checkSize compares the file size with what the header calls for.
func checkSize(h Header, off, size int64) error {
	want := h.DataSize()
	got := size - off
	switch {
	case got < want:
		return &FormatError{Offset: size, Err: fmt.Errorf("file is truncated: shape %v of %s needs %d data bytes, file has %d", h.Shape, h.DType, want, got)}
	case got > want:
		return &FormatError{Offset: off + want, Err: fmt.Errorf("file has %d extra bytes after the %d data bytes of shape %v of %s", got-want, want, h.Shape, h.DType)}
	}
	return nil
}

// Header returns the header of the file.
func (r *Reader) Header() Header { return r.h }

// Path returns the path the Reader was opened with.
func (r *Reader) Path() string { return r.path }

// RowSize is the number of bytes of one index of the first dimension (the whole array for a 0-d
// array).
func (r *Reader) RowSize() int64 {
	if len(r.h.Shape) == 0 {
		return r.h.DataSize()
	}
	return Header{DType: r.h.DType, Shape: r.h.Shape[1:]}.DataSize()
}

// ReadRows reads n entries of the first dimension starting at start, i.e. a[start:start+n].
func (r *Reader) ReadRows(start, n int64) ([]byte, error) {
	if len(r.h.Shape) == 0 {
		return nil, fmt.Errorf("npy: %q: ReadRows on a 0-d array", r.path)
	}
	if start < 0 || n < 0 || start > r.h.Shape[0] || n > r.h.Shape[0]-start {
		return nil, fmt.Errorf("npy: %q: rows [%d, %d) are outside the first dimension of %d", r.path, start, start+n, r.h.Shape[0])
	}
	rs := r.RowSize()
	return r.ReadData(start*rs, n*rs)
}

// ReadData reads n data bytes starting at data byte off (0 is the first element).
func (r *Reader) ReadData(off, n int64) ([]byte, error) {
	size := r.h.DataSize()
	if off < 0 || n < 0 || off > size || n > size-off {
		return nil, fmt.Errorf("npy: %q: bytes [%d, %d) are outside the %d data bytes", r.path, off, off+n, size)
	}
	if n > math.MaxInt {
		return nil, fmt.Errorf("npy: %q: %d bytes do not fit in memory", r.path, n)
	}
	buf := make([]byte, n)
	if _, err := r.f.ReadAt(buf, r.offset+off); err != nil {
		return nil, fmt.Errorf("npy: %q: %w", r.path, err)
	}
	return buf, nil
}

// ReadAll reads the whole array.
func (r *Reader) ReadAll() (*Array, error) {
	size := r.h.DataSize()
	if size > math.MaxInt {
		return nil, fmt.Errorf("npy: %q: %d bytes do not fit in memory", r.path, size)
	}
	buf := make([]byte, size)
	if _, err := r.f.ReadAt(buf, r.offset); err != nil {
		return nil, fmt.Errorf("npy: %q: %w", r.path, err)
	}
	return &Array{Header: r.h, Data: buf}, nil
}

// Close closes the file.
func (r *Reader) Close() error { return r.f.Close() }

// ReadFile reads the whole .npy file at path.
func ReadFile(path string) (*Array, error) {
	r, err := Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadAll()
}

// Decode parses a complete .npy file held in b. The data of the result aliases b.
func Decode(b []byte) (*Array, error) {
	h, off, err := ParseHeader(b)
	if err != nil {
		return nil, err
	}
	if err := checkSize(h, int64(off), int64(len(b))); err != nil {
		return nil, err
	}
	return &Array{Header: h, Data: b[off:]}, nil
}

// Encode returns the bytes of a .npy file holding a; the length of a.Data must match the header.
func Encode(a *Array) ([]byte, error) {
	hb, err := a.Header.Marshal()
	if err != nil {
		return nil, err
	}
	if int64(len(a.Data)) != a.DataSize() {
		return nil, fmt.Errorf("npy: %d data bytes do not match shape %v of %s (%d bytes)", len(a.Data), a.Shape, a.DType, a.DataSize())
	}
	var buf bytes.Buffer
	buf.Grow(len(hb) + len(a.Data))
	buf.Write(hb)
	buf.Write(a.Data)
	return buf.Bytes(), nil
}

// Ints returns the elements of an integer or BOOL array as ints (labels, indices).
func (a *Array) Ints() ([]int, error) {
	n := a.Elements()
	d := a.Data
	out := make([]int, n)
	switch a.DType {
	case tensor.U8, tensor.Bool:
		for i := range out {
			out[i] = int(d[i])
		}
	case tensor.I8:
		for i := range out {
			out[i] = int(int8(d[i]))
		}
	case tensor.I16:
		for i := range out {
			out[i] = int(int16(binary.LittleEndian.Uint16(d[2*i:])))
		}
	case tensor.I32:
		for i := range out {
			out[i] = int(int32(binary.LittleEndian.Uint32(d[4*i:])))
		}
	case tensor.I64:
		for i := range out {
			out[i] = int(int64(binary.LittleEndian.Uint64(d[8*i:])))
		}
	default:
		return nil, fmt.Errorf("npy: array of %s is not an integer array", a.DType)
	}
	return out, nil
}

// Float32s returns the elements converted to float32 (float64 rounds to nearest).
func (a *Array) Float32s() ([]float32, error) {
	out := make([]float32, a.Elements())
	if err := tensor.DecodeFloat32(a.DType, a.Data, out); err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	return out, nil
}
