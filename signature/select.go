package signature

import (
	"fmt"
	"math"
	"path"
	"strconv"
	"strings"

	"github.com/rws-project/rws/layer"
)

// DefaultAutoThreshold is the share of the largest relative difference a layer must reach for
// --layers auto to keep it (and every layer before it).
const DefaultAutoThreshold = 0.5

// Unit is one weight layer (a convolution or linear layer) with its bias and the normalization
// layers that follow it up to the next weight layer: the unit --layers first:N counts.
type Unit struct {
	Name    string   // the weight layer's module name
	Modules []string // the weight layer, then its normalization layers
	Tensors []string // their parameters: weights and biases, never running statistics
	Head    bool     // the classifier head
}

// LayerDelta is one unit's measured relative difference ‖θ_c − θ_std‖ / ‖θ_std‖ (θ_c averaged over
// the robust models), for --layers auto.
type LayerDelta struct {
	Layer    string  `json:"layer"`
	Relative float64 `json:"relative"`
	Kept     bool    `json:"kept"`
}

// Choice is the outcome of layer selection.
type Choice struct {
	Units   []Unit   // the chosen units, from the input
	Tensors []string // their tensors, from the input
	// Explanation says in words how the layers were chosen.
	Explanation string
	// Deltas holds the measurements of --layers auto, for every unit but the head.
	Deltas []LayerDelta
}

// isBuffer reports whether a tensor name is a normalization layer's running statistic.
func isBuffer(name string) bool {
	switch name[strings.LastIndexByte(name, '.')+1:] {
	case "running_mean", "running_var", "num_batches_tracked":
		return true
	}
	return false
}

func params(tensors []string) []string {
	var out []string
	for _, t := range tensors {
		if !isBuffer(t) {
			out = append(out, t)
		}
	}
	return out
}

// Units groups ordered layers into units: each weight layer with the normalization layers after it.
// Layers before the first weight layer, and layers of other kinds, belong to no unit.
func Units(layers []layer.Layer) []Unit {
	var out []Unit
	for _, l := range layers {
		switch {
		case l.IsWeightLayer():
			out = append(out, Unit{Name: l.Name, Modules: []string{l.Name}, Tensors: params(l.Tensors), Head: l.Head})
		case l.Kind == layer.Norm && len(out) > 0 && !out[len(out)-1].Head:
			u := &out[len(out)-1]
			u.Modules = append(u.Modules, l.Name)
			u.Tensors = append(u.Tensors, params(l.Tensors)...)
		}
	}
	return out
}

