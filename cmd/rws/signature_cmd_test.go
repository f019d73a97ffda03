package main

import (
	"bytes"
	"encoding/binary"
	"math"
	"os"
	"sort"
	"strconv"
	"strings"
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
	// mkbn OUT SEED SCALE: a small conv net with batch norm (writeBNModel).
	cmds["mkbn"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: mkbn OUT SEED SCALE")
		}
		seed, _ := strconv.ParseUint(args[1], 10, 64)
		scale, _ := strconv.ParseFloat(args[2], 64)
		ts.Check(writeBNModel(ts.MkAbs(args[0]), seed, scale))
	}
	// cmptensor A B NAME: tensor NAME holds the same bytes in the checkpoints A and B.
	cmds["cmptensor"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 3 {
			ts.Fatalf("usage: cmptensor A B NAME")
		}
		a, b := rawTensor(ts, ts.MkAbs(args[0]), args[2]), rawTensor(ts, ts.MkAbs(args[1]), args[2])
		if bytes.Equal(a, b) == neg {
			ts.Fatalf("tensor %s: equal in %s and %s is %v", args[2], args[0], args[1], !neg)
		}
	}
	// fliptensor FILE NAME: invert the first byte of tensor NAME's data.
	cmds["fliptensor"] = func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 {
			ts.Fatalf("usage: fliptensor FILE NAME")
		}
		r, err := safetensors.Open(ts.MkAbs(args[0]))
		ts.Check(err)
		in, ok := r.Info(args[1])
		r.Close()
		if !ok {
			ts.Fatalf("%s has no tensor %s", args[0], args[1])
		}
		b, err := os.ReadFile(ts.MkAbs(args[0]))
		ts.Check(err)
		b[in.Offset] ^= 0xFF
		ts.Check(os.WriteFile(ts.MkAbs(args[0]), b, 0o644))
	}
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/signature",
		RequireExplicitExec: true,
		Cmds:                cmds,
	})
}

// rawTensor returns the stored bytes of tensor name of the checkpoint at path.
func rawTensor(ts *testscript.TestScript, path, name string) []byte {
	r, err := safetensors.Open(path)
	ts.Check(err)
	defer r.Close()
	b, err := r.ReadRaw(name)
	ts.Check(err)
	return b
}

// bnModel is the layout of writeBNModel: conv, batch norm, conv, batch norm, conv without batch
// norm, linear head, as a PyTorch state_dict.
var bnModel = []layoutEntry{
	{"features.0.weight", []int64{8, 1, 3, 3}},
	{"features.0.bias", []int64{8}},
	{"features.1.weight", []int64{8}},
	{"features.1.bias", []int64{8}},
	{"features.1.running_mean", []int64{8}},
	{"features.1.running_var", []int64{8}},
	{"features.3.weight", []int64{8, 8, 3, 3}},
	{"features.3.bias", []int64{8}},
	{"features.4.weight", []int64{8}},
	{"features.4.bias", []int64{8}},
	{"features.4.running_mean", []int64{8}},
	{"features.4.running_var", []int64{8}},
	{"features.6.weight", []int64{4, 8, 3, 3}},
	{"features.6.bias", []int64{4}},
	{"classifier.weight", []int64{10, 4}},
	{"classifier.bias", []int64{10}},
}

// writeBNModel writes bnModel with values as writeSeeded draws them, running variances made
// positive (1 + |x|), and each batch norm's num_batches_tracked (I64) set to 100·seed.
func writeBNModel(path string, seed uint64, scale float64) error {
	tmp := path + ".float"
	if err := writeSeeded(tmp, bnModel, seed, scale, 0.1, tensor.F32); err != nil {
		return err
	}
	defer os.Remove(tmp)
	r, err := safetensors.Open(tmp)
	if err != nil {
		return err
	}
	defer r.Close()
	var ts []safetensors.Tensor
	for _, in := range r.Tensors() {
		data, err := r.ReadRaw(in.Name)
		if err != nil {
			return err
		}
		if strings.HasSuffix(in.Name, ".running_var") {
			for i := 0; i < len(data); i += 4 {
				v := math.Float32frombits(binary.LittleEndian.Uint32(data[i:]))
				binary.LittleEndian.PutUint32(data[i:], math.Float32bits(1+float32(math.Abs(float64(v)))))
			}
		}
		ts = append(ts, safetensors.Tensor{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: data})
	}
	for _, bn := range []string{"features.1", "features.4"} {
		n := make([]byte, 8)
		binary.LittleEndian.PutUint64(n, 100*seed)
		ts = append(ts, safetensors.Tensor{Name: bn + ".num_batches_tracked", DType: tensor.I64, Shape: []int64{}, Data: n})
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}, safetensors.WriteOptions{})
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
