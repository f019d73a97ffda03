package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/rws-project/rws/internal/nn"
)

// TestTrainResume interrupts rws train during its second epoch, resumes it with --resume, and
// checks that the result is bit for bit the checkpoint of an uninterrupted run.
func TestTrainResume(t *testing.T) {
	dir := t.TempDir()
	opts := func(out string) trainOptions {
		return trainOptions{spec: "mnist", arch: "cnn", epochs: 2, batch: 32, limit: 256, valLimit: 64,
			optimizer: "adam", momentum: 0.9, wd: -1, schedule: "cosine", gamma: 0.1, augment: "auto",
			seed: 3, keepBest: "last", out: filepath.Join(dir, out)}
	}
	quiet := func() *app { return &app{stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}, quiet: true} }
	if err := trainRun(context.Background(), quiet(), opts("full.safetensors")); err != nil {
		t.Fatal(err)
	}

	// Cancel as soon as the first epoch's state is saved.
	o := opts("resumed.safetensors")
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for ctx.Err() == nil {
			if _, err := os.Stat(o.out + ".resume"); err == nil {
				cancel()
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	err := trainRun(ctx, quiet(), o)
	cancel()
	if !errors.Is(err, context.Canceled) || !strings.Contains(hintOf(err), "--resume") {
		t.Fatalf("interrupted run: %v (hint %q), want context.Canceled with a --resume hint", err, hintOf(err))
	}
	// Without --resume or --force the state is not silently discarded.
	if err := trainRun(context.Background(), quiet(), o); err == nil || !strings.Contains(hintOf(err), "--resume") {
		t.Fatalf("rerun without --resume: %v", err)
	}
	o.resume = true
	if err := trainRun(context.Background(), quiet(), o); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(o.out + ".resume"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("state file left after completion: %v", err)
	}
	full, err := nn.LoadCheckpoint(filepath.Join(dir, "full.safetensors"))
	if err != nil {
		t.Fatal(err)
	}
	resumed, err := nn.LoadCheckpoint(o.out)
	if err != nil {
		t.Fatal(err)
	}
	want := full.StateDict()
	for i, tn := range resumed.StateDict() {
		if !slices.Equal(tn.Data, want[i].Data) {
			t.Fatalf("%s of the resumed run differs from the uninterrupted one", tn.Name)
		}
	}
	if meta, _ := resumed.Meta("rws.train"); !strings.Contains(meta, `"resumed":true`) {
		t.Errorf("rws.train metadata does not record the resumption: %s", meta)
	}
}

func hintOf(err error) string {
	var he *hintError
	if errors.As(err, &he) {
		return he.hint
	}
	return ""
}
