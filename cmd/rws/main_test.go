package main

import (
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"rws": func() { os.Exit(run()) },
	})
}

// TestScripts runs the end-to-end CLI scripts in testdata/script. Each checks a command's output
// and, for failures, that no output file was left behind.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Cmds:                scriptCmds,
	})
}

// scriptCmds are helper commands for the scripts, written in Go so scripts can make real files.
var scriptCmds = map[string]func(ts *testscript.TestScript, neg bool, args []string){
	// mkmodel OUT SEED [SCALE [DTYPE]]: a small conv-net-shaped checkpoint with seeded values,
	// names sorted as safetensors writers store them.
	"mkmodel": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) < 2 {
			ts.Fatalf("usage: mkmodel OUT SEED [SCALE [DTYPE]]")
		}
		seed, _ := strconv.ParseUint(args[1], 10, 64)
		scale := 1.0
		if len(args) > 2 {
			scale, _ = strconv.ParseFloat(args[2], 64)
		}
		dt := tensor.F32
		if len(args) > 3 {
			dt = tensor.DType(args[3])
		}
		if err := writeTestModel(ts.MkAbs(args[0]), seed, scale, dt); err != nil {
			ts.Fatalf("mkmodel: %v", err)
		}
	},
	// shard MODEL DIR [DTYPE]: split a mkmodel checkpoint into three shards in DIR (the
	// classifier; features.0; the other features) with a Hugging Face index
	// DIR/model.safetensors.index.json; DTYPE converts the last shard's tensors.
	"shard": func(ts *testscript.TestScript, neg bool, args []string) {
		if len(args) != 2 && len(args) != 3 {
			ts.Fatalf("usage: shard MODEL DIR [DTYPE]")
		}
		var last tensor.DType
		if len(args) == 3 {
			last = tensor.DType(args[2])
		}
		ts.Check(writeShards(ts.MkAbs(args[0]), ts.MkAbs(args[1]), last))
	},
	// truncate FILE N: cut FILE to N bytes.
	"truncate": func(ts *testscript.TestScript, neg bool, args []string) {
		n, _ := strconv.ParseInt(args[1], 10, 64)
		ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
	},
}

// layoutEntry is one tensor of a generated test checkpoint.
type layoutEntry struct {
	name  string
	shape []int64
}

// testModel is the layout of writeTestModel: a small CNN as a PyTorch state_dict, sorted.
var testModel = []layoutEntry{
	{"classifier.0.bias", []int64{16}},
	{"classifier.0.weight", []int64{16, 64}},
	{"classifier.2.bias", []int64{10}},
	{"classifier.2.weight", []int64{10, 16}},
	{"features.0.bias", []int64{8}},
	{"features.0.weight", []int64{8, 1, 3, 3}},
	{"features.10.bias", []int64{4}},
	{"features.10.weight", []int64{4, 8, 3, 3}},
	{"features.2.bias", []int64{8}},
	{"features.2.weight", []int64{8, 8, 3, 3}},
}

// writeTestModel writes values base(i) + scale·noise(seed), so models of one seed family differ
// by a controlled amount.
func writeTestModel(path string, seed uint64, scale float64, dt tensor.DType) error {
	return writeSeeded(path, testModel, seed, scale, 0.1, dt)
}

// writeSeeded writes the tensors of layout with values baseStd·N(0,1) from a fixed stream plus
// scale·0.01·N(0,1) from a stream of seed, drawn in layout order, stored sorted by name as
// safetensors writers do.
func writeSeeded(path string, layout []layoutEntry, seed uint64, scale, baseStd float64, dt tensor.DType) error {
	base := rand.New(rand.NewPCG(1, 2))
	noise := rand.New(rand.NewPCG(seed, 99))
	var ts []safetensors.Tensor
	for _, e := range layout {
		n := tensor.Elements(e.shape)
		vals := make([]float32, n)
		for i := range vals {
			vals[i] = float32(base.NormFloat64()*baseStd + scale*0.01*noise.NormFloat64())
		}
		data := make([]byte, n*int64(dt.Size()))
		if err := tensor.EncodeFloat32(dt, vals, data); err != nil {
			return err
		}
		ts = append(ts, safetensors.Tensor{Name: e.name, DType: dt, Shape: e.shape, Data: data})
	}
	sort.SliceStable(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return safetensors.WriteFile(path, ts, map[string]string{"format": "pt"}, safetensors.WriteOptions{})
}

// writeShards splits the checkpoint src into three shards in dir (the classifier; features.0;
// the other features) and writes their index, model.safetensors.index.json. A last other than ""
// is the dtype the float tensors of the last shard are converted to.
func writeShards(src, dir string, last tensor.DType) error {
	r, err := safetensors.Open(src)
	if err != nil {
		return err
	}
	defer r.Close()
	shardOf := func(name string) string {
		switch {
		case strings.HasPrefix(name, "classifier."):
			return "model-00001-of-00003.safetensors"
		case strings.HasPrefix(name, "features.0."):
			return "model-00002-of-00003.safetensors"
		}
		return "model-00003-of-00003.safetensors"
	}
	byShard := map[string][]safetensors.Tensor{}
	weights := map[string]string{}
	for _, in := range r.Tensors() {
		data, err := r.ReadRaw(in.Name)
		if err != nil {
			return err
		}
		f := shardOf(in.Name)
		dt := in.DType
		if last != "" && f == "model-00003-of-00003.safetensors" && dt != last {
			v := make([]float32, in.Elements())
			if err := tensor.DecodeFloat32(dt, data, v); err != nil {
				return err
			}
			dt, data = last, make([]byte, int(in.Elements())*last.Size())
			if err := tensor.EncodeFloat32(dt, v, data); err != nil {
				return err
			}
		}
		byShard[f] = append(byShard[f], safetensors.Tensor{Name: in.Name, DType: dt, Shape: in.Shape, Data: data})
		weights[in.Name] = f
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for f, ts := range byShard {
		if err := safetensors.WriteFile(filepath.Join(dir, f), ts, r.Metadata(), safetensors.WriteOptions{}); err != nil {
			return err
		}
	}
	idx, err := json.MarshalIndent(map[string]any{"metadata": map[string]any{"format": "pt"}, "weight_map": weights}, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, "model.safetensors.index.json"), append(idx, '\n'), 0o644)
}
