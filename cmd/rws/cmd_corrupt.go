package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"image/png"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/dataset"
	"github.com/rws-project/rws/internal/atomicfile"
	"github.com/rws-project/rws/npy"
	"github.com/rws-project/rws/tensor"
)

func init() {
	register(&command{
		name:    "corrupt",
		summary: "apply image corruption suites (CIFAR-10-C, ImageNet-C, MNIST-C) to arrays, images or datasets",
		usage: `rws corrupt (--input FILE | --dataset SPEC [--split S]) --suite SUITE
       [--corruption NAME[,NAME…]|all] [--severity 1..5|all] [--seed N] [--limit N]
       (-o OUT | --sheet FILE.png) [--force] [--json]

--input takes a uint8 .npy array N×H×W or N×H×W×3 (the output has the same layout), or one PNG or
JPEG image (-o then names a folder of PNG files NAME-SEVERITY.png). --dataset takes a dataset spec, one of
  ` + strings.ReplaceAll(dataset.SpecSyntax, " | ", "\n  ") + `
and writes N×H×W×C arrays, plus labels.npy (int64) when -o is a folder.

With one corruption -o names a .npy file; with several, a folder holding one NAME.npy each.
--severity all adds a leading axis: one block per severity, severity 1 first. MNIST-C corruptions
have one fixed severity each: omit --severity. Image i uses its own random stream, derived from
--seed, the suite, corruption, severity and i, so results do not depend on the number of cores.
Nothing is written unless every output succeeds; existing files are replaced only with --force.`,
		run: runCorrupt,
	})
}

// corruptOptions are the flags of rws corrupt.
type corruptOptions struct {
	input, spec, split string
	limit              int
	suite, corruption  string
	severity           string
	seed               uint64
	out                string
	force              bool
	sheet              string
	sheetImages        int
	frost              string
	json               bool
}

// corruptSummary is the --json output.
type corruptSummary struct {
	Input      string          `json:"input"`
	Split      string          `json:"split,omitempty"`
	Suite      string          `json:"suite"`
	Seed       uint64          `json:"seed"`
	Images     int             `json:"images"`
	ImageShape []int           `json:"image_shape"` // H, W, C
	Outputs    []corruptOutput `json:"outputs"`
	Labels     string          `json:"labels,omitempty"`
	Sheet      string          `json:"sheet,omitempty"`
	Seconds    float64         `json:"seconds"`
}

type corruptOutput struct {
	Corruption string          `json:"corruption"`
	Path       string          `json:"path,omitempty"`  // the .npy file, for arrays
	Shape      []int64         `json:"shape,omitempty"` // of the .npy file
	Severities []severityStats `json:"severities"`
}

type severityStats struct {
	Severity int `json:"severity"`
	// MeanAbsChange is the mean of |corrupted − clean| over all values, on the 0..255 scale.
	MeanAbsChange float64 `json:"mean_abs_change"`
	Path          string  `json:"path,omitempty"` // the PNG file, for an image input
}

func runCorrupt(ctx context.Context, a *app, args []string) error {
	c := commands["corrupt"]
	fs := a.flagSet(c)
	var o corruptOptions
	fs.StringVar(&o.input, "input", "", "input `FILE`: uint8 .npy (N×H×W or N×H×W×3), .png or .jpg")
	fs.StringVar(&o.spec, "dataset", "", "input dataset `SPEC`, e.g. mnist, cifar10:DIR, npy:X.npy")
	fs.StringVar(&o.split, "split", "", "dataset split: train or test (default test)")
	fs.IntVar(&o.limit, "limit", 0, "use only the first `N` images (0: all)")
	fs.StringVar(&o.suite, "suite", "", "corruption suite: "+strings.Join(corrupt.SuiteNames(), ", "))
	fs.StringVar(&o.corruption, "corruption", "all", "corruption `NAME`s, comma-separated, or all")
	fs.StringVar(&o.severity, "severity", "", "severity 1..5 or all (omit for mnist-c)")
	fs.Uint64Var(&o.seed, "seed", 0, "random seed")
	fs.StringVar(&o.out, "o", "", "output .npy `FILE`, or folder for several corruptions or an image input")
	fs.BoolVar(&o.force, "force", false, "replace existing output files")
	fs.StringVar(&o.sheet, "sheet", "", "also draw a contact sheet of every corruption × severity to `FILE.png`")
	fs.IntVar(&o.sheetImages, "sheet-images", 4, "number of images on the contact sheet")
	fs.StringVar(&o.frost, "frost", "", "`DIR` of frost texture images (default: procedural textures)")
	fs.BoolVar(&o.json, "json", false, "print a JSON summary: {input, suite, seed, images, outputs:[{corruption, path, shape, severities:[{severity, mean_abs_change}]}], …}")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("corrupt: unexpected argument %q (inputs are given with --input or --dataset)", pos[0])
	}
	return corruptRun(ctx, a, o)
}

