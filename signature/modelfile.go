package signature

import (
	"context"
	"fmt"
	"os"

	"github.com/rws-project/rws/internal/atomicfile"
)

// writeChunk is how much a model write copies at a time; the disk writeback of each chunk starts
// as soon as it is written.
const writeChunk = 16 << 20

// writeModel writes path (atomically, as opts say) as hdr followed by the data section of src
// (dataBytes bytes from srcStart) with the touched tensors' ranges replaced by their new bytes, or
// by their old bytes when restore is set.
func writeModel(ctx context.Context, path string, opts atomicfile.Options, hdr []byte, src string, srcStart, dataBytes int64, touched []*touch, restore bool) error {
	m, err := startModel(ctx, path, opts, int64(len(hdr)), src, srcStart, dataBytes, touched)
	if err != nil {
		return err
	}
	defer m.abort()
	return m.finish(hdr, restore)
}

// modelWrite is a model file being written in two halves. startModel copies the untouched data
// of the source, in the kernel where it can, on a goroutine of its own, with the disk writeback
// running alongside unless the options skip syncing; the caller meanwhile computes the header
// (only its length must be known) and the touched tensors' bytes, which finish writes before it
// commits the file.
type modelWrite struct {
	f       *atomicfile.File
	in      *os.File
	hdrLen  int64
	touched []*touch
	copied  chan error // the copy's result, sent once
	copyErr error      // what wait received
	waited  bool
	cancel  context.CancelFunc
	done    bool
}

// wait returns the copy's result once it is done; it may be called more than once.
func (m *modelWrite) wait() error {
	if !m.waited {
		m.copyErr, m.waited = <-m.copied, true
	}
	return m.copyErr
}

// startModel starts writing path as a header of hdrLen bytes followed by the data section of src
// (dataBytes bytes from srcStart), copying every range but the touched tensors'.
func startModel(ctx context.Context, path string, opts atomicfile.Options, hdrLen int64, src string, srcStart, dataBytes int64, touched []*touch) (*modelWrite, error) {
	in, err := os.Open(src)
	if err != nil {
		return nil, err
	}
	f, err := atomicfile.Create(path, opts)
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("signature: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	m := &modelWrite{f: f, in: in, hdrLen: hdrLen, touched: touched, copied: make(chan error, 1), cancel: cancel}
	w := &writeback{}
	if !opts.NoSync {
		w = newWriteback(f.File)
	}
	go func() {
		defer w.stop()
		c := &rangeCopier{dst: f.File, src: in}
		copyRange := func(off, srcOff, n int64) error {
			for done := int64(0); done < n; {
				if err := ctx.Err(); err != nil {
					return err
				}
				k := min(n-done, writeChunk)
				if err := c.copy(off+done, srcOff+done, k); err != nil {
					return fmt.Errorf("signature: %w", err)
				}
				done += k
				w.written(off + done)
			}
			return nil
		}
		var cur int64
		for _, t := range touched {
			if err := copyRange(hdrLen+cur, srcStart+cur, t.rel-cur); err != nil {
				m.copied <- err
				return
			}
			cur = t.rel + t.info.Size
		}
		m.copied <- copyRange(hdrLen+cur, srcStart+cur, dataBytes-cur)
	}()
	return m, nil
}

// finish waits for the copy, writes the touched tensors (their new bytes, or their old ones when
// restore is set) and hdr, which must have the length given to startModel, and commits the file.
func (m *modelWrite) finish(hdr []byte, restore bool) error {
	if int64(len(hdr)) != m.hdrLen {
		return fmt.Errorf("signature: header of %d bytes where %d were laid out", len(hdr), m.hdrLen)
	}
	err := m.wait()
	m.cancel() // the copy is over: release its context
	if err != nil {
		return err
	}
	for _, t := range m.touched {
		data := t.new
		if restore {
			data = t.old
		}
		if _, err := m.f.WriteAt(data, m.hdrLen+t.rel); err != nil {
			return err
		}
	}
	if _, err := m.f.WriteAt(hdr, 0); err != nil {
		return err
	}
	m.done = true
	m.in.Close()
	return m.f.Commit()
}

// abort stops the copy and removes the file, unless finish got to commit it.
func (m *modelWrite) abort() {
	if m.done {
		return
	}
	m.done = true
	m.cancel()
	m.wait()
	m.in.Close()
	m.f.Abort()
}

// writeback starts the disk writeback of a file being written front to back (startWriteback),
// from a goroutine of its own so that the writer does not wait on the disk queue.
type writeback struct {
	f       *os.File
	started int64 // the writeback of bytes before this offset was requested
	ranges  chan [2]int64
	done    chan struct{}
}

func newWriteback(f *os.File) *writeback {
	ranges, done := make(chan [2]int64, 64), make(chan struct{})
	go func() {
		defer close(done)
		for r := range ranges {
			startWriteback(f, r[0], r[1]-r[0])
		}
	}()
	return &writeback{f: f, ranges: ranges, done: done}
}

// written says that the file holds its bytes up to end; their writeback starts once a chunk has
// gathered.
func (w *writeback) written(end int64) {
	if w.ranges != nil && end-w.started >= writeChunk {
		w.ranges <- [2]int64{w.started, end}
		w.started = end
	}
}

// stop waits for the requests made so far; it may be called more than once from the goroutine
// that calls written.
func (w *writeback) stop() {
	if w.ranges != nil {
		close(w.ranges)
		w.ranges = nil
		<-w.done
	}
}
