package signature

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"

	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// ErrMismatch is wrapped by errors about checkpoints whose tensors do not line up: a missing
// tensor, or shapes that differ.
var ErrMismatch = errors.New("checkpoints do not match")

// ExtractOptions says what Extract computes.
type ExtractOptions struct {
	// Init is θ₀, the shared starting point; empty selects the Difference variant.
	Init string
	// Clean is θ_std, the model fine-tuned on clean data.
	Clean string
	// Robust are the θ_c, fine-tuned on data with one corruption; several are averaged.
	Robust []string
	// Name names the signature (e.g. the corruption).
	Name string
	// Layers is the selection: "first:N", "auto", "auto:T" or comma-separated name patterns;
	// empty means "auto".
	Layers string
	// Order is a module order from the input that overrides the recorded or natural one.
	Order []string
	// Spec is the codec; Granularity says whether parameters are per tensor or per output channel
	// (channel applies to tensors of two or more dimensions; biases stay per tensor).
	Spec        quant.Spec
	Granularity quant.Granularity
	// Command is recorded in the file.
	Command string
	// BNStats also stores the robust models' batch-norm running statistics (running_mean and
	// running_var) of the normalization layers among the chosen ones, averaged over Robust in
	// float64 and rounded once into their type (see RunningStat). When the chosen layers have
	// none, Extract fails with an error wrapping ErrNoStats.
	BNStats bool
	// Progress, if set, is called after each tensor.
	Progress func(done, total int)
}

// source is an opened checkpoint.
type source struct {
	path string
	r    *safetensors.Reader
}

// read returns the named tensor as float64 with its raw bytes' SHA-256, checking its shape.
func (s source) read(name string, shape []int64) ([]float64, string, error) {
	in, ok := s.r.Info(name)
	if !ok {
		return nil, "", fmt.Errorf("signature: %w: tensor %q is missing from %s", ErrMismatch, name, s.path)
	}
	if fmt.Sprint(in.Shape) != fmt.Sprint(shape) {
		return nil, "", fmt.Errorf("signature: %w: tensor %q has shape %v in %s but %v in the clean model", ErrMismatch, name, in.Shape, s.path, shape)
	}
	if !in.DType.IsFloat() {
		return nil, "", fmt.Errorf("signature: tensor %q in %s is %s, not a floating-point type", name, s.path, in.DType)
	}
	raw, err := s.r.ReadRaw(name)
	if err != nil {
		return nil, "", err
	}
	out := make([]float64, in.Elements())
	if err := tensor.DecodeFloat64(in.DType, raw, out); err != nil {
		return nil, "", fmt.Errorf("signature: %s: tensor %q: %w", s.path, name, err)
	}
	for i, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, "", fmt.Errorf("signature: %s: tensor %q: value %d is %v", s.path, name, i, v)
		}
	}
	sum := sha256.Sum256(raw)
	return out, hex.EncodeToString(sum[:]), nil
}