// corruptPlan is what to compute: for each corruption, its severities.
type corruptPlan struct {
	suite   *corrupt.Suite
	names   []string
	sevs    [][]int
	allSevs bool // --severity all: a leading severity axis
	imageIn bool // the input is one image file
	in      *dataset.Set
	inShape []int64      // shape of one output block (the input array's layout)
	label   string       // input description for the summary
	spec    dataset.Spec // the parsed --dataset
	inputs  []string     // input files, to refuse writing over them
}

func corruptRun(ctx context.Context, a *app, o corruptOptions) error {
	start := time.Now()
	p, err := planCorrupt(o)
	if err != nil {
		return err
	}
	// Refuse existing outputs before doing any work.
	targets, err := corruptTargets(o, p)
	if err != nil {
		return err
	}
	if err := loadCorruptInput(o, p); err != nil {
		return err
	}
	if o.frost != "" {
		tex, err := corrupt.LoadTextures(o.frost)
		if err != nil {
			return withHint(err, "--frost names a folder of .png or .jpg frost textures")
		}
		p.suite = p.suite.WithOptions(corrupt.Options{Frost: tex})
	}
	sum := &corruptSummary{
		Input: p.label, Suite: p.suite.Name(), Seed: o.seed,
		Images: p.in.N, ImageShape: []int{p.in.H, p.in.W, p.in.C},
	}
	if o.spec != "" {
		sum.Split = cmp.Or(o.split, string(dataset.Test))
	}
	tx := &outputTx{}
	defer tx.abort()
	if o.out != "" {
		if err := tx.mkdir(targets.dir); err != nil {
			return err
		}
		if err := corruptOutputs(ctx, a, o, p, targets, tx, sum); err != nil {
			return err
		}
	}
	if o.sheet != "" {
		if err := corruptSheet(o, p, tx); err != nil {
			return err
		}
		sum.Sheet = o.sheet
	}
	if err := tx.commit(); err != nil {
		return err
	}
	sum.Seconds = time.Since(start).Seconds()
	if o.json {
		return a.json(sum)
	}
	printCorruptSummary(a, sum)
	return nil
}