// selectLayers applies a --layers spec ("first:N", "auto", "auto:T" or comma-separated name
// patterns) to ordered layers. measure returns the units' relative differences (for auto).
func selectLayers(layers []layer.Layer, spec string, measure func([]Unit) ([]float64, error)) (*Choice, error) {
	units := Units(layers)
	var body []Unit // every unit but the head
	for _, u := range units {
		if !u.Head {
			body = append(body, u)
		}
	}
	switch {
	case strings.HasPrefix(spec, "first:"):
		n, err := strconv.Atoi(spec[len("first:"):])
		if err != nil || n < 1 {
			return nil, fmt.Errorf("signature: --layers %q: want first:N with N ≥ 1", spec)
		}
		if n > len(body) {
			return nil, fmt.Errorf("signature: --layers %q: the model has %d weight layers before the classifier head", spec, len(body))
		}
		c := &Choice{Units: body[:n]}
		c.Explanation = fmt.Sprintf("the first %d weight layers from the input (%s), with their biases and normalization parameters", n, unitRange(body[:n]))
		c.Tensors = unitTensors(c.Units)
		return c, nil
	case spec == "auto" || strings.HasPrefix(spec, "auto:"):
		tau := DefaultAutoThreshold
		if spec != "auto" {
			v, err := strconv.ParseFloat(spec[len("auto:"):], 64)
			if err != nil || !(v > 0 && v <= 1) {
				return nil, fmt.Errorf("signature: --layers %q: want auto:T with 0 < T ≤ 1", spec)
			}
			tau = v
		}
		if len(body) == 0 {
			return nil, fmt.Errorf("signature: --layers auto: the model has no weight layers before the classifier head")
		}
		rel, err := measure(body)
		if err != nil {
			return nil, err
		}
		c := &Choice{}
		top, topAt := -1.0, 0
		for i, u := range body {
			r := rel[i]
			c.Deltas = append(c.Deltas, LayerDelta{Layer: u.Name, Relative: r})
			if r > top {
				top, topAt = r, i
			}
		}
		k := 0
		for i, d := range c.Deltas {
			if d.Relative >= tau*top {
				k = i + 1
			}
		}
		for i := range k {
			c.Deltas[i].Kept = true
		}
		c.Units = body[:k]
		c.Tensors = unitTensors(c.Units)
		after := ""
		if k < len(body) {
			rest := 0.0
			for _, d := range c.Deltas[k:] {
				rest = math.Max(rest, d.Relative)
			}
			after = fmt.Sprintf("; the %d deeper layers stay below (at most %.3g)", len(body)-k, rest)
		}
		c.Explanation = fmt.Sprintf("auto: the first %d weight layers (%s), up to the last whose relative difference ‖θ_c−θ_std‖/‖θ_std‖ is at least %g of the largest (%.3g at %s)%s",
			k, unitRange(c.Units), tau, top, body[topAt].Name, after)
		return c, nil
	}
	pats := strings.Split(spec, ",")
	picked := map[string]bool{}
	for _, p := range pats {
		p = strings.TrimSpace(p)
		if _, err := path.Match(p, ""); err != nil || p == "" {
			return nil, fmt.Errorf("signature: --layers: bad pattern %q (want first:N, auto, or name patterns such as features.0,features.2 or 'layer1.*')", p)
		}
		hit, buffers := false, false
		for _, l := range layers {
			if ok, _ := path.Match(p, l.Name); ok {
				for _, t := range params(l.Tensors) {
					picked[t] = true
				}
				hit = true
				continue
			}
			for _, t := range l.Tensors {
				if ok, _ := path.Match(p, t); !ok {
					continue
				}
				// A pattern such as "bn1.*" also matches the running statistics, which are not
				// signature material (num_batches_tracked is not even a float).
				if isBuffer(t) {
					buffers = true
					continue
				}
				picked[t] = true
				hit = true
			}
		}
		if !hit && buffers {
			return nil, fmt.Errorf("signature: --layers: pattern %q matches only batch-norm running statistics, which are not signature material (extract --bn-stats stores the robust model's)", p)
		}
		if !hit {
			return nil, fmt.Errorf("signature: --layers: pattern %q matches no layer or tensor of the model", p)
		}
	}
	c := &Choice{Explanation: fmt.Sprintf("the layers and tensors matching %q", spec)}
	for _, l := range layers {
		var u *Unit
		for _, t := range l.Tensors {
			if picked[t] {
				if u == nil {
					c.Units = append(c.Units, Unit{Name: l.Name, Modules: []string{l.Name}, Head: l.Head})
					u = &c.Units[len(c.Units)-1]
				}
				u.Tensors = append(u.Tensors, t)
				c.Tensors = append(c.Tensors, t)
			}
		}
	}
	return c, nil
}

func unitTensors(us []Unit) []string {
	var out []string
	for _, u := range us {
		out = append(out, u.Tensors...)
	}
	return out
}

func unitRange(us []Unit) string {
	switch len(us) {
	case 0:
		return "none"
	case 1:
		return us[0].Name
	case 2:
		return us[0].Name + ", " + us[1].Name
	}
	return us[0].Name + " … " + us[len(us)-1].Name
}

// moduleNames lists the modules of the chosen units.
func (c *Choice) moduleNames() []string {
	var out []string
	for _, u := range c.Units {
		out = append(out, u.Modules...)
	}
	return out
}
