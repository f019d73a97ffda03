// Package layer groups the tensors of a checkpoint into layers (modules) and orders them from the
// input to the output, the way a user means them.
//
// Safetensors writers usually sort names, so "features.10" precedes "features.2" and "classifier"
// precedes "features". The order is, by priority:
//  1. an order the user states (a list of module names);
//  2. the module order rws records in its own checkpoints (metadata "rws.modules", a JSON array);
//  3. natural ordering of dotted names, numeric parts compared as numbers, with the conventions of
//     torchvision-style models: stem modules (conv1, bn1, stem, features, embeddings, …) first,
//     head modules (fc, classifier, head, …) last, and inside a block "conv2" before "bn2" before
//     "conv3", shortcuts and downsampling after the numbered modules.
package layer

import (
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// MetaModules is the checkpoint metadata key holding the JSON array of module names in forward
// order, written by rws.
const MetaModules = "rws.modules"

// Kind classifies a layer by its parameters.
type Kind string

// Layer kinds.
const (
	Conv   Kind = "conv"   // a weight with 3 or more dimensions
	Linear Kind = "linear" // a 2-D weight
	Norm   Kind = "norm"   // batch/layer/group norm: 1-D weight and bias, maybe running statistics
	Other  Kind = "other"
)

// Layer is one module and its tensors.
type Layer struct {
	Name    string   // module name: the tensor names without their last component
	Kind    Kind     // what the tensors say the module is
	Tensors []string // full tensor names, parameters first (weight, bias), then buffers
	// Head marks the classifier head: the last linear layer of the model.
	Head bool
}

// IsWeightLayer reports whether l is a convolution or a linear layer.
func (l Layer) IsWeightLayer() bool { return l.Kind == Conv || l.Kind == Linear }

// Shape gives a layer's tensor shapes by name; Order uses it to classify layers. It may be nil.
type Shape func(name string) []int64

// Order groups names into layers and returns them from the input to the output. stated, when
// non-empty, is the user's module order; meta is the checkpoint metadata (may be nil). Modules
// missing from a stated or recorded order follow the listed ones in natural order.
func Order(names []string, meta map[string]string, stated []string, shape Shape) ([]Layer, error) {
	groups := map[string][]string{}
	var modules []string
	for _, n := range names {
		m := moduleOf(n)
		if _, ok := groups[m]; !ok {
			modules = append(modules, m)
		}
		groups[m] = append(groups[m], n)
	}
	rank := map[string]int{}
	list := stated
	if len(list) == 0 && meta != nil && meta[MetaModules] != "" {
		if err := json.Unmarshal([]byte(meta[MetaModules]), &list); err != nil {
			return nil, fmt.Errorf("layer: metadata %s is not a JSON array of names: %v", MetaModules, err)
		}
	}
	for i, m := range list {
		if _, dup := rank[m]; !dup {
			rank[m] = i
		}
	}
	sort.SliceStable(modules, func(i, j int) bool {
		ri, iok := rank[modules[i]]
		rj, jok := rank[modules[j]]
		switch {
		case iok && jok:
			return ri < rj
		case iok != jok:
			return iok
		}
		return naturalLess(modules[i], modules[j])
	})
	out := make([]Layer, len(modules))
	lastLinear := -1
	for i, m := range modules {
		ts := groups[m]
		sort.SliceStable(ts, func(a, b int) bool { return paramRank(ts[a]) < paramRank(ts[b]) })
		out[i] = Layer{Name: m, Tensors: ts, Kind: classify(m, ts, shape)}
		if out[i].Kind == Linear {
			lastLinear = i
		}
	}
	if lastLinear >= 0 {
		out[lastLinear].Head = true
	}
	return out, nil
}

// ParseStated splits a user's order ("conv1,bn1,layer1.0.conv1,…") into module names.
func ParseStated(s string) []string {
	var out []string
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || unicode.IsSpace(r) }) {
		out = append(out, f)
	}
	return out
}

// moduleOf strips the last dotted component (the parameter name) of a tensor name.
func moduleOf(name string) string {
	if i := strings.LastIndexByte(name, '.'); i > 0 {
		return name[:i]
	}
	return name
}

func paramRank(name string) int {
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "weight":
		return 0
	case "bias":
		return 1
	case "running_mean":
		return 2
	case "running_var":
		return 3
	case "num_batches_tracked":
		return 4
	}
	return 5
}

func classify(module string, tensors []string, shape Shape) Kind {
	var weight []int64
	hasRunning := false
	for _, t := range tensors {
		switch t[strings.LastIndexByte(t, '.')+1:] {
		case "weight":
			if shape != nil {
				weight = shape(t)
			}
		case "running_mean", "running_var":
			hasRunning = true
		}
	}
	leaf := strings.ToLower(module[strings.LastIndexByte(module, '.')+1:])
	switch {
	case hasRunning || strings.Contains(leaf, "norm") || strings.HasPrefix(leaf, "bn") || strings.HasPrefix(leaf, "ln"):
		return Norm
	case len(weight) >= 3:
		return Conv
	case len(weight) == 2:
		return Linear
	}
	return Other
}

// topRank puts stem modules first and head modules last.
func topRank(top string) int {
	base := strings.ToLower(strings.TrimRightFunc(top, unicode.IsDigit))
	switch base {
	case "conv", "bn", "stem", "conv_stem", "bn_stem", "embeddings", "embed", "patch_embed", "features", "input":
		return 0
	case "fc", "classifier", "head", "heads", "linear", "logits", "last_linear", "output":
		return 2
	}
	return 1
}

// tokenKind orders tokens that share a number: weight layers, then norms, then the rest.
func tokenKind(alpha string) int {
	a := strings.ToLower(alpha)
	switch {
	case strings.HasPrefix(a, "conv"), a == "linear", a == "fc", a == "dense", strings.HasPrefix(a, "proj"):
		return 0
	case strings.HasPrefix(a, "bn"), strings.Contains(a, "norm"), strings.HasPrefix(a, "ln"), strings.HasPrefix(a, "gn"):
		return 1
	}
	return 2
}

type token struct {
	num   int64 // numeric part; tokens without one sort after those with one
	has   bool
	alpha string
}

func split(tok string) token {
	i := len(tok)
	for i > 0 && tok[i-1] >= '0' && tok[i-1] <= '9' {
		i--
	}
	if i == len(tok) || len(tok)-i > 18 {
		return token{alpha: tok}
	}
	n, _ := strconv.ParseInt(tok[i:], 10, 64)
	return token{num: n, has: true, alpha: tok[:i]}
}

func naturalLess(a, b string) bool {
	pa, pb := strings.Split(a, "."), strings.Split(b, ".")
	if ra, rb := topRank(pa[0]), topRank(pb[0]); ra != rb {
		return ra < rb
	}
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if pa[i] == pb[i] {
			continue
		}
		ta, tb := split(pa[i]), split(pb[i])
		if ta.has != tb.has {
			return ta.has
		}
		if ta.has && ta.num != tb.num {
			return ta.num < tb.num
		}
		if ka, kb := tokenKind(ta.alpha), tokenKind(tb.alpha); ka != kb {
			return ka < kb
		}
		return pa[i] < pb[i]
	}
	return len(pa) < len(pb)
}
