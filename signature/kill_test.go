package signature

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/rws-project/rws/tensor"
)

// TestKillAnyMoment runs in-place patches and unpatches in a child process, kills it (SIGKILL) at
// random moments, and checks after each kill that Recover leaves the model as it was before or
// after the interrupted operation. Set RWS_LONG_TESTS=1 to run it.
func TestKillAnyMoment(t *testing.T) {
	if os.Getenv("RWS_KILL_CHILD") != "" {
		killChild()
		return
	}
	if os.Getenv("RWS_LONG_TESTS") == "" {
		t.Skip("set RWS_LONG_TESTS=1 to kill in-place patches at random moments")
	}
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	s := mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:4"})
	sig := filepath.Join(dir, "sig.rws")
	writeSig(t, s, sig)
	model := filepath.Join(dir, "model")
	copyFile(t, f.clean, model)
	states := map[string]int{} // content digest → patches applied
	orig, _ := os.ReadFile(model)
	states[hexSHA256(orig)] = 0
	// The states the child moves through: patched once (α=1) and twice.
	ctx := context.Background()
	ref := filepath.Join(dir, "ref")
	copyFile(t, f.clean, ref)
	r, _ := Read(sig)
	for k := 1; k <= 2; k++ {
		if _, err := PatchInPlace(ctx, ref, []Applied{{r, 1}}, PatchOptions{}); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(ref)
		states[hexSHA256(b)] = k
	}
	rng := rand.New(rand.NewPCG(3, 4))
	kills := 0
	for round := range 40 {
		cmd := exec.Command(os.Args[0], "-test.run=TestKillAnyMoment$")
		cmd.Env = append(os.Environ(), "RWS_KILL_CHILD=1", "RWS_KILL_MODEL="+model, "RWS_KILL_SIG="+sig)
		var out bytes.Buffer
		cmd.Stderr = &out
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		// Wait until the child works on the model, then let it run a random while.
		ready := make([]byte, 6)
		if _, err := io.ReadFull(pipe, ready); err != nil {
			t.Fatalf("round %d: child did not start: %v\n%s", round, err, out.String())
		}
		time.Sleep(time.Duration(rng.IntN(1500)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		if err := cmd.Wait(); err == nil {
			t.Fatalf("round %d: child ended on its own:\n%s", round, out.String())
		}
		kills++
		did, err := RecoverReport(model)
		if err != nil {
			t.Fatalf("round %d: recover: %v", round, err)
		}
		b, _ := os.ReadFile(model)
		k, ok := states[hexSHA256(b)]
		if !ok {
			t.Fatalf("round %d: after the kill and recovery (%q) the model is in no known state", round, did)
		}
		// The sidecar must agree: one record per patch applied.
		recs, err := sidecarRecords(model)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if len(recs) != k {
			t.Fatalf("round %d: model patched %d times but the sidecar has %d records", round, k, len(recs))
		}
		t.Logf("round %d: state %d, recovery %q", round, k, did)
	}
	// Everything can still be undone exactly.
	for {
		if _, err := UnpatchInPlace(ctx, model, UnpatchOptions{}); err != nil {
			break
		}
	}
	b, _ := os.ReadFile(model)
	if !bytes.Equal(b, orig) {
		t.Fatal("after unpatching everything the model is not the original")
	}
	t.Logf("%d kills survived", kills)
}

// killChild patches and unpatches in place forever, between zero and two patches deep.
func killChild() {
	model, sig := os.Getenv("RWS_KILL_MODEL"), os.Getenv("RWS_KILL_SIG")
	ctx := context.Background()
	os.Stdout.WriteString("ready\n")
	for i := 0; ; i++ {
		if err := Recover(model); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		recs, err := sidecarRecords(model)
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		if len(recs) < 2 && (len(recs) == 0 || i%2 == 0) {
			s, err := Read(sig)
			if err == nil {
				_, err = PatchInPlace(ctx, model, []Applied{{s, 1}}, PatchOptions{})
			}
			if err != nil {
				fmt.Println(err)
				os.Exit(3)
			}
		} else if _, err := UnpatchInPlace(ctx, model, UnpatchOptions{}); err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
	}
}
