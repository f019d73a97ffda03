//go:build unix

package signature

import (
	"os"
	"syscall"
)

// lockFile takes an exclusive advisory lock on f without waiting; it fails when another process
// holds one. The lock goes with f's closing, or with unlockFile.
func lockFile(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) }

// unlockFile releases lockFile's lock.
func unlockFile(f *os.File) { syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }
