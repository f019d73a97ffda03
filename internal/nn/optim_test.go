package nn

import (
	"encoding/json"
	"fmt"
	"testing"
)

// TestOptimizerGolden runs the optimizers on the golden tensors and gradients of
// scripts/gen_nn_golden.py and compares the weights after each step with torch.optim's.
func TestOptimizerGolden(t *testing.T) {
	for _, name := range []string{"sgd", "sgd_nesterov", "sgd_plain", "adam"} {
		t.Run(name, func(t *testing.T) {
			g := readGolden(t, "optim_"+name+".safetensors")
			var c struct {
				Opt         string    `json:"opt"`
				LR          float64   `json:"lr"`
				Momentum    float64   `json:"momentum"`
				WeightDecay float64   `json:"weight_decay"`
				Nesterov    bool      `json:"nesterov"`
				Betas       []float64 `json:"betas"`
				Eps         float64   `json:"eps"`
			}
			if err := json.Unmarshal([]byte(g.meta["case"]), &c); err != nil {
				t.Fatal(err)
			}
			r := DefaultRecipe(1)
			r.Optimizer, r.LR, r.Momentum, r.WeightDecay, r.Nesterov = c.Opt, c.LR, c.Momentum, c.WeightDecay, c.Nesterov
			if c.Opt == Adam {
				r.Beta1, r.Beta2, r.Eps = c.Betas[0], c.Betas[1], c.Eps
			}
			if err := r.validate(); err != nil {
				t.Fatal(err)
			}
			ps := []*param{newParam("a", kindParam, 3, 4), newParam("b", kindParam, 5)}
			for _, p := range ps {
				copy(p.w, g.get("init."+p.name))
			}
			o := newOptimizer(r, ps)
			for s := 0; s < 4; s++ {
				for _, p := range ps {
					copy(p.g, g.get(fmt.Sprintf("grad%d.%s", s, p.name)))
				}
				o.step(r.LR)
				for _, p := range ps {
					g.check(fmt.Sprintf("step %d %s", s, p.name), p.w, fmt.Sprintf("step%d.%s", s, p.name))
				}
			}
		})
	}
}

func TestSchedulesGolden(t *testing.T) {
	g := readGolden(t, "schedules.safetensors")
	for _, sch := range []string{Step, Cosine} {
		r := DefaultRecipe(6)
		r.LR, r.Schedule, r.Milestones, r.Gamma = 0.1, sch, []int{2, 4}, 0.1
		got := make([]float32, 6)
		for e := range got {
			got[e] = float32(r.lrAt(e))
		}
		g.check(sch+" schedule", got, sch)
	}
}
