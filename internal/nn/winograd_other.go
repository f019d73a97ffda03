//go:build !amd64 || purego

package nn

// useAVX2 is false: there are no assembly transforms for this build (tests may set it, to no effect).
var useAVX2 = false

func winoInput(p []float32, w2 int, v []float32, vs, th, tw int) {
	winoInputGo(p, w2, v, vs, th, tw)
}

func winoOutput(m []float32, ms int, y []float32, ys int, n int) {
	winoOutputGo(m, ms, y, ys, n)
}
