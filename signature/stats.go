package signature

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/rws-project/rws/layer"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// Batch-norm running statistics are not signature material: they are not learned by the
// gradient but averaged over the data a model saw, so a difference of them means nothing. A
// signature may carry the robust models' statistics as they are, for the second of the three
// policies of METHODS.md §1 (keep the model's; take the robust model's; re-estimate them on
// corrupted data, which is rws recalibrate). This file holds that policy: extraction, the file
// format's part, and patching.

// keyBNStats is the metadata key listing a signature's running statistics (see RunningStat).
const keyBNStats = "rws.signature.bn_stats"

// ErrNoStats is wrapped when running statistics are asked for where there are none: extraction
// with BNStats from layers without batch norm, or a patch with SignatureStats whose signatures
// carry none.
var ErrNoStats = errors.New("no batch-norm running statistics")

// RunningStat is a batch-norm running statistic (a running_mean or running_var tensor) of the
// robust models a signature was extracted from: their element-wise mean, computed in float64 and
// rounded once into their float type, stored as is (not as a difference, and never quantized).
// num_batches_tracked is not among them: it is an I64 count of training steps, not a statistic of
// the data, and patching leaves it alone.
type RunningStat struct {
	// Name is the model tensor, e.g. "features.1.running_var".
	Name string `json:"name"`
	// Shape is the tensor's shape, [channels].
	Shape []int64 `json:"shape"`
	// DType is the robust models' type for the tensor, in which the values are stored.
	DType tensor.DType `json:"dtype"`
	// SHA256 is the hex digest of the stored bytes.
	SHA256 string `json:"sha256"`
	// Sources fingerprints the tensor in the clean and the robust checkpoints.
	Sources Fingerprints `json:"source_sha256"`

	raw []byte // the values in DType
}

// isStat reports whether a tensor name is a batch-norm running mean or variance.
func isStat(name string) bool {
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "running_mean", "running_var":
		return true
	}
	return false
}

// Elements is the number of values of st.
func (st *RunningStat) Elements() int64 { return tensor.Elements(st.Shape) }

// StoredBytes is the number of data bytes st takes in the file.
func (st *RunningStat) StoredBytes() int64 { return int64(len(st.raw)) }

// Values decodes the statistic's values, exactly, into a new slice.
func (st *RunningStat) Values() ([]float64, error) {
	out := make([]float64, st.Elements())
	if err := tensor.DecodeFloat64(st.DType, st.raw, out); err != nil {
		return nil, fmt.Errorf("signature: running statistic %q: %w", st.Name, err)
	}
	for i, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("signature: running statistic %q: value %d is %v", st.Name, i, v)
		}
	}
	return out, nil
}

// Stat returns the running statistic for the model tensor name, or nil.
func (s *Signature) Stat(name string) *RunningStat {
	for _, st := range s.Stats {
		if st.Name == name {
			return st
		}
	}
	return nil
}

// statLayers lists the modules whose statistics s carries, in s.Layers' order.
func (s *Signature) statLayers() []string {
	has := map[string]bool{}
	for _, st := range s.Stats {
		has[moduleOf(st.Name)] = true
	}
	var out []string
	for _, l := range s.Layers {
		if has[l] {
			out = append(out, l)
		}
	}
	return out
}

// fileVersion is the format version of s's file: StatsVersion when it carries running
// statistics, so that readers older than them refuse the file instead of misreading it, and
// Version otherwise, so that every rws reads it.
func (s *Signature) fileVersion() int {
	if len(s.Stats) > 0 {
		return StatsVersion
	}
	return Version
}

// storedStats returns the safetensors tensors that hold s's running statistics.
func (s *Signature) storedStats() []safetensors.Tensor {
	var out []safetensors.Tensor
	for _, st := range s.Stats {
		out = append(out, safetensors.Tensor{Name: st.Name, DType: st.DType, Shape: st.Shape, Data: st.raw})
	}
	return out
}