// Extract computes a signature from checkpoints. It returns the signature (not yet written; call
// Write) and how its layers were chosen.
func Extract(ctx context.Context, opts ExtractOptions) (*Signature, *Choice, error) {
	if opts.Clean == "" || len(opts.Robust) == 0 {
		return nil, nil, fmt.Errorf("signature: extract needs a clean model and at least one robust model")
	}
	if err := opts.Spec.Validate(); err != nil {
		return nil, nil, err
	}
	if opts.Granularity == "" {
		opts.Granularity = quant.PerTensor
	}
	if _, err := quant.ParseGranularity(string(opts.Granularity)); err != nil {
		return nil, nil, err
	}
	if opts.Layers == "" {
		opts.Layers = "auto"
	}
	open := func(path string) (source, error) {
		r, err := safetensors.Open(path)
		if err != nil {
			return source{}, fmt.Errorf("signature: %w", err)
		}
		return source{path: path, r: r}, nil
	}
	var all []source
	defer func() {
		for _, s := range all {
			s.r.Close()
		}
	}()
	clean, err := open(opts.Clean)
	if err != nil {
		return nil, nil, err
	}
	all = append(all, clean)
	var init *source
	if opts.Init != "" {
		s, err := open(opts.Init)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, s)
		init = &s
	}
	var robust []source
	for _, p := range opts.Robust {
		s, err := open(p)
		if err != nil {
			return nil, nil, err
		}
		all = append(all, s)
		robust = append(robust, s)
	}

	shape := func(name string) []int64 {
		in, _ := clean.r.Info(name)
		return in.Shape
	}
	layers, err := layer.Order(clean.r.Names(), clean.r.Metadata(), opts.Order, shape)
	if err != nil {
		return nil, nil, fmt.Errorf("signature: %s: %w", opts.Clean, err)
	}
	meanRobust := func(name string) ([]float64, []string, error) {
		var sum []float64
		var prints []string
		for _, s := range robust {
			v, fp, err := s.read(name, shape(name))
			if err != nil {
				return nil, nil, err
			}
			prints = append(prints, fp)
			if sum == nil {
				sum = v
				continue
			}
			for i := range sum {
				sum[i] += v[i]
			}
		}
		for i := range sum {
			sum[i] /= float64(len(robust))
		}
		return sum, prints, nil
	}
	// measure is ‖mean θ_c − θ_std‖ / ‖θ_std‖ over a unit's tensors, read as float32.
	measure := func(u Unit) (float64, error) {
		var dd, cc float64
		for _, name := range u.Tensors {
			if err := ctx.Err(); err != nil {
				return 0, err
			}
			c, err := clean.r.ReadFloat32(name)
			if err != nil {
				return 0, err
			}
			sum := make([]float64, len(c))
			for _, s := range robust {
				in, ok := s.r.Info(name)
				if !ok || fmt.Sprint(in.Shape) != fmt.Sprint(shape(name)) {
					_, _, err := s.read(name, shape(name)) // the mismatch error
					return 0, err
				}
				v, err := s.r.ReadFloat32(name)
				if err != nil {
					return 0, err
				}
				for i, x := range v {
					sum[i] += float64(x)
				}
			}
			k := float64(len(robust))
			for i, x := range c {
				d := sum[i]/k - float64(x)
				dd += d * d
				cc += float64(x) * float64(x)
			}
		}
		if math.IsNaN(dd+cc) || math.IsInf(dd+cc, 0) {
			return 0, fmt.Errorf("signature: layer %s holds non-finite values in the clean or a robust model", u.Name)
		}
		if cc == 0 {
			return 0, nil
		}
		return math.Sqrt(dd / cc), nil
	}
	choice, err := selectLayers(layers, opts.Layers, measure)
	if err != nil {
		return nil, nil, err
	}
	if len(choice.Tensors) == 0 {
		return nil, nil, fmt.Errorf("signature: --layers %q selects no tensors", opts.Layers)
	}
	// Check every source before computing anything, so a mismatch fails fast.
	for _, name := range choice.Tensors {
		want := shape(name)
		for _, s := range all[1:] {
			in, ok := s.r.Info(name)
			if !ok {
				return nil, nil, fmt.Errorf("signature: %w: tensor %q is missing from %s", ErrMismatch, name, s.path)
			}
			if fmt.Sprint(in.Shape) != fmt.Sprint(want) {
				return nil, nil, fmt.Errorf("signature: %w: tensor %q has shape %v in %s but %v in %s", ErrMismatch, name, in.Shape, s.path, want, opts.Clean)
			}
		}
	}

	sig := &Signature{
		Name:        opts.Name,
		Variant:     Difference,
		Spec:        opts.Spec,
		Granularity: opts.Granularity,
		Layers:      choice.moduleNames(),
		Selection:   choice.Explanation,
		Sources:     Sources{Init: opts.Init, Clean: opts.Clean, Robust: opts.Robust},
		Command:     opts.Command,
	}
	if init != nil {
		sig.Variant = Projection
	}
	if opts.BNStats {
		if sig.Stats, err = extractStats(ctx, layers, choice, clean, robust); err != nil {
			return nil, nil, err
		}
	}
	if sig.ModelBytes, err = modelBytes(clean.r); err != nil {
		return nil, nil, err
	}
	for k, name := range choice.Tensors {
		if err := ctx.Err(); err != nil {
			return nil, nil, err
		}
		in, _ := clean.r.Info(name)
		t := &Tensor{Name: name, Shape: in.Shape, DType: in.DType}
		c, fp, err := clean.read(name, in.Shape)
		if err != nil {
			return nil, nil, err
		}
		t.Sources.Clean = fp
		m, prints, err := meanRobust(name)
		if err != nil {
			return nil, nil, err
		}
		t.Sources.Robust = prints
		var vals []float64
		if init != nil {
			z, fp, err := init.read(name, in.Shape)
			if err != nil {
				return nil, nil, err
			}
			t.Sources.Init = fp
			vals = Project(m, c, z)
		} else {
			vals = make([]float64, len(c))
			for i := range c {
				vals[i] = m[i] - c[i]
			}
		}
		if err := t.encode(vals, opts.Spec, opts.Granularity); err != nil {
			return nil, nil, fmt.Errorf("signature: tensor %q: %w", name, err)
		}
		sig.Tensors = append(sig.Tensors, t)
		if opts.Progress != nil {
			opts.Progress(k+1, len(choice.Tensors))
		}
	}
	return sig, choice, nil
}

