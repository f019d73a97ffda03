package nn

import (
	"encoding/json"
	"fmt"
	"maps"
	"strings"

	"github.com/rws-project/rws/safetensors"
)

// Metadata keys of trainer state files (SaveState).
const (
	MetaRecipe  = "rws.recipe"  // JSON Recipe
	MetaTrainer = "rws.trainer" // JSON {"version", "epoch", "steps"}
)

// trainerVersion is the layout version of trainer state files.
const trainerVersion = 1

type trainerMeta struct {
	Version int `json:"version"`
	Epoch   int `json:"epoch"`
	Steps   int `json:"steps"`
}

// Optimizer-state tensor name prefixes in trainer state files.
const (
	prefixBuf  = "optimizer.buf."  // SGD momentum buffer or Adam first moment
	prefixBuf2 = "optimizer.buf2." // Adam second moment
)

// Recipe returns the trainer's recipe.
func (t *Trainer) Recipe() Recipe { return t.r }

// Model returns the model the trainer trains.
func (t *Trainer) Model() *Model { return t.m }

// SaveState writes everything needed to resume training after the last completed epoch to a
// safetensors file: the model (state_dict names and checkpoint metadata), the optimizer's
// buffers (optimizer.buf.NAME, optimizer.buf2.NAME), the recipe and the epoch count, plus the
// caller's extra metadata entries. The file is written atomically; an existing one is replaced
// only when force is set.
func (t *Trainer) SaveState(path string, extra map[string]string, force bool) error {
	meta := t.m.Metadata()
	maps.Copy(meta, extra)
	rec, err := json.Marshal(t.r)
	if err != nil {
		return err
	}
	tm, _ := json.Marshal(trainerMeta{Version: trainerVersion, Epoch: t.epoch, Steps: t.opt.steps})
	meta[MetaRecipe], meta[MetaTrainer] = string(rec), string(tm)
	var ts []safetensors.Tensor
	for _, p := range t.m.state {
		ts = append(ts, p.encode(p.name, p.w))
	}
	for i, p := range t.opt.ps {
		ts = append(ts, p.encode(prefixBuf+p.name, t.opt.buf[i]))
		if t.opt.buf2 != nil {
			ts = append(ts, p.encode(prefixBuf2+p.name, t.opt.buf2[i]))
		}
	}
	return safetensors.WriteFile(path, ts, meta, safetensors.WriteOptions{Force: force})
}

// ResumeTrainer reads a file written by SaveState and returns the model and a trainer that
// continues after the saved epoch, with the file's metadata (including the caller's extra
// entries).
func ResumeTrainer(path string) (*Model, *Trainer, map[string]string, error) {
	r, err := safetensors.Open(path)
	if err != nil {
		return nil, nil, nil, err
	}
	defer r.Close()
	meta := r.Metadata()
	fail := func(format string, args ...any) (*Model, *Trainer, map[string]string, error) {
		return nil, nil, nil, fmt.Errorf("%s: %s", path, fmt.Sprintf(format, args...))
	}
	var tm trainerMeta
	if err := strictJSON(meta[MetaTrainer], &tm); err != nil {
		return fail("not a trainer state file: metadata %s: %v", MetaTrainer, err)
	}
	if tm.Version < 1 || tm.Version > trainerVersion {
		return fail("trainer state version %d is not supported (this build reads 1 to %d)", tm.Version, trainerVersion)
	}
	var rec Recipe
	if err := strictJSON(meta[MetaRecipe], &rec); err != nil {
		return fail("metadata %s: %v", MetaRecipe, err)
	}
	model := map[string]string{}
	for k, v := range meta {
		if k != MetaRecipe && k != MetaTrainer {
			model[k] = v
		}
	}
	m, err := FromMetadata(model)
	if err != nil {
		return fail("%v", err)
	}
	t, err := NewTrainer(m, rec)
	if err != nil {
		return fail("%v", err)
	}
	if tm.Epoch < 0 || tm.Epoch > rec.Epochs || tm.Steps < 0 {
		return fail("trainer state epoch %d, steps %d do not fit a recipe of %d epochs", tm.Epoch, tm.Steps, rec.Epochs)
	}
	t.epoch, t.opt.steps = tm.Epoch, tm.Steps
	bufs := map[string][]float32{}
	for i, p := range t.opt.ps {
		bufs[prefixBuf+p.name] = t.opt.buf[i]
		if t.opt.buf2 != nil {
			bufs[prefixBuf2+p.name] = t.opt.buf2[i]
		}
	}
	var weights []Tensor
	for _, in := range r.Tensors() {
		v, err := r.ReadFloat32(in.Name)
		if err != nil {
			return nil, nil, nil, err
		}
		if strings.HasPrefix(in.Name, "optimizer.") {
			dst, ok := bufs[in.Name]
			if !ok || len(dst) != len(v) {
				return fail("optimizer tensor %q does not fit the %s optimizer of %s", in.Name, rec.Optimizer, m.arch)
			}
			copy(dst, v)
			delete(bufs, in.Name)
			continue
		}
		shape := make([]int, len(in.Shape))
		for i, d := range in.Shape {
			shape[i] = int(d)
		}
		weights = append(weights, Tensor{Name: in.Name, Shape: shape, Data: v})
	}
	if len(bufs) > 0 && tm.Steps > 0 {
		return fail("%d optimizer tensors are missing", len(bufs))
	}
	if err := m.LoadStateDict(weights); err != nil {
		return fail("%v", err)
	}
	return m, t, meta, nil
}
