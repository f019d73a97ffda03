package main

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rws-project/rws/safetensors"
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
	type ent struct {
		name  string
		shape []int64
	}
	var layout []ent
	for i, c := range chans {
		n := "features." + strconv.Itoa(idx[i])
		layout = append(layout, ent{n + ".bias", []int64{c[1]}}, ent{n + ".weight", []int64{c[1], c[0], 3, 3}})
	}
	layout = append(layout, ent{"classifier.bias", []int64{10}}, ent{"classifier.weight", []int64{10, 512}})
	base := rand.New(rand.NewPCG(1, 2))
	noise := rand.New(rand.NewPCG(seed, 99))
	var ts []safetensors.Tensor
	for _, e := range layout {
		n := tensor.Elements(e.shape)
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(base.NormFloat64()*0.05 + scale*0.01*noise.NormFloat64())
		}
		data := make([]byte, 4*n)
		if err := tensor.EncodeFloat32(tensor.F32, vals, data); err != nil {
			return err
		}
		ts = append(ts, safetensors.Tensor{Name: e.name, DType: tensor.F32, Shape: e.shape, Data: data})
	}
	for i := 1; i < len(ts); i++ {
		for j := i; j > 0 && ts[j].Name < ts[j-1].Name; j-- {
			ts[j], ts[j-1] = ts[j-1], ts[j]
		}
	}
	return safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}, safetensors.WriteOptions{})
}