// Project returns the robust weight signature of one flattened tensor in float64:
// d − (⟨d,a⟩/⟨a,a⟩)·a with d = robust − init and a = clean − init, or d when ⟨a,a⟩ = 0. Dot
// products are accumulated in float64. The slices must have equal lengths.
func Project(robust, clean, init []float64) []float64 {
	var da, aa float64
	for i := range init {
		d := robust[i] - init[i]
		a := clean[i] - init[i]
		da += d * a
		aa += a * a
	}
	coef := 0.0
	if aa > 0 {
		coef = da / aa
	}
	out := make([]float64, len(init))
	for i := range init {
		d := robust[i] - init[i]
		a := clean[i] - init[i]
		out[i] = d - float64(coef*a)
	}
	return out
}

// encode stores vals (the exact signature values) in t with the codec and records the norm and
// the quantization error.
func (t *Tensor) encode(vals []float64, spec quant.Spec, gran quant.Granularity) error {
	f32 := make([]float32, len(vals))
	var norm float64
	for i, v := range vals {
		f32[i] = float32(v)
		if math.IsInf(float64(f32[i]), 0) {
			return fmt.Errorf("value %d = %g overflows float32", i, v)
		}
		norm += v * v
	}
	t.Norm = math.Sqrt(norm)
	t.Groups = 1
	if spec.Codec == quant.None {
		t.raw = make([]byte, len(vals)*t.DType.Size())
		if t.DType == tensor.F64 {
			for i, v := range vals {
				binary.LittleEndian.PutUint64(t.raw[8*i:], math.Float64bits(v))
			}
		} else if err := tensor.EncodeFloat32(t.DType, f32, t.raw); err != nil {
			return err
		}
	} else {
		if gran == quant.PerChannel && len(t.Shape) >= 2 && t.Shape[0] > 0 {
			t.Groups = int(t.Shape[0])
		}
		q, err := quant.Encode(f32, t.Groups, spec)
		if err != nil {
			return err
		}
		t.q = q
	}
	dec, err := t.Values()
	if err != nil {
		return err
	}
	var e2 float64
	for i, v := range vals {
		e := math.Abs(v - float64(dec[i]))
		t.MaxError = math.Max(t.MaxError, e)
		e2 += e * e
	}
	if norm > 0 {
		t.RelError = math.Sqrt(e2 / norm)
	}
	return nil
}

// modelBytes returns the size of r's checkpoint as a float32 file: the files' sizes with every
// floating-point tensor counted at 4 bytes per value.
func modelBytes(r *safetensors.Reader) (int64, error) {
	files := map[string]bool{}
	var n int64
	for _, in := range r.Tensors() {
		if !files[in.File] {
			files[in.File] = true
			st, err := os.Stat(in.File)
			if err != nil {
				return 0, err
			}
			n += st.Size()
		}
		if in.DType.IsFloat() {
			n += 4*in.Elements() - in.Size
		}
	}
	return n, nil
}
