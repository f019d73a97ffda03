package npy

import (
	"bufio"
	"errors"
	"fmt"

	"github.com/rws-project/rws/internal/atomicfile"
)

// WriteOptions controls Create and WriteFile.
type WriteOptions struct {
	// Force allows replacing an existing file.
	Force bool
}

// Writer streams the data of one array into a new .npy file, atomically: the file appears at
// its path on Commit, complete, or not at all.
type Writer struct {
	f       *atomicfile.File
	bw      *bufio.Writer
	h       Header
	written int64
	err     error
}

// Create starts writing a .npy file with header h at path. Write exactly h.DataSize() bytes of
// little-endian C-order data, then Commit; `defer w.Abort()` removes the file on any error.
func Create(path string, h Header, opts WriteOptions) (*Writer, error) {
	hb, err := h.Marshal()
	if err != nil {
		return nil, err
	}
	f, err := atomicfile.Create(path, atomicfile.Options{Force: opts.Force})
	if err != nil {
		return nil, fmt.Errorf("npy: %w", err)
	}
	w := &Writer{f: f, bw: bufio.NewWriterSize(f, 1<<20), h: h}
	if _, err := w.bw.Write(hb); err != nil {
		f.Abort()
		return nil, fmt.Errorf("npy: %q: %w", path, err)
	}
	return w, nil
}

// Write appends data bytes. Writing more than the header calls for is an error.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if int64(len(p)) > w.h.DataSize()-w.written {
		w.err = fmt.Errorf("npy: %q: writing %d bytes past the %d data bytes of shape %v of %s", w.f.Target(), w.written+int64(len(p))-w.h.DataSize(), w.h.DataSize(), w.h.Shape, w.h.DType)
		return 0, w.err
	}
	n, err := w.bw.Write(p)
	w.written += int64(n)
	if err != nil {
		w.err = fmt.Errorf("npy: %q: %w", w.f.Target(), err)
	}
	return n, w.err
}

// Commit checks that all data was written, then flushes, syncs and renames the file into place.
func (w *Writer) Commit() error {
	if w.err != nil {
		w.f.Abort()
		return w.err
	}
	if w.written != w.h.DataSize() {
		w.f.Abort()
		w.err = fmt.Errorf("npy: %q: only %d of %d data bytes written", w.f.Target(), w.written, w.h.DataSize())
		return w.err
	}
	if err := w.bw.Flush(); err != nil {
		w.f.Abort()
		return fmt.Errorf("npy: %q: %w", w.f.Target(), err)
	}
	if err := w.f.Commit(); err != nil {
		return fmt.Errorf("npy: %q: %w", w.f.Target(), err)
	}
	w.err = errors.New("npy: writer already committed")
	return nil
}

// Path returns the path the file is committed to.
func (w *Writer) Path() string { return w.f.Target() }

// Abort discards the file; it is a no-op after Commit.
func (w *Writer) Abort() { w.f.Abort() }

// WriteFile writes a .npy file holding data with header h at path, atomically.
func WriteFile(path string, h Header, data []byte, opts WriteOptions) error {
	if err := h.validate(); err != nil {
		return err
	}
	if int64(len(data)) != h.DataSize() {
		return fmt.Errorf("npy: %q: %d data bytes do not match shape %v of %s (%d bytes)", path, len(data), h.Shape, h.DType, h.DataSize())
	}
	w, err := Create(path, h, opts)
	if err != nil {
		return err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return err
	}
	return w.Commit()
}
