//go:build !linux

package signature

import "os"

// startWriteback does nothing where sync_file_range is not available.
func startWriteback(f *os.File, off, n int64) {}
