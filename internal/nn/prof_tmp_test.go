package nn

import (
	"fmt"
	"testing"
	"time"
)

func TestLayerTimes(t *testing.T) {
	m, _ := New("cnn", Config{1, 28, 28, 10}, 1)
	im, _ := randomImages(128, 28, 28, 1, 2)
	x, _ := m.PrepareInput(im, nil)
	tot := make([]time.Duration, len(m.net.layers))
	btot := make([]time.Duration, len(m.net.layers))
	for it := 0; it < 20; it++ {
		h := x
		for i, l := range m.net.layers {
			s := time.Now()
			h = l.forward(h, 128, true)
			tot[i] += time.Since(s)
		}
		d := make([]float32, len(h))
		for i := len(m.net.layers) - 1; i >= 0; i-- {
			s := time.Now()
			d = m.net.layers[i].backward(d, i > 0)
			btot[i] += time.Since(s)
		}
	}
	for i, l := range m.net.layers {
		fmt.Printf("%-20T fwd %6.2fms bwd %6.2fms\n", l, float64(tot[i].Microseconds())/20000, float64(btot[i].Microseconds())/20000)
	}
}