// loadStats reads the running statistics listed in meta (a file of format version ver) from r,
// checks them and marks their stored names in want. names holds the signature tensors' names.
// Every problem is a *FormatError.
func (s *Signature) loadStats(r *stored, meta map[string]string, ver int, want map[string]bool, names map[string]bool) error {
	bad := func(format string, args ...any) error {
		return &FormatError{Path: s.Path, Detail: fmt.Sprintf(format, args...)}
	}
	list, ok := meta[keyBNStats]
	switch {
	case ver < StatsVersion && ok:
		return bad("version %d cannot carry running statistics, yet %s is set", ver, keyBNStats)
	case ver < StatsVersion:
		return nil
	case !ok:
		return bad("version %d lists no running statistics (%s is missing)", ver, keyBNStats)
	}
	if err := json.Unmarshal([]byte(list), &s.Stats); err != nil {
		return bad("metadata %s: %v", keyBNStats, err)
	}
	if len(s.Stats) == 0 {
		return bad("version %d lists no running statistics", ver)
	}
	layers := map[string]bool{}
	for _, l := range s.Layers {
		layers[l] = true
	}
	for _, st := range s.Stats {
		if st == nil || !isStat(st.Name) || strings.Contains(st.Name, ":") {
			return bad("running statistic %q: not a running_mean or running_var tensor name", nameOf(st))
		}
		if names[st.Name] {
			return bad("tensor %q listed twice", st.Name)
		}
		names[st.Name] = true
		if !layers[moduleOf(st.Name)] {
			return bad("running statistic %q is not of a layer the signature covers", st.Name)
		}
		if err := loadStat(r, st, want); err != nil {
			return &FormatError{Path: s.Path, Detail: fmt.Sprintf("running statistic %q", st.Name), Err: err}
		}
	}
	return nil
}

func nameOf(st *RunningStat) string {
	if st == nil {
		return ""
	}
	return st.Name
}

// loadStat reads st's stored bytes from r and checks them against its declared type, shape and
// SHA-256, and its values for NaN and infinities.
func loadStat(r *stored, st *RunningStat, want map[string]bool) error {
	if n := st.Elements(); len(st.Shape) != 1 || n < 0 || n > math.MaxInt32 {
		return fmt.Errorf("bad shape %v (want [channels])", st.Shape)
	}
	if !st.DType.Writable() {
		return fmt.Errorf("dtype %q cannot hold running statistics (want F32, F16, BF16 or F64)", st.DType)
	}
	want[st.Name] = true
	in, ok := r.Info(st.Name)
	if !ok {
		return fmt.Errorf("stored tensor %q is missing", st.Name)
	}
	if in.DType != st.DType || fmt.Sprint(in.Shape) != fmt.Sprint(st.Shape) {
		return fmt.Errorf("stored tensor %q is %s %v, want %s %v", st.Name, in.DType, in.Shape, st.DType, st.Shape)
	}
	raw, err := r.ReadRaw(st.Name)
	if err != nil {
		return err
	}
	if hexSHA256(raw) != st.SHA256 {
		return fmt.Errorf("stored bytes do not match their SHA-256 (the file is corrupted)")
	}
	st.raw = raw
	_, err = st.Values()
	return err
}

// extractStats returns the robust models' running statistics of the batch-norm layers among the
// chosen units: per tensor, the mean over robust computed in float64 and rounded once into the
// robust models' type (which must be the same in all of them). layers are the clean model's.
func extractStats(ctx context.Context, layers []layer.Layer, choice *Choice, clean source, robust []source) ([]*RunningStat, error) {
	chosen := map[string]bool{}
	for _, m := range choice.moduleNames() {
		chosen[m] = true
	}
	var names []string
	for _, l := range layers {
		if !chosen[l.Name] {
			continue
		}
		for _, t := range l.Tensors {
			if isStat(t) {
				names = append(names, t)
			}
		}
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("signature: --bn-stats: %w in the selected layers (%s): only batch-norm layers (running_mean, running_var) have them", ErrNoStats, strings.Join(choice.moduleNames(), ", "))
	}
	var out []*RunningStat
	for _, name := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		in, _ := clean.r.Info(name)
		st := &RunningStat{Name: name, Shape: in.Shape}
		if len(in.Shape) != 1 {
			return nil, fmt.Errorf("signature: running statistic %q has shape %v in %s, not [channels]", name, in.Shape, clean.path)
		}
		var err error
		if _, st.Sources.Clean, err = clean.read(name, in.Shape); err != nil {
			return nil, err
		}
		var sum []float64
		for k, r := range robust {
			ri, ok := r.r.Info(name)
			if ok && k == 0 {
				st.DType = ri.DType
			}
			if ok && ri.DType != st.DType {
				return nil, fmt.Errorf("signature: running statistic %q is %s in %s but %s in %s: averaging needs one type", name, ri.DType, r.path, st.DType, robust[0].path)
			}
			v, fp, err := r.read(name, in.Shape)
			if err != nil {
				return nil, err
			}
			st.Sources.Robust = append(st.Sources.Robust, fp)
			if sum == nil {
				sum = v
				continue
			}
			for i := range sum {
				sum[i] += v[i]
			}
		}
		if !st.DType.Writable() {
			return nil, fmt.Errorf("signature: running statistic %q is %s in %s; rws stores statistics of F32, F16, BF16 and F64 models", name, st.DType, robust[0].path)
		}
		for i := range sum {
			sum[i] /= float64(len(robust))
		}
		st.raw = make([]byte, len(sum)*st.DType.Size())
		if err := tensor.EncodeFloat64(st.DType, sum, st.raw); err != nil {
			return nil, fmt.Errorf("signature: running statistic %q: %w", name, err)
		}
		st.SHA256 = hexSHA256(st.raw)
		out = append(out, st)
	}
	return out, nil
}

