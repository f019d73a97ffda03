// Package atomicfile writes files so that a reader sees either the old file or the complete new
// one, never a partial write: data goes to a temporary file in the target folder, which is synced,
// renamed over the target and followed by a sync of the folder.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"
)

// live holds the temporary files not yet committed or aborted, so that an interrupt handler can
// remove them (RemoveAll) before the process exits.
var live sync.Map

// RemoveAll deletes every temporary file not yet committed. The CLI calls it when interrupted.
func RemoveAll() {
	live.Range(func(k, _ any) bool {
		os.Remove(k.(string))
		live.Delete(k)
		return true
	})
}

// ErrExists is returned by Create when the target exists and Options.Force is false.
var ErrExists = errors.New("output file exists")

// Options controls Create.
type Options struct {
	// Force allows replacing an existing file.
	Force bool
	// Perm is the permission of the new file; 0 means 0o644.
	Perm os.FileMode
	// NoSync skips the fsyncs of Commit. The file is still replaced atomically, so a killed
	// process leaves the old file or the complete new one, but a power failure or an OS crash
	// soon after may lose the new file's data.
	NoSync bool
}

// File is a file being written atomically. Write to it, then Commit; Abort removes the temporary
// file and is a no-op after Commit, so `defer f.Abort()` is always safe.
type File struct {
	*os.File
	target string
	done   bool
	noSync bool
}

// Create starts writing path. It refuses an existing path unless opts.Force is set, and refuses a
// path that is a directory.
func Create(path string, opts Options) (*File, error) {
	if path == "" {
		return nil, errors.New("empty output path")
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return nil, fmt.Errorf("output %q is a directory", path)
		}
		if !opts.Force {
			return nil, fmt.Errorf("%w: %q (use --force to replace it)", ErrExists, path)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return nil, err
	}
	perm := opts.Perm
	if perm == 0 {
		perm = 0o644
	}
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	live.Store(tmp.Name(), struct{}{})
	return &File{File: tmp, target: path, noSync: opts.NoSync}, nil
}

// Target is the final path the file is committed to.
func (f *File) Target() string { return f.target }

// Commit syncs the data, renames the temporary file over the target and syncs the folder (without
// the syncs with Options.NoSync).
func (f *File) Commit() error {
	if f.done {
		return errors.New("atomicfile: commit after commit or abort")
	}
	f.done = true
	tmp := f.File.Name()
	defer live.Delete(tmp)
	if !f.noSync {
		if err := f.File.Sync(); err != nil {
			f.File.Close()
			os.Remove(tmp)
			return err
		}
	}
	if err := f.File.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, f.target); err != nil {
		os.Remove(tmp)
		return err
	}
	if f.noSync {
		return nil
	}
	return SyncDir(filepath.Dir(f.target))
}

// Abort discards the temporary file. It is a no-op after Commit or a previous Abort.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.File.Close()
	os.Remove(f.File.Name())
	live.Delete(f.File.Name())
}

// SyncDir fsyncs a folder so that a rename inside it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, os.ErrInvalid) {
		return err
	}
	return nil
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte, opts Options) error {
	f, err := Create(path, opts)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	return f.Commit()
}

// Copy writes everything from r to path atomically.
func Copy(path string, r io.Reader, opts Options) error {
	f, err := Create(path, opts)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := io.Copy(f, r); err != nil {
		return err
	}
	return f.Commit()
}
