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
)

// TestKillSharded runs sharded patches in a child process and kills it (SIGKILL) at random
// moments: out of place, replacing an output with another again and again; in place, patching and
// unpatching a checkpoint between zero and two patches deep. After each kill the next Recover
// must leave the output absent or whole, and the checkpoint in one of the states it moves
// through, undo sidecars included. A few kills run by default (a few seconds); RWS_LONG_TESTS=1
// runs many, at later moments too.
func TestKillSharded(t *testing.T) {
	if mode := os.Getenv("RWS_KILL_SHARDED"); mode != "" {
		killShardedChild(mode)
		return
	}
	rounds, wait := 12, 150
	if os.Getenv("RWS_LONG_TESTS") != "" {
		rounds, wait = 60, 1000
	}
	dir := t.TempDir()
	f, sigs := shardSigs(t, dir)
	ctx := context.Background()
	index := writeSharded(t, f.clean, filepath.Join(dir, "in"))
	rng := rand.New(rand.NewPCG(5, 6))

	// kill starts the child in mode, lets it run a random while and kills it.
	kill := func(round int, mode string, env ...string) {
		t.Helper()
		cmd := exec.Command(os.Args[0], "-test.run=TestKillSharded$")
		cmd.Env = append(append(os.Environ(), "RWS_KILL_SHARDED="+mode, "RWS_KILL_INDEX="+index,
			"RWS_KILL_A="+sigs["a"].Path, "RWS_KILL_B="+sigs["b"].Path, "RWS_KILL_C="+sigs["c"].Path), env...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		pipe, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		ready := make([]byte, 6)
		if _, err := io.ReadFull(pipe, ready); err != nil {
			t.Fatalf("round %d: child did not start: %v\n%s", round, err, stderr.String())
		}
		time.Sleep(time.Duration(rng.IntN(wait)) * time.Millisecond)
		cmd.Process.Signal(syscall.SIGKILL)
		rest, _ := io.ReadAll(pipe)
		if err := cmd.Wait(); err == nil || len(rest) > 0 {
			t.Fatalf("round %d: child ended on its own: %s\n%s", round, rest, stderr.String())
		}
	}

	t.Run("out of place", func(t *testing.T) {
		outputs := map[string]snapshot{}
		for _, s := range []string{"a", "b"} {
			o := filepath.Join(dir, "ref-"+s, indexName)
			os.Mkdir(filepath.Dir(o), 0o755)
			if _, err := Patch(ctx, index, o, []Applied{{sigs[s], 1}}, PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			outputs[s] = snap(t, filepath.Dir(o))
		}
		outDir := filepath.Join(dir, "out")
		os.Mkdir(outDir, 0o755)
		out := filepath.Join(outDir, indexName)
		seen := map[string]int{}
		for round := range rounds {
			kill(round, "out", "RWS_KILL_OUT="+out)
			before := snap(t, outDir).visible()
			if before[indexName] != "" && before.diff(outputs["a"]) != "" && before.diff(outputs["b"]) != "" {
				t.Fatalf("round %d: before recovery the index names a mix of shards: %s", round, before.diff(outputs["a"]))
			}
			did, err := RecoverReport(out)
			if err != nil {
				t.Fatalf("round %d: recover: %v", round, err)
			}
			got := snap(t, outDir)
			state := ""
			for s, want := range outputs {
				if got.diff(want) == "" {
					state = s
				}
			}
			if state == "" && len(got) > 0 {
				t.Fatalf("round %d: after the kill and recovery (%q) the output is neither absent nor whole: %s", round, did, got.diff(outputs["a"]))
			}
			seen[state+" "+did]++
		}
		t.Logf("outputs after %d kills (state, recovery): %v", rounds, seen)
	})

	t.Run("in place", func(t *testing.T) {
		// The states the child moves through: none, a, a then c.
		states := map[string]int{}
		var snaps []snapshot
		key := func(s snapshot) string { return fmt.Sprint(s) }
		snaps = append(snaps, snap(t, filepath.Dir(index)))
		ref := writeSharded(t, f.clean, filepath.Join(dir, "ref"))
		for _, s := range []string{"a", "c"} {
			if _, err := PatchInPlace(ctx, ref, []Applied{{sigs[s], 1}}, PatchOptions{}); err != nil {
				t.Fatal(err)
			}
			snaps = append(snaps, snap(t, filepath.Dir(ref)))
		}
		for k, s := range snaps {
			states[key(s)] = k
		}
		seen := map[string]int{}
		for round := range rounds {
			kill(round, "in")
			did, err := RecoverReport(index)
			if err != nil {
				t.Fatalf("round %d: recover: %v", round, err)
			}
			k, ok := states[key(snap(t, filepath.Dir(index)).settled())]
			if !ok {
				now := snap(t, filepath.Dir(index)).settled()
				t.Fatalf("round %d: after the kill and recovery (%q) the checkpoint is in no known state: against the states: %q, %q, %q", round, did, now.diff(snaps[0]), now.diff(snaps[1]), now.diff(snaps[2]))
			}
			seen[fmt.Sprintf("%d %s", k, did)]++
		}
		t.Logf("states after %d kills (depth, recovery): %v", rounds, seen)
		for range 2 {
			UnpatchInPlace(ctx, index, UnpatchOptions{})
		}
		if k, ok := states[key(snap(t, filepath.Dir(index)).settled())]; !ok || k != 0 {
			t.Fatal("unpatching everything did not give back the checkpoint")
		}
	})
}

// killShardedChild runs the sharded operations of TestKillSharded until it is killed.
func killShardedChild(mode string) {
	ctx := context.Background()
	index, out := os.Getenv("RWS_KILL_INDEX"), os.Getenv("RWS_KILL_OUT")
	read := func(env string) *Signature {
		s, err := Read(os.Getenv(env))
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
		return s
	}
	a, b, c := read("RWS_KILL_A"), read("RWS_KILL_B"), read("RWS_KILL_C")
	fail := func(err error) {
		if err != nil {
			fmt.Println(err)
			os.Exit(3)
		}
	}
	os.Stdout.WriteString("ready\n")
	for i := 0; ; i++ {
		switch mode {
		case "out":
			s := a
			if i%2 == 1 {
				s = b
			}
			_, err := Patch(ctx, index, out, []Applied{{s, 1}}, PatchOptions{Force: true})
			fail(err)
		case "in":
			_, err := RecoverReport(index)
			fail(err)
			h, err := History(index)
			fail(err)
			switch {
			case len(h) == 0:
				_, err = PatchInPlace(ctx, index, []Applied{{a, 1}}, PatchOptions{})
			case len(h) == 1 && i%2 == 0:
				_, err = PatchInPlace(ctx, index, []Applied{{c, 1}}, PatchOptions{})
			default:
				_, err = UnpatchInPlace(ctx, index, UnpatchOptions{})
			}
			fail(err)
		}
	}
}
