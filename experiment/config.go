package experiment

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/quant"
)

//go:embed default.toml
var defaultTOML string

// DefaultTOML returns the text of the default study's configuration, with its comments.
func DefaultTOML() string { return defaultTOML }

// Config describes a study: the data, the architecture, the corruptions, the training recipes,
// the signature layers and the variants the report compares. Its TOML form is documented in
// DefaultTOML.
type Config struct {
	// Name names the study in the report.
	Name string `toml:"name" json:"name"`
	// Seed drives the data subsets, the model initialisation and the training order.
	Seed uint64 `toml:"seed" json:"seed"`
	// Arch is the architecture, one of nn.Archs().
	Arch string `toml:"arch" json:"arch"`
	// Dataset is a dataset spec with a train and a test split, e.g. "mnist".
	Dataset string `toml:"dataset" json:"dataset"`
	// Suite is the corruption suite, e.g. "mnist-c".
	Suite string `toml:"suite" json:"suite"`
	// Corruptions lists the corruptions studied; empty means all of the suite's.
	Corruptions []string `toml:"corruptions" json:"corruptions"`
	// Severity is the severity of every corruption; 0 means each corruption's first.
	Severity int `toml:"severity" json:"severity"`
	// Geometric names the corruptions summarised apart as geometric.
	Geometric []string `toml:"geometric" json:"geometric"`
	// Layers is the signature's layer selection, as rws extract --layers takes it ("first:4").
	Layers string `toml:"layers" json:"layers"`

	Data        Data        `toml:"data" json:"data"`
	Pretrain    Recipe      `toml:"pretrain" json:"pretrain"`
	Finetune    Recipe      `toml:"finetune" json:"finetune"`
	Seeds       Seeds       `toml:"seeds" json:"seeds"`
	Update      Recipe      `toml:"update" json:"update"`
	Multi       Recipe      `toml:"multi" json:"multi"`
	Alpha       Alpha       `toml:"alpha" json:"alpha"`
	Composition Composition `toml:"composition" json:"composition"`
	Lightweight Lightweight `toml:"lightweight" json:"lightweight"`
	Transfer    Transfer    `toml:"transfer" json:"transfer"`
}

// file is a config file: the configuration and its [quick] table, applied on top by Load when
// quick is asked for.
type file struct {
	Config
	Quick toml.Primitive `toml:"quick"`
}

// Data sets how many images each part of the study uses. Training subsets are disjoint parts
// of a seeded permutation of the training split; test sets are the first Test images of a
// seeded permutation of the test split, the same images for every corruption.
type Data struct {
	Pretrain int `toml:"pretrain" json:"pretrain"`
	Finetune int `toml:"finetune" json:"finetune"`
	Update   int `toml:"update" json:"update"`
	Holdout  int `toml:"holdout" json:"holdout"`
	Test     int `toml:"test" json:"test"`
	// MatrixTest is the number of test images (the first of each set) for the cells of the
	// accuracy matrix off its diagonal: θ_c and θ_std + RWS_c on the other corruptions.
	MatrixTest int `toml:"matrix_test" json:"matrix_test"`
	// CleanTest is the number of clean test images (the Test images and the next ones of the
	// same permutation) for the clean accuracies of θ_std, θ_c and the patched models in the
	// patching table: a clean drop is a small difference and needs more images than the
	// corrupted sets. 0 means Test.
	CleanTest   int    `toml:"clean_test" json:"clean_test"`
	CorruptSeed uint64 `toml:"corrupt_seed" json:"corrupt_seed"`
}

// Recipe is a training recipe: SGD with momentum and weight decay at a constant rate.
type Recipe struct {
	Epochs      int     `toml:"epochs" json:"epochs"`
	Batch       int     `toml:"batch" json:"batch"`
	LR          float64 `toml:"lr" json:"lr"`
	Momentum    float64 `toml:"momentum" json:"momentum"`
	WeightDecay float64 `toml:"weight_decay" json:"weight_decay"`
}

// Seeds configures the repeat of the fine-tunes with a second training seed (observation 2).
type Seeds struct {
	// Corruptions lists the corruptions repeated; empty means all studied (see seedCorruptions).
	Corruptions []string `toml:"corruptions" json:"corruptions"`
	Seed        uint64   `toml:"seed" json:"seed"`
}

// Alpha lists the signature strengths of the scaling sweep.
type Alpha struct {
	Values []float64 `toml:"values" json:"values"`
}

