package signature

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/rws-project/rws/internal/mem"
	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
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
	// Progress, if set, is called after each tensor with the number done so far; tensors are
	// computed on several goroutines, but Progress is never called twice at once.
	Progress func(done, total int)
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
	measure := func(units []Unit) ([]float64, error) { return measureUnits(ctx, clean, robust, units) }
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
	srcs := append([]source{clean}, robust...)
	if init != nil {
		srcs = append(srcs, *init)
	}
	outs := outputs(clean.r, choice.Tensors, opts.Spec)
	sig.Tensors = make([]*Tensor, len(choice.Tensors))
	var mu sync.Mutex // serializes Progress
	done := 0
	elements := func(k int) int64 {
		in, _ := clean.r.Info(choice.Tensors[k])
		return in.Elements()
	}
	err = forEach(ctx, len(choice.Tensors), elements,
		func() *extractor { return newExtractor(srcs, len(robust), init != nil, opts.Spec, opts.Granularity) },
		(*extractor).close,
		func(x *extractor, k int) error {
			t, err := x.tensor(choice.Tensors[k], outs[k])
			if err != nil {
				return err
			}
			sig.Tensors[k] = t
			if opts.Progress != nil {
				mu.Lock()
				done++
				opts.Progress(done, len(choice.Tensors))
				mu.Unlock()
			}
			return nil
		})
	if err != nil {
		return nil, nil, err
	}
	return sig, choice, nil
}

// outputs returns, for codec none, room for each tensor's stored values in its clean type, cut
// from one buffer (8-byte aligned, so that F32 and F64 values can be written where they lie);
// nil slices for a quantizing codec, whose codes the quantizer allocates.
func outputs(clean *safetensors.Reader, names []string, spec quant.Spec) [][]byte {
	outs := make([][]byte, len(names))
	if spec.Codec != quant.None {
		return outs
	}
	size := func(name string) int64 {
		in, _ := clean.Info(name)
		if !in.DType.Writable() {
			return 0 // an error later
		}
		return in.Elements() * int64(in.DType.Size())
	}
	var total int64
	for _, name := range names {
		total += (size(name) + 7) &^ 7
	}
	buf := mem.Bytes(int(total)) // fresh memory: huge pages are much cheaper to touch
	var at int64
	for k, name := range names {
		n := size(name)
		outs[k] = buf[at : at+n : at+n]
		at += (n + 7) &^ 7
	}
	return outs
}

// Project returns the robust weight signature of one flattened tensor in float64:
// d − (⟨d,a⟩/⟨a,a⟩)·a with d = robust − init and a = clean − init, or d when ⟨a,a⟩ = 0. Dot
// products are accumulated in float64. The slices must have equal lengths.
func Project(robust, clean, init []float64) []float64 {
	var da, aa float64
	projectionSums(robust, clean, init, &da, &aa)
	coef := 0.0
	if aa > 0 {
		coef = da / aa
	}
	out := make([]float64, len(init))
	projectionValues(robust, clean, init, coef, out)
	return out
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