// StatsPolicy says what a patch does with the model's batch-norm running statistics. METHODS.md
// §1 names three policies: keep the model's (KeepStats), take the robust model's
// (SignatureStats), or re-estimate them on corrupted data, which needs the inference engine and
// is rws recalibrate, not a patch.
type StatsPolicy string

// The policies of Patch and PatchInPlace.
const (
	// KeepStats leaves the model's running statistics as they are; the zero StatsPolicy means
	// KeepStats.
	KeepStats StatsPolicy = "keep"
	// SignatureStats replaces each running statistic an applied signature carries (see
	// RunningStat) by (1−α)·model + α·signature, with the α that signature is applied at: in
	// float64, each product rounded, then rounded once into the model's type. α = 1 gives the
	// signature's values (its bytes, when the types match), α = 0 the model's. α must lie in
	// [0, 1], so that a blend of variances stays a variance. A statistic carried by more than
	// one applied signature is an error naming them (which robust model's would be ambiguous);
	// statistics of different layers may come from different signatures. At least one signature
	// must carry statistics. The changed statistics are touched tensors like the others, so
	// Unpatch and UnpatchInPlace restore their bytes exactly.
	SignatureStats StatsPolicy = "signature"
)

// ParseStatsPolicy returns the policy named s ("keep" or "signature").
func ParseStatsPolicy(s string) (StatsPolicy, error) {
	switch p := StatsPolicy(s); p {
	case KeepStats, SignatureStats:
		return p, nil
	}
	return "", fmt.Errorf("signature: unknown batch-norm statistics policy %q (want keep or signature)", s)
}

// statTerm is a running statistic a patch blends into the model.
type statTerm struct {
	stat  *RunningStat
	alpha float64
	from  int // the index of its signature among those applied
}