// Composition configures the rules that apply all signatures at once.
type Composition struct {
	// Lambdas are the scales tried on held-out data.
	Lambdas []float64 `toml:"lambdas" json:"lambdas"`
	// Trim is the share of each signature's largest values TIES keeps, per tensor.
	Trim float64 `toml:"trim" json:"trim"`
	// MaxCleanDrop is the most clean held-out accuracy, in points, a choice may give up.
	MaxCleanDrop float64 `toml:"max_clean_drop" json:"max_clean_drop"`
}

// Lightweight lists the signature variants measured for size against accuracy.
type Lightweight struct {
	// Layers are the numbers of layers kept (unquantized), each from the input.
	Layers []int   `toml:"layers" json:"layers"`
	Codecs []Codec `toml:"codecs" json:"codecs"`
}

// Codec is a quantizer with the code widths to try.
type Codec struct {
	Codec string `toml:"codec" json:"codec"`
	Bits  []int  `toml:"bits" json:"bits"`
}

// Transfer configures observation 3: fine-tunes from the same θ0 on a second dataset.
type Transfer struct {
	// Dataset is the second dataset's spec; empty turns observation 3 off.
	Dataset  string `toml:"dataset" json:"dataset"`
	Finetune int    `toml:"finetune" json:"finetune"`
	Test     int    `toml:"test" json:"test"`
	Recipe
}

// cleanTest is the number of clean test images of the patching table (see Data.CleanTest).
func (d Data) cleanTest() int {
	if d.CleanTest == 0 {
		return d.Test
	}
	return d.CleanTest
}

// Load returns the configuration: the default one, with the TOML file at path (when not empty)
// on top, and its [quick] table (or, when it has none, the default's) on top of that when
// quick is set. Unknown keys are an error.
func Load(path string, quick bool) (*Config, error) {
	if path == "" {
		return parse("", "", quick)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment: %w", err)
	}
	return parse(string(data), path, quick)
}

// Parse returns the configuration in the TOML text data on top of the default one (see Load).
func Parse(data string, quick bool) (*Config, error) { return parse(data, "the given config", quick) }

