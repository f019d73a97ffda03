// Package inspect summarises a checkpoint: its tensors in layer order from the input, their
// types, shapes and sizes, its metadata and, on request, value statistics read tensor by tensor.
package inspect

import (
	"fmt"
	"math"

	"github.com/rws-project/rws/internal/kernel"
	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/safetensors"
)

// Tensor describes one tensor. Stats is set only when Options.Stats is.
type Tensor struct {
	Name       string  `json:"name"`
	Layer      string  `json:"layer"`
	DType      string  `json:"dtype"`
	Shape      []int64 `json:"shape"`
	Parameters int64   `json:"parameters"`
	Bytes      int64   `json:"bytes"`
	Stats      *Stats  `json:"stats,omitempty"`
}

// Stats are value statistics of a floating tensor, accumulated in float64 over finite values.
type Stats struct {
	Min       float64 `json:"min"`
	Max       float64 `json:"max"`
	Mean      float64 `json:"mean"`
	Std       float64 `json:"std"`
	L2        float64 `json:"l2"`
	NonFinite int64   `json:"non_finite"`
}

// Report is the summary of one checkpoint.
type Report struct {
	Path       string            `json:"path"`
	Sharded    bool              `json:"sharded,omitempty"`
	Tensors    []Tensor          `json:"tensors"`
	Layers     int               `json:"layers"`
	Parameters int64             `json:"parameters"`
	Bytes      int64             `json:"bytes"`
	Metadata   map[string]string `json:"metadata"`
}

// Options controls File.
type Options struct {
	Stats bool     // read every tensor and compute Stats
	Order []string // a stated module order (see package layer)
}

// File inspects the checkpoint at path.
func File(path string, opts Options) (*Report, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	layers, err := Layers(r, opts.Order)
	if err != nil {
		return nil, err
	}
	rep := &Report{Path: path, Sharded: r.Sharded(), Metadata: r.Metadata(), Layers: len(layers)}
	if rep.Metadata == nil {
		rep.Metadata = map[string]string{}
	}
	for _, l := range layers {
		for _, name := range l.Tensors {
			in, _ := r.Info(name)
			t := Tensor{Name: name, Layer: l.Name, DType: string(in.DType), Shape: in.Shape,
				Parameters: in.Elements(), Bytes: in.Size}
			rep.Tensors = append(rep.Tensors, t)
			rep.Parameters += t.Parameters
			rep.Bytes += t.Bytes
		}
	}
	if opts.Stats {
		if err := addStats(r, rep.Tensors); err != nil {
			return nil, err
		}
	}
	return rep, nil
}

// Layers orders the tensors of r into layers from the input (see package layer).
func Layers(r *safetensors.Reader, stated []string) ([]layer.Layer, error) {
	return layer.Order(r.Names(), r.Metadata(), stated, func(name string) []int64 {
		in, _ := r.Info(name)
		return in.Shape
	})
}

// addStats reads the tensors in blocks on all cores and merges each tensor's blocks in order, so
// the numbers do not depend on the number of cores.
func addStats(r *safetensors.Reader, ts []Tensor) error {
	sizes := make([]int64, len(ts))
	for i, t := range ts {
		sizes[i] = t.Parameters
	}
	worker := func() func(kernel.Block) (kernel.Moments, error) {
		var scratch []byte
		vals := make([]float32, kernel.BlockElems)
		return func(b kernel.Block) (kernel.Moments, error) {
			m := kernel.NewMoments()
			v := vals[:b.N]
			if err := r.ReadFloat32At(ts[b.T].Name, v, b.At, &scratch); err != nil {
				return m, err
			}
			kernel.AddMoments(&m, v)
			return m, nil
		}
	}
	return kernel.Blocks(sizes, worker, func(t int, parts []kernel.Moments) {
		m := kernel.NewMoments()
		for _, p := range parts {
			m.Merge(p)
		}
		ts[t].Stats = stats(m)
	})
}

func stats(m kernel.Moments) *Stats {
	s := &Stats{NonFinite: m.NonFinite, L2: math.Sqrt(m.SumSq)}
	if m.N > 0 {
		s.Min, s.Max = m.Min, m.Max
		s.Mean = m.Sum / m.N
		s.Std = math.Sqrt(max(0, m.SumSq/m.N-s.Mean*s.Mean))
	}
	return s
}

// HumanBytes formats a byte count with a binary unit.
func HumanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
