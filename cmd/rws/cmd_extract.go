package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/signature"
)

func init() {
	register(&command{
		name:    "extract",
		summary: "extract a robust weight signature (θ_c − θ₀ without its clean component) into a .rws file",
		usage: `rws extract [--init θ0] --clean θstd --robust θc [--robust θc2 …] -o OUT.rws
       [--name NAME] [--layers first:N|auto|auto:T|PATTERNS] [--codec none|linear|log|tanh|gauss]
       [--bits 1-8] [--granularity tensor|channel] [--order MODULES] [--bn-stats] [--force] [--json]

With --init, each selected tensor's signature is (θc − θ0) with its component along (θstd − θ0)
removed; without it, the plain difference θc − θstd. Several --robust models are averaged.
--layers first:N keeps the first N weight layers from the input with their biases and batch-norm
affine parameters; auto keeps the shallow layers whose relative difference ‖θc−θstd‖/‖θstd‖ is at
least T (default 0.5) of the largest; patterns (comma-separated, * and ? wildcards) name layers or
tensors, and are the only way to include the classifier head.

Batch-norm running statistics are never part of the signature. --bn-stats also stores the robust
model's running_mean and running_var of the batch-norm layers among the selected ones, as they are
(not a difference, never quantized; num_batches_tracked, a step count, is left out): with several
--robust models their mean, computed in float64 and rounded once into their type. 'rws patch
--bn-stats signature' then puts them in place of the patched model's. Such a file is format
version 2, which rws before this option cannot read; without --bn-stats the file stays version 1.
--bn-stats with selected layers that have no batch norm is an error.`,
		run: runExtract,
	})
	describers = append(describers, describeSignature)
}

// stringList is a repeatable string flag.
type stringList []string

func (s *stringList) String() string     { return strings.Join(*s, ",") }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// describeSignature explains signature files for rws inspect.
func describeSignature(path string, meta map[string]string) (string, bool, error) {
	if !signature.IsSignature(meta) {
		return "", false, nil
	}
	d, err := signature.Describe(path)
	if err != nil {
		return "cannot read the signature: " + err.Error(), true, err
	}
	return d.String(), true, nil
}

// commandLine records a command as the user could retype it.
func commandLine(name string, args []string) string {
	parts := []string{"rws", name}
	for _, a := range args {
		if a == "" || strings.ContainsAny(a, " \t\n'\"\\$`*?[]{}()<>|&;#~!") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		parts = append(parts, a)
	}
	return strings.Join(parts, " ")
}

func runExtract(ctx context.Context, a *app, args []string) error {
	c := commands["extract"]
	fs := a.flagSet(c)
	var robust stringList
	init := fs.String("init", "", "θ0: the `checkpoint` the clean and robust models were fine-tuned from (omit for the plain difference θc − θstd)")
	clean := fs.String("clean", "", "θstd: the `checkpoint` fine-tuned on clean data")
	fs.Var(&robust, "robust", "θc: a `checkpoint` fine-tuned on corrupted data; repeat to average several (e.g. seeds)")
	out := fs.String("o", "", "output signature `file` (.rws)")
	name := fs.String("name", "", "signature name (default: the output file name without .rws)")
	layers := fs.String("layers", "auto", "layer `selection`: first:N, auto, auto:T, or comma-separated name patterns")
	order := fs.String("order", "", "module order from the input, comma-separated (default: recorded or natural)")
	codec := fs.String("codec", "none", "quantization: none (the model's float type), linear, log, tanh or gauss")
	bits := fs.Int("bits", 8, "bits per value for linear, log, tanh and gauss (1–8; log needs 2)")
	gran := fs.String("granularity", "tensor", "quantization ranges per tensor or per output channel: tensor|channel")
	bnStats := fs.Bool("bn-stats", false, "also store the robust models' batch-norm running statistics of the selected layers (their float64 mean, rounded once), for rws patch --bn-stats signature")
	force := fs.Bool("force", false, "replace an existing output file")
	asJSON := fs.Bool("json", false, "print JSON: {file, signature: {name, variant, codec, bits, layers, values, file_bytes, model_bytes, compression_ratio, tensors:[…], bn_stats:[…], bn_stats_layers}, layer_deltas}")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("extract: unexpected argument %q (checkpoints are given with --init, --clean and --robust)", pos[0])
	}
	if *clean == "" || len(robust) == 0 {
		return usagef("extract: need --clean and at least one --robust")
	}
	inputs := append([]string{*init, *clean}, robust...)
	if err := checkOutput(*out, *force, inputs...); err != nil {
		return err
	}
	cd, err := quant.ParseCodec(*codec)
	if err != nil {
		return withHint(err, "choose --codec none, linear, log, tanh or gauss")
	}
	spec := quant.Spec{Codec: cd, Bits: *bits}
	if cd == quant.None {
		spec.Bits = 0
	}
	if err := spec.Validate(); err != nil {
		return withHint(err, "use --bits 1 to 8 (log: 2 to 8)")
	}
	g, err := quant.ParseGranularity(*gran)
	if err != nil {
		return err
	}
	if *name == "" {
		*name = strings.TrimSuffix(filepath.Base(*out), filepath.Ext(*out))
	}
	update, done := a.progress()
	sig, choice, err := signature.Extract(ctx, signature.ExtractOptions{
		Init: *init, Clean: *clean, Robust: robust, Name: *name, Layers: *layers, Order: layer.ParseStated(*order),
		Spec: spec, Granularity: g, Command: commandLine("extract", args), BNStats: *bnStats,
		Progress: func(i, n int) { update("extract: tensor %d of %d", i, n) },
	})
	done()
	if err != nil {
		if errors.Is(err, signature.ErrMismatch) {
			return withHint(err, "the checkpoints must share one architecture and its parameter names")
		}
		if errors.Is(err, signature.ErrNoStats) {
			return withHint(err, "leave out --bn-stats, or select layers followed by batch norm (e.g. --layers first:N of a model with batch norm)")
		}
		return err
	}
	if err := sig.Write(*out, signature.WriteOptions{Force: *force}); err != nil {
		return err
	}
	d := sig.Describe()
	if *asJSON {
		return a.json(struct {
			File        string                 `json:"file"`
			Signature   *signature.Description `json:"signature"`
			LayerDeltas []signature.LayerDelta `json:"layer_deltas,omitempty"`
		}{*out, d, choice.Deltas})
	}
	a.printf("wrote %s\n%s\n", *out, d.String())
	if len(choice.Deltas) > 0 {
		a.printf("relative difference ‖θc−θstd‖/‖θstd‖ per weight layer, from the input:\n")
		tw := tabwriter.NewWriter(a.stdout, 0, 4, 2, ' ', 0)
		for _, ld := range choice.Deltas {
			mark := ""
			if ld.Kept {
				mark = "kept"
			}
			fmt.Fprintf(tw, "  %s\t%.4g\t%s\n", ld.Layer, ld.Relative, mark)
		}
		tw.Flush()
	}
	return nil
}
