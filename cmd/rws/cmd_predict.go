package main

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rws-project/rws/internal/nn"
	"github.com/rws-project/rws/npy"
	"github.com/rws-project/rws/tensor"
)

func init() {
	register(&command{
		name:    "predict",
		summary: "logits of a model for a uint8 image array",
		usage: `rws predict MODEL --input X.npy [-o LOGITS.npy] [--force] [--json]

Runs MODEL on the images of X.npy, a uint8 array N×H×W (grey) or N×H×W×C, preprocessed as the
model's metadata says. -o writes the logits as a float32 array N×CLASSES; --json prints
{"model", "input", "images", "classes", "predictions": [class…], "logits": [[…]…]}; otherwise
one line per image: index, predicted class and its logit.`,
		run: runPredict,
	})
}

type predictOptions struct {
	model, input, out string
	force, json       bool
}

type predictResult struct {
	Model       string      `json:"model"`
	Input       string      `json:"input"`
	Output      string      `json:"output,omitempty"`
	Images      int         `json:"images"`
	Classes     int         `json:"classes"`
	Predictions []int       `json:"predictions"`
	Logits      [][]float32 `json:"logits"`
}

func runPredict(ctx context.Context, a *app, args []string) error {
	c := commands["predict"]
	fs := a.flagSet(c)
	var o predictOptions
	fs.StringVar(&o.input, "input", "", "uint8 image array `X.npy` (N×H×W or N×H×W×C)")
	fs.StringVar(&o.out, "o", "", "write the logits to `LOGITS.npy` (float32 N×classes)")
	fs.BoolVar(&o.force, "force", false, "replace an existing output")
	fs.BoolVar(&o.json, "json", false, "print predictions and logits as JSON")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usagef("predict: want one MODEL argument, got %d", len(pos))
	}
	o.model = pos[0]
	if o.input == "" {
		return usagef("predict: no --input X.npy given")
	}
	if o.out != "" {
		if err := checkOutput(o.out, o.force, o.model, o.input); err != nil {
			return err
		}
	}
	if err := recoverModel(a, o.model); err != nil {
		return err
	}
	m, err := nn.LoadCheckpoint(o.model)
	if err != nil {
		return err
	}
	arr, err := npy.ReadFile(o.input)
	if err != nil {
		return err
	}
	im, err := npyImages(arr, o.input)
	if err != nil {
		return err
	}
	logits, err := m.Logits(ctx, im)
	if err != nil {
		return withHint(err, "the images must have the model's size and channels")
	}
	k := m.Config().Classes
	if o.out != "" {
		raw := make([]byte, 4*len(logits))
		for i, v := range logits {
			binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(v))
		}
		h := npy.Header{DType: tensor.F32, Shape: []int64{int64(im.N), int64(k)}}
		if err := npy.WriteFile(o.out, h, raw, npy.WriteOptions{Force: o.force}); err != nil {
			return err
		}
	}
	res := predictResult{Model: o.model, Input: o.input, Output: o.out, Images: im.N, Classes: k,
		Logits: make([][]float32, im.N)}
	res.Predictions = nn.Predictions(logits, k)
	for i := range res.Logits {
		res.Logits[i] = logits[i*k : (i+1)*k]
	}
	if o.json {
		return a.json(res)
	}
	if o.out != "" {
		a.logf("wrote %s: %d×%d float32 logits\n", o.out, im.N, k)
		return nil
	}
	for i, p := range res.Predictions {
		a.printf("%d\t%d\t%.4f\n", i, p, res.Logits[i][p])
	}
	return nil
}

// npyImages interprets a uint8 .npy array N×H×W or N×H×W×C as images.
func npyImages(arr *npy.Array, path string) (nn.Images, error) {
	if arr.DType != tensor.U8 {
		return nn.Images{}, withHint(fmt.Errorf("predict: %s holds %s values, not uint8 pixels", path, arr.DType),
			"convert the images to uint8 0..255 (numpy: x.astype(np.uint8))")
	}
	s := arr.Shape
	im := nn.Images{Pix: arr.Data}
	switch len(s) {
	case 3:
		im.N, im.H, im.W, im.C = int(s[0]), int(s[1]), int(s[2]), 1
	case 4:
		im.N, im.H, im.W, im.C = int(s[0]), int(s[1]), int(s[2]), int(s[3])
	default:
		return nn.Images{}, fmt.Errorf("predict: %s has shape %v; want N×H×W or N×H×W×C", path, s)
	}
	return im, im.Validate()
}
