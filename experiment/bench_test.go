package experiment

import (
	"math/rand/v2"
	"testing"

	"github.com/rws-project/rws/internal/nn"
)

// benchSigs returns n random signatures over the first four layers of cnn.
func benchSigs(b *testing.B, m *nn.Model, n int) []*sigValues {
	rng := rand.New(rand.NewPCG(1, 2))
	var out []*sigValues
	for k := range n {
		s := &sigValues{name: string(rune('a' + k)), values: map[string][]float32{}}
		for _, mod := range []string{"features.0", "features.2", "features.5", "features.7"} {
			for _, suf := range []string{".weight", ".bias"} {
				t, ok := m.Tensor(mod + suf)
				if !ok {
					b.Fatalf("no tensor %s", mod+suf)
				}
				v := make([]float32, len(t.Data))
				for i := range v {
					v[i] = float32(rng.NormFloat64() * 1e-3)
				}
				s.names = append(s.names, t.Name)
				s.values[t.Name] = v
			}
		}
		out = append(out, s)
	}
	return out
}

// BenchmarkPatch15 measures one in-memory patch with 15 signatures (a composition), the
// operation the study runs for every patched model it evaluates.
func BenchmarkPatch15(b *testing.B) {
	m, err := nn.New("cnn", nn.Config{InChannels: 1, Height: 28, Width: 28, Classes: 10}, 1)
	if err != nil {
		b.Fatal(err)
	}
	sigs := benchSigs(b, m, 15)
	ts := make([]term, len(sigs))
	for i, s := range sigs {
		ts[i] = term{s, 1.0 / 15}
	}
	b.ResetTimer()
	for b.Loop() {
		if _, err := patch(m, ts...); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTies15 measures the TIES merge of 15 signatures.
func BenchmarkTies15(b *testing.B) {
	m, err := nn.New("cnn", nn.Config{InChannels: 1, Height: 28, Width: 28, Classes: 10}, 1)
	if err != nil {
		b.Fatal(err)
	}
	sigs := benchSigs(b, m, 15)
	b.ResetTimer()
	for b.Loop() {
		ties(sigs, 0.2)
	}
}
