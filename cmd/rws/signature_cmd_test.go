package main

import (
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rws-project/rws/signature"
	"github.com/rws-project/rws/tensor"
)

// TestSignatureScripts runs the end-to-end scripts of extract, patch, unpatch and similarity
// (testdata/signature). Each failing command is checked to exit 1 and leave no output.
func TestSignatureScripts(t *testing.T) {
	cmds := map[string]func(ts *testscript.TestScript, neg bool, args []string){}
	for k, v := range scriptCmds {
		cmds[k] = v
	}
	// mkvgg OUT SEED SCALE: the VGG-16 CIFAR layout (13 3×3 convolutions with bias, 512→10
	// head), values base + SCALE·0.01·noise(SEED), F32.
	cmds["mkvgg"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: mkvgg OUT SEED SCALE")
		}
		seed, _ := strconv.ParseUint(args[1], 10, 64)
		scale, _ := strconv.ParseFloat(args[2], 64)
		ts.Check(writeVGG16(ts.MkAbs(args[0]), seed, scale))
	}
	// ratio SIG MIN: the signature's compression ratio is at least MIN.
	cmds["ratio"] = func(ts *testscript.TestScript, neg bool, args []string) {
		s, err := signature.Read(ts.MkAbs(args[0]))
		ts.Check(err)
		min, _ := strconv.ParseFloat(args[1], 64)
		if (s.Ratio() >= min) == neg {
			ts.Fatalf("%s: ratio %.2f× against %g×", args[0], s.Ratio(), min)
		}
		ts.Logf("%s: %d bytes, full model %d bytes: %.2f×", args[0], s.FileBytes, s.ModelBytes, s.Ratio())
	}
	// flipbyte FILE OFFSET: invert one byte (a negative OFFSET counts from the end).
	cmds["flipbyte"] = func(ts *testscript.TestScript, neg bool, args []string) {
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		ts.Check(err)
		off, _ := strconv.Atoi(args[1])
		if off < 0 {
			off += len(b)
		}
		b[off] ^= 0xFF
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/signature",
		RequireExplicitExec: true,
		Cmds:                cmds,
	})
}

// writeVGG16 writes the VGG-16 CIFAR layout under torchvision names, sorted.
func writeVGG16(path string, seed uint64, scale float64) error {
	chans := [][2]int64{{3, 64}, {64, 64}, {64, 128}, {128, 128}, {128, 256}, {256, 256}, {256, 256},
		{256, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}}
	idx := []int{0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}
	var layout []layoutEntry
	for i, c := range chans {
		n := "features." + strconv.Itoa(idx[i])
		layout = append(layout, layoutEntry{n + ".bias", []int64{c[1]}}, layoutEntry{n + ".weight", []int64{c[1], c[0], 3, 3}})
	}
	layout = append(layout, layoutEntry{"classifier.bias", []int64{10}}, layoutEntry{"classifier.weight", []int64{10, 512}})
	return writeSeeded(path, layout, seed, scale, 0.05, tensor.F32)
}
