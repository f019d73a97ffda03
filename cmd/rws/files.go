package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/rws-project/rws/signature"
)

// checkOutput refuses an output path that is one of the inputs (same file on disk), and an
// existing output without --force, before any work is done.
func checkOutput(out string, force bool, inputs ...string) error {
	if out == "" {
		return usagef("no output given (-o FILE)")
	}
	st, err := os.Stat(out)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	for _, in := range inputs {
		if ist, err := os.Stat(in); err == nil && os.SameFile(st, ist) {
			return withHint(fmt.Errorf("output %q is the input file", out), "write to another file; rws never overwrites its input")
		}
	}
	if st.IsDir() {
		return fmt.Errorf("output %q is a directory", out)
	}
	if !force {
		return withHint(fmt.Errorf("output %q exists", out), "use --force to replace it, or choose another -o")
	}
	return nil
}

// checkShardedArgs refuses, for a sharded checkpoint (an index MODEL), an output that is not an
// index.
func checkShardedArgs(cmd, model, out string) error {
	if !strings.HasSuffix(model, ".index.json") {
		return nil
	}
	if out != "" && !strings.HasSuffix(out, ".index.json") {
		return usagef("%s: %s is a sharded checkpoint, so -o must name its output index (OUTDIR/%s), not %q", cmd, model, filepath.Base(model), out)
	}
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// recoverOutput finishes an interrupted write of the sharded output out (an index), so that the
// output is checked whole or absent. It says on stderr what it did.
func recoverOutput(a *app, out string) error {
	if !strings.HasSuffix(out, ".index.json") {
		return nil
	}
	did, err := signature.RecoverReport(out)
	if err != nil {
		return err
	}
	if did != "" {
		a.logf("rws: %s: %s\n", out, did)
	}
	return nil
}

// recoverModel finishes or rolls back an in-place patch of path that a crash interrupted (its
// journal says which), and for a sharded checkpoint completes or removes an interrupted output,
// so that every command reads a whole model. It says on stderr what it did.
func recoverModel(a *app, path string) error {
	what := "an interrupted in-place patch"
	if strings.HasSuffix(path, ".index.json") {
		what = "an interrupted operation"
	}
	did, err := signature.RecoverReport(path)
	if err != nil {
		return fmt.Errorf("%s: %s could not be recovered: %w", path, what, err)
	}
	if did != "" {
		a.logf("rws: %s: found %s: %s\n", path, what, did)
	}
	return nil
}