// matchStats checks, under policy, the running statistics of the signatures against the model r
// (opened from model) and returns those to blend in by model tensor name (none for KeepStats).
// terms are the signature tensors (matchTerms): a statistic must not be one of them.
func matchStats(r *safetensors.Reader, model string, sigs []Applied, policy StatsPolicy, terms map[string][]term) (map[string]statTerm, error) {
	if policy == "" {
		policy = KeepStats
	}
	if _, err := ParseStatsPolicy(string(policy)); err != nil {
		return nil, err
	}
	if policy == KeepStats {
		return nil, nil
	}
	out := map[string]statTerm{}
	var files []string
	for k, a := range sigs {
		files = append(files, a.Sig.Path)
		if len(a.Sig.Stats) > 0 && !(a.Alpha >= 0 && a.Alpha <= 1) {
			return nil, fmt.Errorf("signature: %s is applied at α = %g, but its running statistics blend as (1−α)·model + α·signature only for α from 0 to 1 (a variance must stay a variance)", a.Sig.Path, a.Alpha)
		}
		for _, st := range a.Sig.Stats {
			if prev, ok := out[st.Name]; ok {
				return nil, fmt.Errorf("signature: running statistic %q is carried by both %s and %s; the model can take it from one signature only (apply the other without its statistics: extract it without --bn-stats, or patch twice)", st.Name, sigs[prev.from].Sig.Path, a.Sig.Path)
			}
			if len(terms[st.Name]) > 0 {
				return nil, fmt.Errorf("signature: tensor %q is a running statistic of %s and a signature tensor of %s", st.Name, a.Sig.Path, terms[st.Name][0].sigPath(sigs))
			}
			in, ok := r.Info(st.Name)
			if !ok {
				return nil, fmt.Errorf("signature: %w: running statistic %q of signature %s is not in the model %s", ErrMismatch, st.Name, a.Sig.Path, model)
			}
			if fmt.Sprint(in.Shape) != fmt.Sprint(st.Shape) {
				return nil, fmt.Errorf("signature: %w: running statistic %q: signature %s has shape %v, model %s has %v", ErrMismatch, st.Name, a.Sig.Path, st.Shape, model, in.Shape)
			}
			if !in.DType.Writable() {
				return nil, fmt.Errorf("signature: running statistic %q of %s is %s; statistics are replaced in F32, F16, BF16 and F64 tensors", st.Name, model, in.DType)
			}
			out[st.Name] = statTerm{stat: st, alpha: a.Alpha, from: k}
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("signature: %w in the signatures applied (%s): take the robust model's statistics from a signature extracted with --bn-stats", ErrNoStats, strings.Join(files, ", "))
	}
	return out, nil
}

// sigPath names the signature file a term comes from.
func (tm term) sigPath(sigs []Applied) string {
	for _, a := range sigs {
		for _, t := range a.Sig.Tensors {
			if t == tm.t {
				return a.Sig.Path
			}
		}
	}
	return "another signature"
}

// addStats adds to p the running statistics to blend in (matchStats), reading the model's from
// r into memory from s, and records them in p's report (whose signatures must be set) under
// policy.
func (p *plan) addStats(r *safetensors.Reader, stats map[string]statTerm, policy StatsPolicy, s *scratch) error {
	p.report.BNStats = policy
	if policy == "" {
		p.report.BNStats = KeepStats
	}
	for _, in := range p.infos {
		st, ok := stats[in.Name]
		if !ok {
			continue
		}
		t := &touch{info: in, rel: in.Offset - p.dataStart, old: s.alloc(in.Size), new: s.alloc(in.Size)}
		if err := r.ReadRawInto(in.Name, t.old); err != nil {
			return err
		}
		if err := blendStat(in.DType, t.old, st, t.new); err != nil {
			return fmt.Errorf("signature: running statistic %q: %w", in.Name, err)
		}
		t.oldSum, t.newSum = hexSHA256(t.old), hexSHA256(t.new)
		p.touched = append(p.touched, t)
		p.report.Tensors = append(p.report.Tensors, in.Name)
		p.report.TouchedBytes += in.Size
		rep := &p.report.Signatures[st.from]
		rep.Stats = append(rep.Stats, in.Name)
	}
	return nil
}

// blendStat writes to out (len(raw) bytes) (1−α)·raw + α·st in float64, each product rounded,
// then rounded once into dt, the type of raw's elements. α = 1 gives st's values and α = 0 raw's
// exactly (a negative zero included). A non-finite result is an error wrapping ErrNonFinite.
func blendStat(dt tensor.DType, raw []byte, st statTerm, out []byte) error {
	sv, err := st.stat.Values()
	if err != nil {
		return err
	}
	vals := sv
	if st.alpha != 1 {
		m := make([]float64, len(sv))
		if err := tensor.DecodeFloat64(dt, raw, m); err != nil {
			return err
		}
		vals = m
		if a := st.alpha; a != 0 {
			for i := range m {
				vals[i] = float64((1-a)*m[i]) + float64(a*sv[i]) // the conversions keep the products rounded (no fused multiply-add)
			}
		}
	}
	if err := tensor.EncodeFloat64(dt, vals, out); err != nil {
		return err
	}
	// The model's values may be non-finite, and rounding into F16 can overflow.
	check := make([]float64, len(vals))
	if err := tensor.DecodeFloat64(dt, out, check); err != nil {
		return err
	}
	for i, v := range check {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return fmt.Errorf("%w: value %d becomes %v in %s", ErrNonFinite, i, vals[i], dt)
		}
	}
	return nil
}