// planCorrupt checks the flags and resolves the suite, corruptions and severities.
func planCorrupt(o corruptOptions) (*corruptPlan, error) {
	switch {
	case o.input == "" && o.spec == "":
		return nil, usagef("corrupt: no input: give --input FILE or --dataset SPEC")
	case o.input != "" && o.spec != "":
		return nil, usagef("corrupt: give --input or --dataset, not both")
	case o.split != "" && o.spec == "":
		return nil, usagef("corrupt: --split applies to --dataset only")
	case o.suite == "":
		return nil, usagef("corrupt: no --suite given (one of %s)", strings.Join(corrupt.SuiteNames(), ", "))
	case o.out == "" && o.sheet == "":
		return nil, usagef("corrupt: nothing to write: give -o OUT and/or --sheet FILE.png")
	case o.limit < 0:
		return nil, usagef("corrupt: --limit %d is negative", o.limit)
	case o.sheetImages < 1:
		return nil, usagef("corrupt: --sheet-images %d: want at least 1", o.sheetImages)
	case o.sheet != "" && !strings.EqualFold(filepath.Ext(o.sheet), ".png"):
		return nil, usagef("corrupt: --sheet %q: want a .png file", o.sheet)
	}
	if o.split != "" {
		if _, err := dataset.ParseSplit(o.split); err != nil {
			return nil, usagef("corrupt: --split %q: want train or test", o.split)
		}
	}
	suite, err := corrupt.Lookup(o.suite)
	if err != nil {
		return nil, usagef("corrupt: unknown --suite %q (one of %s)", o.suite, strings.Join(corrupt.SuiteNames(), ", "))
	}
	p := &corruptPlan{suite: suite}
	if o.corruption == "all" {
		p.names = suite.Corruptions()
	} else {
		for _, n := range strings.Split(o.corruption, ",") {
			if _, ok := suite.Corruption(n); !ok {
				return nil, usagef("corrupt: suite %s has no corruption %q (have: %s, or all)", suite.Name(), n, strings.Join(suite.Corruptions(), ", "))
			}
			if slices.Contains(p.names, n) {
				return nil, usagef("corrupt: corruption %q given twice", n)
			}
			p.names = append(p.names, n)
		}
	}
	fixed := true // every corruption has a single severity (MNIST-C)
	for _, n := range p.names {
		fixed = fixed && len(suite.Severities(n)) == 1
	}
	switch {
	case fixed && o.severity != "":
		return nil, usagef("corrupt: suite %s uses one fixed severity per corruption: omit --severity", suite.Name())
	case fixed:
		for _, n := range p.names {
			p.sevs = append(p.sevs, suite.Severities(n))
		}
	case o.severity == "":
		return nil, usagef("corrupt: suite %s needs --severity 1..5 or all", suite.Name())
	case o.severity == "all":
		p.allSevs = true
		for _, n := range p.names {
			p.sevs = append(p.sevs, suite.Severities(n))
		}
	default:
		v, err := strconv.Atoi(o.severity)
		if err != nil {
			return nil, usagef("corrupt: --severity %q: want 1..5 or all", o.severity)
		}
		for _, n := range p.names {
			if !slices.Contains(suite.Severities(n), v) {
				return nil, usagef("corrupt: --severity %d: %s %q has severities %v", v, suite.Name(), n, suite.Severities(n))
			}
			p.sevs = append(p.sevs, []int{v})
		}
	}
	if o.input != "" {
		switch strings.ToLower(filepath.Ext(o.input)) {
		case ".npy":
		case ".png", ".jpg", ".jpeg":
			p.imageIn = true
		default:
			return nil, usagef("corrupt: --input %q: want a .npy array or a .png/.jpg image", o.input)
		}
		p.inputs = []string{o.input}
	}
	if o.spec != "" {
		sp, err := dataset.ParseSpec(o.spec)
		if err != nil {
			return nil, usagef("corrupt: --dataset: %v", err)
		}
		p.spec, p.inputs = sp, []string{sp.Path, sp.Labels}
	}
	return p, nil
}

// corruptFiles are the output paths: one .npy per corruption (or one PNG per corruption and
// severity), the labels file and the folder holding them when -o is a folder.
type corruptFiles struct {
	dir    string     // folder to create, or ""
	npy    []string   // per corruption, for arrays
	png    [][]string // per corruption and severity, for an image input
	labels string
}

