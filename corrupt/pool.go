package corrupt

import "sync"

// Buffer recycling. Corruptions of small images spend much of their time allocating, clearing
// and collecting images; these pools recycle float64 slices by exact length (a dataset's images
// all have one size, so a few lengths recur). Intermediates go back with putScratch; Batch gives
// back the outputs it has converted to bytes, which NewImage then reuses.
var scratchPools sync.Map // int → *sync.Pool of *[]float64

// poolFor returns the pool of slices of length n.
func poolFor(n int) *sync.Pool {
	if p, ok := scratchPools.Load(n); ok {
		return p.(*sync.Pool)
	}
	p, _ := scratchPools.LoadOrStore(n, new(sync.Pool))
	return p.(*sync.Pool)
}

// getScratch returns a float64 slice of length n with unspecified contents.
func getScratch(n int) []float64 {
	if v := poolFor(n).Get(); v != nil {
		return *v.(*[]float64)
	}
	return make([]float64, n)
}

// putScratch gives s back for reuse. The caller must not use it afterwards.
func putScratch(s []float64) {
	if len(s) == 0 {
		return
	}
	poolFor(len(s)).Put(&s)
}

// scratchImage returns an h×w×c image backed by a scratch buffer (contents unspecified); give it
// back with putScratch(m.Pix).
func scratchImage(h, w, c int) Image {
	return Image{Pix: getScratch(h * w * c), H: h, W: w, C: c}
}
