package main

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rws-project/rws/npy"
	"github.com/rws-project/rws/tensor"
)

func init() {
	// mknpy FILE SEED DIM... : a uint8 .npy array of seeded random bytes.
	// mknpy -f32 FILE SEED DIM... : the same shape of float32 zeros.
	scriptCmds["mknpy"] = func(ts *testscript.TestScript, neg bool, args []string) {
		dt := tensor.U8
		if len(args) > 0 && args[0] == "-f32" {
			dt, args = tensor.F32, args[1:]
		}
		if len(args) < 3 {
			ts.Fatalf("usage: mknpy [-f32] FILE SEED DIM...")
		}
		seed, _ := strconv.ParseUint(args[1], 10, 64)
		var shape []int64
		for _, a := range args[2:] {
			d, err := strconv.ParseInt(a, 10, 64)
			ts.Check(err)
			shape = append(shape, d)
		}
		h := npy.Header{DType: dt, Shape: shape}
		data := make([]byte, h.DataSize())
		if dt == tensor.U8 {
			rng := rand.New(rand.NewPCG(seed, 3))
			for i := range data {
				data[i] = byte(rng.IntN(256))
			}
		}
		ts.Check(npy.WriteFile(ts.MkAbs(args[0]), h, data, npy.WriteOptions{}))
	}
	// npyshape FILE: print "DTYPE [SHAPE]" of a .npy file.
	scriptCmds["npyshape"] = func(ts *testscript.TestScript, neg bool, args []string) {
		a, err := npy.ReadFile(ts.MkAbs(args[0]))
		ts.Check(err)
		fmt.Fprintf(ts.Stdout(), "%s %v\n", a.DType, a.Shape)
	}
	// mkpng FILE SEED H W C: a PNG of seeded random pixels, grey (C 1) or RGB (C 3).
	scriptCmds["mkpng"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 5 {
			ts.Fatalf("usage: mkpng FILE SEED H W C")
		}
		n := make([]int, 4)
		for i, a := range args[1:] {
			v, err := strconv.Atoi(a)
			ts.Check(err)
			n[i] = v
		}
		rng := rand.New(rand.NewPCG(uint64(n[0]), 4))
		var im image.Image
		if n[3] == 1 {
			g := image.NewGray(image.Rect(0, 0, n[2], n[1]))
			for i := range g.Pix {
				g.Pix[i] = byte(rng.IntN(256))
			}
			im = g
		} else {
			m := image.NewNRGBA(image.Rect(0, 0, n[2], n[1]))
			for i := range m.Pix {
				m.Pix[i] = byte(rng.IntN(256))
				if i%4 == 3 {
					m.Pix[i] = 255
				}
			}
			im = m
		}
		var b bytes.Buffer
		ts.Check(png.Encode(&b, im))
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), b.Bytes(), 0o644))
	}
}

// TestCorruptExitCodes runs rws corrupt in-process: bad flags exit 2, bad input exits 1, and
// neither leaves a file behind.
func TestCorruptExitCodes(t *testing.T) {
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	rgb := npy.Header{DType: tensor.U8, Shape: []int64{2, 32, 32, 3}}
	if err := npy.WriteFile(p("rgb.npy"), rgb, make([]byte, rgb.DataSize()), npy.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	f32 := npy.Header{DType: tensor.F32, Shape: []int64{2, 32, 32, 3}}
	if err := npy.WriteFile(p("f32.npy"), f32, make([]byte, f32.DataSize()), npy.WriteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p("exists.npy"), []byte("keep"), 0o644); err != nil {
		t.Fatal(err)
	}
	in := "--input=" + p("rgb.npy")
	tests := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"no input", []string{"--suite", "cifar10-c", "-o", p("o.npy")}, 2, "no input"},
		{"two inputs", []string{in, "--dataset", "mnist", "--suite", "cifar10-c", "-o", p("o.npy")}, 2, "not both"},
		{"split without dataset", []string{in, "--split", "train", "--suite", "cifar10-c", "-o", p("o.npy")}, 2, "--split applies to --dataset only"},
		{"bad split", []string{"--dataset", "mnist", "--split", "val", "--suite", "mnist-c", "-o", p("o")}, 2, `--split "val"`},
		{"no suite", []string{in, "-o", p("o.npy")}, 2, "no --suite given"},
		{"unknown suite", []string{in, "--suite", "foo-c", "-o", p("o.npy")}, 2, `unknown --suite "foo-c" (one of`},
		{"unknown corruption", []string{in, "--suite", "cifar10-c", "--corruption", "rain", "--severity", "1", "-o", p("o.npy")}, 2, `no corruption "rain"`},
		{"no severity", []string{in, "--suite", "cifar10-c", "--corruption", "fog", "-o", p("o.npy")}, 2, "needs --severity 1..5 or all"},
		{"severity 6", []string{in, "--suite", "cifar10-c", "--corruption", "fog", "--severity", "6", "-o", p("o.npy")}, 2, "--severity 6"},
		{"severity for mnist-c", []string{in, "--suite", "mnist-c", "--severity", "1", "-o", p("o")}, 2, "omit --severity"},
		{"nothing to write", []string{in, "--suite", "cifar10-c", "--severity", "1"}, 2, "nothing to write"},
		{"npy for several", []string{in, "--suite", "cifar10-c", "--severity", "1", "-o", p("o.npy")}, 2, "names a folder"},
		{"folder for one", []string{in, "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("o")}, 2, "names a .npy file"},
		{"sheet not png", []string{in, "--suite", "cifar10-c", "--severity", "1", "--sheet", p("s.jpg")}, 2, "want a .png"},
		{"positional", []string{in, "x", "--suite", "cifar10-c"}, 2, "unexpected argument"},
		{"bad dataset spec", []string{"--dataset", "cifar", "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("o.npy")}, 2, `unknown dataset kind "cifar"`},
		{"missing input", []string{"--input", p("nope.npy"), "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("o.npy")}, 1, "no such file"},
		{"float input", []string{"--input", p("f32.npy"), "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("o.npy")}, 1, "holds F32"},
		{"output exists", []string{in, "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("exists.npy")}, 1, "exists"},
		{"output is input", []string{in, "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("rgb.npy"), "--force"}, 1, "is the input file"},
		{"output is dataset input", []string{"--dataset", "npy:" + p("rgb.npy"), "--suite", "cifar10-c", "--corruption", "fog", "--severity", "1", "-o", p("rgb.npy"), "--force"}, 1, "is the input file"},
		{"wrong image size", []string{in, "--suite", "mnist-c", "-o", p("o")}, 1, "needs 28x28 grey images"},
		{"missing dataset", []string{"--dataset", "fashion-mnist:" + p("nofm"), "--suite", "mnist-c", "-o", p("o")}, 1, "not found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			a := &app{stdout: &stdout, stderr: &stderr, quiet: true}
			code := runMain(context.Background(), a, append([]string{"corrupt"}, tt.args...))
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr:\n%s", code, tt.code, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.msg) || !strings.HasPrefix(stderr.String(), "rws: error: ") {
				t.Fatalf("stderr %q does not contain %q", stderr.String(), tt.msg)
			}
			es, _ := os.ReadDir(dir)
			var names []string
			for _, e := range es {
				names = append(names, e.Name())
			}
			if got := strings.Join(names, " "); got != "exists.npy f32.npy rgb.npy" {
				t.Fatalf("files after the failure: %s", got)
			}
			if b, _ := os.ReadFile(p("exists.npy")); string(b) != "keep" {
				t.Fatal("exists.npy was changed")
			}
		})
	}
}
