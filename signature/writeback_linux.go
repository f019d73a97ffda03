package signature

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to begin writing n bytes of f at off to disk without waiting,
// so the final fsync of a large output has little left to do (the copy and the disk overlap).
func startWriteback(f *os.File, off, n int64) {
	unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}

// kernelCopy copies up to n bytes of src at srcOff to dst at dstOff inside the kernel
// (copy_file_range(2)), without passing them through user memory. It returns the bytes copied,
// which is less than n only at the end of src; errNoKernelCopy, with nothing copied, when the
// kernel cannot copy between these two files (another file system, an old kernel).
func kernelCopy(dst, src *os.File, dstOff, srcOff, n int64) (int64, error) {
	var done int64
	for done < n {
		so, do := srcOff+done, dstOff+done
		k, err := unix.CopyFileRange(int(src.Fd()), &so, int(dst.Fd()), &do, int(min(n-done, 1<<30)), 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			if done == 0 && (errors.Is(err, unix.ENOSYS) || errors.Is(err, unix.EXDEV) || errors.Is(err, unix.EINVAL) ||
				errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.EIO)) {
				return 0, errNoKernelCopy
			}
			return done, &os.PathError{Op: "copy_file_range", Path: dst.Name(), Err: err}
		}
		if k == 0 {
			// End of src, or a file system that copies nothing (some virtual ones): the caller's
			// plain copy tells the two apart.
			if done == 0 {
				return 0, errNoKernelCopy
			}
			break
		}
		done += int64(k)
	}
	return done, nil
}

// dataSync makes the data written to f durable (fdatasync(2)): enough for a file whose size and
// layout did not change, without the journal commit an fsync of its timestamps would cost.
func dataSync(f *os.File) error {
	for {
		err := unix.Fdatasync(int(f.Fd()))
		if !errors.Is(err, unix.EINTR) {
			if err != nil {
				return &os.PathError{Op: "fdatasync", Path: f.Name(), Err: err}
			}
			return nil
		}
	}
}