func corruptTargets(o corruptOptions, p *corruptPlan) (*corruptFiles, error) {
	t := &corruptFiles{}
	var all []string
	if o.out != "" {
		folder := p.imageIn || len(p.names) > 1
		isNPY := strings.EqualFold(filepath.Ext(o.out), ".npy")
		switch {
		case folder && isNPY && p.imageIn:
			return nil, usagef("corrupt: -o %q: for an image input -o names a folder of PNG files", o.out)
		case folder && isNPY:
			return nil, usagef("corrupt: -o %q: with %d corruptions -o names a folder (one NAME.npy each)", o.out, len(p.names))
		case !folder && !isNPY:
			return nil, usagef("corrupt: -o %q: with one corruption -o names a .npy file (or give several corruptions for a folder)", o.out)
		}
		if folder {
			if st, err := os.Stat(o.out); err == nil && !st.IsDir() {
				return nil, fmt.Errorf("output %q exists and is not a folder", o.out)
			}
			t.dir = o.out
		}
		for i, n := range p.names {
			switch {
			case p.imageIn:
				var files []string
				for _, v := range p.sevs[i] {
					name := n + ".png"
					if len(p.sevs[i]) > 1 || p.allSevs || o.severity != "" {
						name = fmt.Sprintf("%s-%d.png", n, v)
					}
					files = append(files, filepath.Join(o.out, name))
				}
				t.png = append(t.png, files)
				all = append(all, files...)
			case folder:
				t.npy = append(t.npy, filepath.Join(o.out, n+".npy"))
			default:
				t.npy = append(t.npy, o.out)
			}
		}
		all = append(all, t.npy...)
		if folder && o.spec != "" {
			t.labels = filepath.Join(o.out, "labels.npy")
			all = append(all, t.labels)
		}
	}
	if o.sheet != "" {
		all = append(all, o.sheet)
	}
	seen := map[string]bool{}
	for _, f := range all {
		if seen[f] {
			return nil, usagef("corrupt: output %q is named twice", f)
		}
		seen[f] = true
		if err := checkOutput(f, o.force, p.inputs...); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// loadCorruptInput reads the input into p.in and records its array layout.
func loadCorruptInput(o corruptOptions, p *corruptPlan) error {
	switch {
	case o.spec != "":
		s, err := p.spec.Open(dataset.Split(cmp.Or(o.split, string(dataset.Test))))
		if err != nil {
			return err
		}
		p.in = s.Limit(o.limit)
		p.label = o.spec
		p.inShape = []int64{int64(p.in.N), int64(p.in.H), int64(p.in.W), int64(p.in.C)}
	case p.imageIn:
		s, err := dataset.ReadImage(o.input)
		if err != nil {
			return err
		}
		p.in, p.label = s, o.input
	default:
		r, err := npy.ReadFile(o.input)
		if err != nil {
			return err
		}
		sh := r.Shape
		if r.DType != tensor.U8 || !(len(sh) == 3 || (len(sh) == 4 && (sh[3] == 1 || sh[3] == 3))) {
			return withHint(fmt.Errorf("input %q holds %s %v, want uint8 N×H×W or N×H×W×3", o.input, r.DType, sh),
				"convert in NumPy with a.astype(np.uint8); channels go last")
		}
		s := &dataset.Set{Name: o.input, N: int(sh[0]), H: int(sh[1]), W: int(sh[2]), C: 1, Images: r.Data}
		if len(sh) == 4 {
			s.C = int(sh[3])
		}
		p.in, p.label = s.Limit(o.limit), o.input
		p.inShape = slices.Clone(sh)
		p.inShape[0] = int64(p.in.N)
	}
	if p.in.N == 0 {
		return fmt.Errorf("input %q holds no images", p.label)
	}
	return nil
}

func corruptOutputs(ctx context.Context, a *app, o corruptOptions, p *corruptPlan, t *corruptFiles, tx *outputTx, sum *corruptSummary) error {
	update, done := a.progress()
	defer done()
	buf := make([]byte, len(p.in.Images))
	for i, name := range p.names {
		out := corruptOutput{Corruption: name}
		var w *npy.Writer
		if !p.imageIn {
			shape := slices.Clone(p.inShape)
			if p.allSevs {
				shape = append([]int64{int64(len(p.sevs[i]))}, shape...)
			}
			var err error
			if w, err = npy.Create(t.npy[i], npy.Header{DType: tensor.U8, Shape: shape}, npy.WriteOptions{Force: o.force}); err != nil {
				return err
			}
			tx.addNPY(w)
			out.Path, out.Shape = t.npy[i], shape
		}
		for k, sev := range p.sevs[i] {
			opt := dataset.CorruptOptions{Seed: o.seed, Progress: func(n int) {
				update("%s %s severity %d: %d/%d images", p.suite.Name(), name, sev, n, p.in.N)
			}}
			if err := dataset.CorruptInto(ctx, buf, p.in, p.suite, name, sev, opt); err != nil {
				return err
			}
			st := severityStats{Severity: sev, MeanAbsChange: meanAbsChange(p.in.Images, buf)}
			if p.imageIn {
				b, err := dataset.EncodePNG(buf, p.in.H, p.in.W, p.in.C)
				if err != nil {
					return err
				}
				tx.addFile(t.png[i][k], b, o.force)
				st.Path = t.png[i][k]
			} else if _, err := w.Write(buf); err != nil {
				return err
			}
			out.Severities = append(out.Severities, st)
		}
		sum.Outputs = append(sum.Outputs, out)
	}
	if t.labels != "" && p.in.Labels != nil {
		var b []byte
		for _, l := range p.in.Labels {
			b = binary.LittleEndian.AppendUint64(b, uint64(int64(l)))
		}
		hb, err := npy.Header{DType: tensor.I64, Shape: []int64{int64(len(p.in.Labels))}}.Marshal()
		if err != nil {
			return err
		}
		tx.addFile(t.labels, append(hb, b...), o.force)
		sum.Labels = t.labels
	}
	return nil
}

// corruptSheet draws the contact sheet of the selected corruptions and severities.
func corruptSheet(o corruptOptions, p *corruptPlan, tx *outputTx) error {
	var list []corrupt.Corruption
	for i, n := range p.names {
		c, _ := p.suite.Corruption(n)
		c.Severities = p.sevs[i]
		list = append(list, c)
	}
	sub, err := corrupt.NewSuite(p.suite.Name(), p.suite.Quantize(), p.suite.MinSide(), list)
	if err != nil {
		return err
	}
	sub = sub.WithOptions(p.suite.Options())
	var imgs []corrupt.Image
	for i := range min(o.sheetImages, p.in.N) {
		img, err := corrupt.FromUint8(p.in.Image(i), p.in.H, p.in.W, p.in.C)
		if err != nil {
			return err
		}
		imgs = append(imgs, img)
	}
	sheet, err := corrupt.Sheet(sub, imgs, o.seed)
	if err != nil {
		return err
	}
	var b bytes.Buffer
	if err := png.Encode(&b, sheet); err != nil {
		return err
	}
	tx.addFile(o.sheet, b.Bytes(), o.force)
	return nil
}

func meanAbsChange(a, b []byte) float64 {
	var s int64
	for i := range a {
		d := int64(a[i]) - int64(b[i])
		if d < 0 {
			d = -d
		}
		s += d
	}
	return float64(s) / float64(max(len(a), 1))
}

func printCorruptSummary(a *app, s *corruptSummary) {
	a.printf("%s: %d images %dx%dx%d, suite %s, seed %d\n", s.Input, s.Images, s.ImageShape[0], s.ImageShape[1], s.ImageShape[2], s.Suite, s.Seed)
	for _, o := range s.Outputs {
		var parts []string
		for _, v := range o.Severities {
			parts = append(parts, fmt.Sprintf("%d: %.2f", v.Severity, v.MeanAbsChange))
		}
		a.printf("  %-18s mean |change| %s", o.Corruption, strings.Join(parts, "  "))
		if o.Path != "" {
			a.printf("  -> %s %v", o.Path, o.Shape)
		}
		a.printf("\n")
	}
	if s.Labels != "" {
		a.printf("  labels -> %s\n", s.Labels)
	}
	if s.Sheet != "" {
		a.printf("  contact sheet -> %s\n", s.Sheet)
	}
}

// outputTx collects the outputs of one command and makes them appear together: .npy writers stay
// uncommitted and small files stay in memory until commit; abort removes every trace, including
// a folder the command created.
type outputTx struct {
	writers    []*npy.Writer
	files      []pendingFile
	createdDir string
	committed  []string
	done       bool
}

type pendingFile struct {
	path  string
	data  []byte
	force bool
}

// mkdir creates dir (and records it for removal on abort) when it does not exist.
func (t *outputTx) mkdir(dir string) error {
	if dir == "" {
		return nil
	}
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	t.createdDir = dir
	return nil
}

func (t *outputTx) addNPY(w *npy.Writer) { t.writers = append(t.writers, w) }

func (t *outputTx) addFile(path string, data []byte, force bool) {
	t.files = append(t.files, pendingFile{path, data, force})
}

// commit commits every output; on a failure it removes those already committed.
func (t *outputTx) commit() error {
	for len(t.writers) > 0 {
		w := t.writers[0]
		t.writers = t.writers[1:]
		if err := w.Commit(); err != nil {
			return err
		}
		t.committed = append(t.committed, w.Path())
	}
	for len(t.files) > 0 {
		f := t.files[0]
		t.files = t.files[1:]
		if err := atomicfile.WriteFile(f.path, f.data, atomicfile.Options{Force: f.force}); err != nil {
			return err
		}
		t.committed = append(t.committed, f.path)
	}
	t.done = true
	return nil
}

// abort discards everything not committed, and what was committed when commit did not finish.
func (t *outputTx) abort() {
	if t.done {
		return
	}
	for _, w := range t.writers {
		w.Abort()
	}
	for _, p := range t.committed {
		os.Remove(p)
	}
	if t.createdDir != "" {
		os.Remove(t.createdDir) // only if empty
	}
	t.done = true
}
