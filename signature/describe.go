package signature

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Description explains a signature file; String puts it in words.
type Description struct {
	Path        string              `json:"path"`
	Format      string              `json:"format"`
	Version     int                 `json:"version"`
	Name        string              `json:"name"`
	Variant     Variant             `json:"variant"`
	Codec       string              `json:"codec"`
	Bits        int                 `json:"bits"`
	Granularity string              `json:"granularity"`
	Layers      []string            `json:"layers"`
	Selection   string              `json:"selection"`
	Values      int64               `json:"values"`
	FileBytes   int64               `json:"file_bytes"`
	ModelBytes  int64               `json:"model_bytes"`
	Ratio       float64             `json:"compression_ratio"`
	MaxError    float64             `json:"max_error"`
	RelError    float64             `json:"rel_error"`
	Sources     Sources             `json:"sources"`
	Command     string              `json:"command"`
	Tensors     []TensorDescription `json:"tensors"`
	// Stats describes the batch-norm running statistics the signature carries (none unless
	// extracted with them); StatLayers are their layers.
	Stats      []StatDescription `json:"bn_stats,omitempty"`
	StatLayers []string          `json:"bn_stats_layers,omitempty"`
}

// StatDescription is one running statistic of a Description.
type StatDescription struct {
	Name        string  `json:"name"`
	Shape       []int64 `json:"shape"`
	DType       string  `json:"dtype"`
	StoredBytes int64   `json:"stored_bytes"`
}

// TensorDescription is one tensor of a Description.
type TensorDescription struct {
	Name        string  `json:"name"`
	Shape       []int64 `json:"shape"`
	DType       string  `json:"dtype"`
	Groups      int     `json:"groups"`
	StoredBytes int64   `json:"stored_bytes"`
	Norm        float64 `json:"norm"`
	MaxError    float64 `json:"max_error"`
	RelError    float64 `json:"rel_error"`
	// Clean is the SHA-256 of the tensor in the clean model the signature was extracted from.
	Clean string `json:"clean_sha256"`
}

// Describe reads and checks the signature file at path and describes it.
func Describe(path string) (*Description, error) {
	s, err := Read(path)
	if err != nil {
		return nil, err
	}
	return s.Describe(), nil
}

// Describe describes s.
func (s *Signature) Describe() *Description {
	d := &Description{
		Path: s.Path, Format: FormatName, Version: s.Version, Name: s.Name, Variant: s.Variant,
		Codec: string(s.Spec.Codec), Bits: s.Spec.CodeBits(), Granularity: string(s.Granularity),
		Layers: s.Layers, Selection: s.Selection, Values: s.Elements(), FileBytes: s.FileBytes,
		ModelBytes: s.ModelBytes, Ratio: s.Ratio(), Sources: s.Sources, Command: s.Command,
	}
	var e2, n2 float64
	for _, t := range s.Tensors {
		d.Tensors = append(d.Tensors, TensorDescription{Name: t.Name, Shape: t.Shape, DType: string(t.DType),
			Groups: t.Groups, StoredBytes: t.StoredBytes(), Norm: t.Norm, MaxError: t.MaxError, RelError: t.RelError,
			Clean: t.Sources.Clean})
		d.MaxError = math.Max(d.MaxError, t.MaxError)
		e2 += t.RelError * t.RelError * t.Norm * t.Norm
		n2 += t.Norm * t.Norm
	}
	if n2 > 0 {
		d.RelError = math.Sqrt(e2 / n2)
	}
	for _, st := range s.Stats {
		d.Stats = append(d.Stats, StatDescription{Name: st.Name, Shape: st.Shape, DType: string(st.DType), StoredBytes: st.StoredBytes()})
	}
	d.StatLayers = s.statLayers()
	return d
}

