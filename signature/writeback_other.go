//go:build !linux

package signature

import "os"

// startWriteback does nothing where sync_file_range is not available.
func startWriteback(f *os.File, off, n int64) {}

// kernelCopy reports errNoKernelCopy: copy_file_range is Linux only, so callers copy through
// user memory.
func kernelCopy(dst, src *os.File, dstOff, srcOff, n int64) (int64, error) {
	return 0, errNoKernelCopy
}

// dataSync makes the data written to f durable.
func dataSync(f *os.File) error { return f.Sync() }
