package nn

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"math"
	"strconv"
	"strings"

	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// Metadata keys of rws model checkpoints (safetensors string metadata).
const (
	MetaFormat     = "format"          // "pt": tensors follow PyTorch's state_dict conventions
	MetaArch       = "rws.arch"        // architecture name, e.g. "cnn"
	MetaArchConfig = "rws.arch_config" // JSON Config
	MetaModules    = "rws.modules"     // JSON array of module names in forward order
	MetaPreprocess = "rws.preprocess"  // JSON Preprocess
	MetaVersion    = "rws.checkpoint"  // checkpoint layout version, CheckpointVersion
)

// CheckpointVersion is the version of the checkpoint layout written by Save; LoadCheckpoint
// accepts versions up to it (and checkpoints without the key, such as exported from PyTorch).
const CheckpointVersion = 1

// ErrNoArch is matched by errors for checkpoints without rws.arch metadata.
var ErrNoArch = errors.New("checkpoint has no rws.arch metadata")

// Metadata returns the checkpoint metadata of the model: the rws keys above plus any extra
// entries set with SetMeta or loaded with the checkpoint.
func (m *Model) Metadata() map[string]string {
	meta := maps.Clone(m.meta)
	cfg, _ := json.Marshal(m.cfg)
	mods, _ := json.Marshal(m.Modules())
	pre, _ := json.Marshal(m.pre)
	meta[MetaFormat] = "pt"
	meta[MetaArch] = m.arch
	meta[MetaArchConfig] = string(cfg)
	meta[MetaModules] = string(mods)
	meta[MetaPreprocess] = string(pre)
	meta[MetaVersion] = strconv.Itoa(CheckpointVersion)
	return meta
}

// SetMeta stores an extra metadata entry written with the checkpoint (for example training
// provenance); keys of the model's own description cannot be set this way.
func (m *Model) SetMeta(key, value string) error {
	switch key {
	case MetaFormat, MetaArch, MetaArchConfig, MetaModules, MetaPreprocess, MetaVersion:
		return fmt.Errorf("nn: metadata key %q is derived from the model and cannot be set", key)
	}
	m.meta[key] = value
	return nil
}

// Meta returns an extra metadata entry (see SetMeta).
func (m *Model) Meta(key string) (string, bool) {
	v, ok := m.meta[key]
	return v, ok
}

// FromMetadata builds an untrained model (zero seed) from checkpoint metadata alone: rws.arch,
// rws.arch_config and, when present, rws.preprocess. Extra entries are kept.
func FromMetadata(meta map[string]string) (*Model, error) {
	arch, ok := meta[MetaArch]
	if !ok {
		return nil, fmt.Errorf("nn: %w", ErrNoArch)
	}
	if v, ok := meta[MetaVersion]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > CheckpointVersion {
			return nil, fmt.Errorf("nn: checkpoint version %q is not supported (this build reads 1 to %d)", v, CheckpointVersion)
		}
	}
	var cfg Config
	if err := strictJSON(meta[MetaArchConfig], &cfg); err != nil {
		return nil, fmt.Errorf("nn: metadata %s %q: %w", MetaArchConfig, meta[MetaArchConfig], err)
	}
	m, err := New(arch, cfg, 0)
	if err != nil {
		return nil, err
	}
	if s, ok := meta[MetaPreprocess]; ok {
		var p Preprocess
		if err := strictJSON(s, &p); err != nil {
			return nil, fmt.Errorf("nn: metadata %s %q: %w", MetaPreprocess, s, err)
		}
		if err := m.SetPreprocess(p); err != nil {
			return nil, err
		}
	}
	for k, v := range meta {
		switch k {
		case MetaFormat, MetaArch, MetaArchConfig, MetaModules, MetaPreprocess, MetaVersion:
		default:
			m.meta[k] = v
		}
	}
	return m, nil
}

func strictJSON(s string, v any) error {
	if s == "" {
		return errors.New("missing")
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	return dec.Decode(v)
}

// LoadCheckpoint reads a model from a safetensors checkpoint written by Save (or by PyTorch
// with the same metadata): the architecture from its metadata, the state from its tensors, in
// any float dtype safetensors holds.
func LoadCheckpoint(path string) (*Model, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	m, err := FromMetadata(r.Metadata())
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := m.loadFrom(r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return m, nil
}

// LoadWeights replaces the model's state with the tensors of a safetensors file, which must
// hold exactly the model's state_dict names and shapes; the file's metadata is ignored.
func (m *Model) LoadWeights(path string) error {
	r, err := safetensors.Open(path)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := m.loadFrom(r); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func (m *Model) loadFrom(r *safetensors.Reader) error {
	infos := r.Tensors()
	ts := make([]Tensor, 0, len(infos))
	for _, in := range infos {
		shape := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			shape[i] = int(d)
		}
		data, err := r.ReadFloat32(in.Name)
		if err != nil {
			return err
		}
		ts = append(ts, Tensor{Name: in.Name, Shape: shape, Data: data})
	}
	return m.LoadStateDict(ts)
}

// Save writes the model as a safetensors checkpoint with its metadata, atomically; an existing
// file is replaced only when force is set. Parameters and running statistics are F32,
// num_batches_tracked I64 (as PyTorch stores them).
func (m *Model) Save(path string, force bool) error {
	ts := make([]safetensors.Tensor, len(m.state))
	for i, p := range m.state {
		ts[i] = p.encode(p.name, p.w)
	}
	return safetensors.WriteFile(path, ts, m.Metadata(), safetensors.WriteOptions{Force: force})
}

// encode returns v (the value of p or a tensor of its shape) as a safetensors tensor called
// name: I64 for counters, F32 otherwise.
func (p *param) encode(name string, v []float32) safetensors.Tensor {
	shape := make([]int64, len(p.shape))
	for j, d := range p.shape {
		shape[j] = int64(d)
	}
	t := safetensors.Tensor{Name: name, Shape: shape, DType: tensor.F32}
	if p.kind == kindCounter {
		t.DType = tensor.I64
		t.Data = make([]byte, 8*len(v))
		for j, x := range v {
			binary.LittleEndian.PutUint64(t.Data[8*j:], uint64(int64(math.Round(float64(x)))))
		}
		return t
	}
	t.Data = make([]byte, 4*len(v))
	for j, x := range v {
		binary.LittleEndian.PutUint32(t.Data[4*j:], math.Float32bits(x))
	}
	return t
}