// writeStats explains the running statistics of d in words.
func (d *Description) writeStats(b *strings.Builder, robust int) {
	var kinds []string
	types := map[string]bool{}
	var typeList []string
	for _, st := range d.Stats {
		k := st.Name[strings.LastIndexByte(st.Name, '.')+1:]
		if !slices.Contains(kinds, k) {
			kinds = append(kinds, k)
		}
		if !types[st.DType] {
			types[st.DType] = true
			typeList = append(typeList, st.DType)
		}
	}
	whose := "the robust model's"
	if robust > 1 {
		whose = fmt.Sprintf("the mean of the %d robust models'", robust)
	}
	fmt.Fprintf(b, "  statistics:  batch-norm %s of %d layers (%s)\n", strings.Join(kinds, " and "), len(d.StatLayers), strings.Join(d.StatLayers, ", "))
	fmt.Fprintf(b, "               %s, stored as they are (%s), not as a difference\n", whose, strings.Join(typeList, ", "))
	fmt.Fprintf(b, "               rws patch --bn-stats signature puts (1−α)·model + α·these in place of the model's;\n")
	fmt.Fprintf(b, "               by default rws patch keeps the model's\n")
}

// Bytes formats a byte count with a decimal unit, e.g. "4.58 MB".
func Bytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.2f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}

// String explains the signature in words, one fact per line.
func (d *Description) String() string {
	var b strings.Builder
	name := d.Name
	if name == "" {
		name = "(unnamed)"
	}
	fmt.Fprintf(&b, "robust weight signature %q (%s version %d)\n", name, d.Format, d.Version)
	switch d.Variant {
	case Projection:
		fmt.Fprintf(&b, "  variant:     projection: (θ_c − θ₀) with its component along the clean change (θ_std − θ₀) removed, per tensor\n")
	case Difference:
		fmt.Fprintf(&b, "  variant:     difference: θ_c − θ_std (no starting point θ₀ was given)\n")
	}
	robust := len(d.Sources.Robust)
	if robust > 1 {
		fmt.Fprintf(&b, "               averaged over %d robust models\n", robust)
	}
	fmt.Fprintf(&b, "  layers:      %d modules: %s\n", len(d.Layers), strings.Join(d.Layers, ", "))
	if d.Selection != "" {
		fmt.Fprintf(&b, "               chosen as %s\n", d.Selection)
	}
	fmt.Fprintf(&b, "  values:      %d in %d tensors\n", d.Values, len(d.Tensors))
	if len(d.Stats) > 0 {
		d.writeStats(&b, robust)
	}
	switch d.Codec {
	case "none":
		fmt.Fprintf(&b, "  codec:       none: values stored in the model's float type\n")
	default:
		per := "one range per tensor"
		if d.Granularity == "channel" {
			per = "one range per output channel (biases per tensor)"
		}
		fmt.Fprintf(&b, "  codec:       %s, %d bits per value, %s\n", d.Codec, d.Bits, per)
	}
	if d.Codec != "none" {
		fmt.Fprintf(&b, "  error:       largest |x − x̂| %.3g, relative L2 error %.3g%%\n", d.MaxError, 100*d.RelError)
	}
	if d.Ratio > 0 {
		fmt.Fprintf(&b, "  size:        %s; the full model is %s as float32: %.1f× smaller\n", Bytes(d.FileBytes), Bytes(d.ModelBytes), d.Ratio)
	} else {
		fmt.Fprintf(&b, "  size:        %s\n", Bytes(d.FileBytes))
	}
	if d.Sources.Init != "" {
		fmt.Fprintf(&b, "  from:        θ₀ %s, θ_std %s, θ_c %s\n", d.Sources.Init, d.Sources.Clean, strings.Join(d.Sources.Robust, ", "))
	} else {
		fmt.Fprintf(&b, "  from:        θ_std %s, θ_c %s\n", d.Sources.Clean, strings.Join(d.Sources.Robust, ", "))
	}
	fmt.Fprintf(&b, "               (each source tensor's SHA-256 is recorded; patch reports a model that differs as a transfer)\n")
	if d.Command != "" {
		fmt.Fprintf(&b, "  command:     %s\n", d.Command)
	}
	return strings.TrimRight(b.String(), "\n")
}
