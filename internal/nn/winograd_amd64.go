//go:build !purego

package nn

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly transforms; tests turn it off to compare them with the Go ones.
var useAVX2 = cpu.X86.HasAVX2

// winoInputAVX2 is winoInputGo in AVX2, in steps of eight tiles: it reads up to winoSlack
// values past the padded plane and writes up to seven tiles past the end of each tile row.
//
//go:noescape
func winoInputAVX2(p *float32, w2 int, v *float32, vs int, th, tw int)

// winoOutputAVX2 is winoOutputGo in AVX2, in steps of eight tiles: it reads and writes up to
// seven tiles past n.
//
//go:noescape
func winoOutputAVX2(m *float32, ms int, y *float32, ys int, n int)

// winoInput is winoInputGo, in AVX2 where the processor has it; p must have winoSlack values of
// room after the padded plane, and v seven tiles after the last row of each ξ.
func winoInput(p []float32, w2 int, v []float32, vs, th, tw int) {
	if !useAVX2 || th < 1 || tw < 1 {
		winoInputGo(p, w2, v, vs, th, tw)
		return
	}
	if w2 != 2*tw+2 || len(p) < (2*th+2)*w2+winoSlack || len(v) < 15*vs+(th-1)*tw+roundUp8(tw) {
		panic("nn: winograd input transform: slices too short")
	}
	winoInputAVX2(&p[0], w2, &v[0], vs, th, tw)
}

// winoOutput is winoOutputGo, in AVX2 where the processor has it; m and y must have room for
// seven tiles after n in their last ξ or output plane.
func winoOutput(m []float32, ms int, y []float32, ys int, n int) {
	if !useAVX2 || n < 1 {
		winoOutputGo(m, ms, y, ys, n)
		return
	}
	if len(m) < 15*ms+roundUp8(n) || len(y) < 3*ys+roundUp8(n) || ms < n || ys < n {
		panic("nn: winograd output transform: slices too short")
	}
	winoOutputAVX2(&m[0], ms, &y[0], ys, n)
}

func roundUp8(n int) int { return (n + 7) &^ 7 }