func parse(data, src string, quick bool) (*Config, error) {
	var f file
	md, err := toml.Decode(defaultTOML, &f)
	if err != nil {
		return nil, fmt.Errorf("experiment: the embedded default config: %w", err)
	}
	quickMD, quickTab, quickSrc := md, f.Quick, "the default config"
	if src != "" {
		f.Quick = toml.Primitive{}
		umd, err := decodeStrict(data, &f)
		if err != nil {
			return nil, fmt.Errorf("experiment: config %s: %w", src, err)
		}
		if umd.IsDefined("quick") {
			quickMD, quickTab, quickSrc = umd, f.Quick, src
		}
	}
	cfg := f.Config
	if quick {
		if err := quickMD.PrimitiveDecode(quickTab, &cfg); err != nil {
			return nil, fmt.Errorf("experiment: [quick] of %s: %w", quickSrc, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &cfg, nil
}

// decodeStrict decodes data onto v and refuses keys that v has no field for.
func decodeStrict(data string, v *file) (toml.MetaData, error) {
	md, err := toml.Decode(data, v)
	if err != nil {
		return md, err
	}
	var unknown []string
	for _, k := range md.Undecoded() {
		if len(k) > 0 && k[0] == "quick" {
			continue // decoded later, with PrimitiveDecode
		}
		unknown = append(unknown, k.String())
	}
	if len(unknown) > 0 {
		return md, fmt.Errorf("unknown keys %q (rws demo --print-config shows the known ones)", unknown)
	}
	return md, nil
}

// TOML returns the configuration as TOML, without the [quick] table.
func (c *Config) TOML() string {
	var b bytes.Buffer
	if err := toml.NewEncoder(&b).Encode(c); err != nil {
		return fmt.Sprintf("# cannot encode the configuration: %v\n", err)
	}
	return b.String()
}

// Validate checks the configuration and fills in the corruption list when it is empty.
func (c *Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("experiment: config: "+format, args...)
	}
	suite, err := corrupt.Lookup(c.Suite)
	if err != nil {
		return bad("suite: %w", err)
	}
	if len(c.Corruptions) == 0 {
		c.Corruptions = suite.Corruptions()
	}
	seen := map[string]bool{}
	for _, name := range c.Corruptions {
		sev := suite.Severities(name)
		if sev == nil {
			return bad("corruption %q is not in suite %q (it has %s)", name, c.Suite, strings.Join(suite.Corruptions(), ", "))
		}
		if seen[name] {
			return bad("corruption %q listed twice", name)
		}
		seen[name] = true
		if c.Severity != 0 && !slices.Contains(sev, c.Severity) {
			return bad("severity %d: corruption %q has severities %v", c.Severity, name, sev)
		}
	}
	if c.Name == "" || c.Arch == "" || c.Dataset == "" {
		return bad("name, arch and dataset must be set")
	}
	if !strings.HasPrefix(c.Layers, "first:") {
		return bad("layers %q: the study takes first:N (the first N weight layers)", c.Layers)
	}
	if _, err := c.LayerCount(); err != nil {
		return bad("%v", err)
	}
	d := c.Data
	if d.Pretrain < 1 || d.Finetune < 1 || d.Update < 1 || d.Holdout < 1 || d.Test < 1 || d.MatrixTest < 1 {
		return bad("data: pretrain, finetune, update, holdout, test and matrix_test must be positive, got %+v", d)
	}
	if d.CleanTest != 0 && d.CleanTest < d.Test {
		return bad("data: clean_test = %d is below test = %d (it counts the test images too; 0 means test)", d.CleanTest, d.Test)
	}
	for name, r := range map[string]Recipe{"pretrain": c.Pretrain, "finetune": c.Finetune, "update": c.Update, "multi": c.Multi, "transfer": c.Transfer.Recipe} {
		if r.Epochs < 1 || r.Batch < 1 || !(r.LR > 0) || r.Momentum < 0 || r.WeightDecay < 0 {
			return bad("[%s]: epochs, batch and lr must be positive, momentum and weight_decay not negative, got %+v", name, r)
		}
	}
	if len(c.Alpha.Values) == 0 || !slices.Contains(c.Alpha.Values, 0) || !slices.Contains(c.Alpha.Values, 1) {
		return bad("alpha.values %v must include 0 and 1", c.Alpha.Values)
	}
	if len(c.Composition.Lambdas) == 0 || !(c.Composition.Trim > 0 && c.Composition.Trim <= 1) {
		return bad("composition: lambdas must not be empty and 0 < trim ≤ 1")
	}
	n, _ := c.LayerCount()
	for _, k := range c.Lightweight.Layers {
		if k < 1 || k > n {
			return bad("lightweight.layers: %d is outside 1..%d (the signature's layers)", k, n)
		}
	}
	for _, q := range c.Lightweight.Codecs {
		for _, b := range q.Bits {
			if err := (quant.Spec{Codec: quant.Codec(q.Codec), Bits: b}).Validate(); err != nil {
				return bad("lightweight: %w", err)
			}
		}
	}
	if c.Transfer.Dataset != "" && (c.Transfer.Finetune < 1 || c.Transfer.Test < 1) {
		return bad("transfer: finetune and test must be positive")
	}
	return nil
}

// LayerCount is N of the "first:N" layer selection.
func (c *Config) LayerCount() (int, error) {
	var n int
	if _, err := fmt.Sscanf(c.Layers, "first:%d", &n); err != nil || n < 1 || fmt.Sprintf("first:%d", n) != c.Layers {
		return 0, errors.New("layers " + fmt.Sprintf("%q", c.Layers) + ": want first:N with N ≥ 1")
	}
	return n, nil
}

// severity returns the severity used for corruption name.
func (c *Config) severity(suite *corrupt.Suite, name string) int {
	if c.Severity != 0 {
		return c.Severity
	}
	return suite.Severities(name)[0]
}

// isGeometric reports whether name is listed as geometric.
func (c *Config) isGeometric(name string) bool { return slices.Contains(c.Geometric, name) }

// seedCorruptions returns the corruptions repeated with the second seed: those of
// Seeds.Corruptions that are studied, all studied ones when the list is empty, and the first
// five studied ones when none of the list is.
func (c *Config) seedCorruptions() []string {
	if len(c.Seeds.Corruptions) == 0 {
		return c.Corruptions
	}
	var out []string
	for _, name := range c.Seeds.Corruptions {
		if slices.Contains(c.Corruptions, name) {
			out = append(out, name)
		}
	}
	if len(out) == 0 {
		out = c.Corruptions[:min(5, len(c.Corruptions))]
	}
	return out
}
