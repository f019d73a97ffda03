package experiment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/rws-project/rws/dataset"
	"github.com/rws-project/rws/internal/nn"
)

// cacheVersion changes when the way models are trained changes, so that older cached models are
// not reused.
const cacheVersion = 1

// Metadata keys the study adds to its model checkpoints.
const (
	metaKey   = "rws.experiment.key"
	metaTrain = "rws.experiment.train"
)

// job describes one model to train: what it starts from, its data and recipe.
type job struct {
	name   string
	parent *trained // nil: a fresh initialisation
	data   *dataset.Set
	// dataDesc identifies data for the cache key: how the images were drawn and corrupted.
	dataDesc string
	recipe   Recipe
	seed     uint64
}

// trained is a model of the study with where it is stored.
type trained struct {
	info  ModelInfo
	path  string
	model *nn.Model
}

// key returns the content hash of what determines the job's model.
func (j *job) key(arch string, cfg nn.Config) string {
	parent := ""
	if j.parent != nil {
		parent = j.parent.info.Key
	}
	b, _ := json.Marshal(struct {
		Version int       `json:"version"`
		Arch    string    `json:"arch"`
		Cfg     nn.Config `json:"cfg"`
		Parent  string    `json:"parent"`
		Data    string    `json:"data"`
		N       int       `json:"n"`
		Recipe  Recipe    `json:"recipe"`
		Seed    uint64    `json:"seed"`
	}{cacheVersion, arch, cfg, parent, j.dataDesc, j.data.N, j.recipe, j.seed})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// trainStats is what the checkpoint records about its training.
type trainStats struct {
	Key            string  `json:"key"`
	Parent         string  `json:"parent,omitempty"`
	Data           string  `json:"data"`
	Seconds        float64 `json:"seconds"`
	Examples       int     `json:"examples"`
	ExamplesPerSec float64 `json:"examples_per_sec"`
	Loss           float64 `json:"loss"`
	Accuracy       float64 `json:"accuracy"`
}

// train returns the job's model: read from dir/models when a checkpoint with the same key is
// there, otherwise trained and saved.
func (r *runner) train(ctx context.Context, j *job) (*trained, error) {
	cfg := nn.Config{InChannels: j.data.C, Height: j.data.H, Width: j.data.W, Classes: j.data.Classes}
	if j.parent != nil {
		cfg = j.parent.model.Config()
	}
	key := j.key(r.cfg.Arch, cfg)
	rel := filepath.Join("models", j.name+".safetensors")
	path := filepath.Join(r.dir, rel)
	t := &trained{path: path, info: ModelInfo{Name: j.name, File: rel, Key: key, Data: j.dataDesc}}
	if j.parent != nil {
		t.info.Parent = j.parent.info.Name
	}
	if m, err := nn.LoadCheckpoint(path); err == nil {
		if k, _ := m.Meta(metaKey); k == key {
			var st trainStats
			if s, ok := m.Meta(metaTrain); ok && json.Unmarshal([]byte(s), &st) == nil {
				t.info.Seconds, t.info.Examples, t.info.ExamplesPerSec = st.Seconds, st.Examples, st.ExamplesPerSec
				t.info.Loss, t.info.TrainAccuracy = st.Loss, st.Accuracy
			}
			t.info.Cached = true
			t.model = m
			r.logf("reused %s (cached, key %s)", rel, key)
			return t, nil
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		r.logf("retraining %s: the cached file cannot be read: %v", rel, err)
	}
	var m *nn.Model
	if j.parent != nil {
		m = j.parent.model.Clone()
	} else {
		var err error
		if m, err = nn.New(r.cfg.Arch, cfg, j.seed); err != nil {
			return nil, fmt.Errorf("experiment: %w", err)
		}
	}
	recipe := nn.DefaultRecipe(j.recipe.Epochs)
	recipe.Batch, recipe.LR, recipe.Momentum, recipe.WeightDecay = j.recipe.Batch, j.recipe.LR, j.recipe.Momentum, j.recipe.WeightDecay
	recipe.Seed = j.seed
	im := nn.Images{Pix: j.data.Images, N: j.data.N, H: j.data.H, W: j.data.W, C: j.data.C}
	start := time.Now()
	stats, err := nn.Train(ctx, m, im, j.data.Labels, recipe, func(p nn.Progress) {
		r.progress("train %s: epoch %d/%d, batch %d/%d, loss %.3f, acc %.3f, %.0f ex/s",
			j.name, p.Epoch+1, p.Epochs, p.Step, p.Steps, p.Loss, p.Accuracy, p.ExamplesPerSec)
	})
	if err != nil {
		return nil, fmt.Errorf("experiment: training %s: %w", j.name, err)
	}
	sec := time.Since(start).Seconds()
	last := stats[len(stats)-1]
	st := trainStats{Key: key, Data: j.dataDesc, Seconds: sec, Examples: j.data.N * len(stats),
		Loss: last.Loss, Accuracy: last.Accuracy}
	st.ExamplesPerSec = float64(st.Examples) / sec
	if j.parent != nil {
		st.Parent = j.parent.info.Key
	}
	b, _ := json.Marshal(st)
	if err := m.SetMeta(metaKey, key); err != nil {
		return nil, err
	}
	if err := m.SetMeta(metaTrain, string(b)); err != nil {
		return nil, err
	}
	if err := m.Save(path, true); err != nil {
		return nil, fmt.Errorf("experiment: saving %s: %w", rel, err)
	}
	t.model = m
	t.info.Seconds, t.info.Examples, t.info.ExamplesPerSec = sec, st.Examples, st.ExamplesPerSec
	t.info.Loss, t.info.TrainAccuracy = last.Loss, last.Accuracy
	r.logf("trained %s: %d examples in %.1f s (%.0f ex/s), train accuracy %.3f", rel, st.Examples, sec, st.ExamplesPerSec, last.Accuracy)
	return t, nil
}
