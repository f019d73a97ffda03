package corrupt

import "math"

// This file draws MNIST-C's line strokes (line_from_points), used by dotted_line and zigzag.

// lineReach is the largest vertical distance at which a stroke is visible: the profile
// log(1 − d/2.3) + 1 is positive only for d < 2.3·(1 − 1/e) ≈ 1.454.
const lineReach = 2.3 * (1 - 1/math.E)

// addLine adds MNIST-C's line_from_points(c0, r0, c1, r1) stroke to x (w×h, row-major, values in
// [0, 1]) and clips the sum to [0, 1]. The stroke is the infinite line through (c0, r0) and
// (c1, r1) (column, row), drawn with intensity clip(log(1 − d/2.3) + 1, 0, 1), where d is the
// vertical distance from the pixel to the line, clipped to 2.3 − 1e-10. Only columns from
// floor(c0) up to but excluding ceil(c1) are drawn, with Python's slice rules for indices below
// 0 or past the width, as the reference's corruption[:, :l] = 0 and corruption[:, r:] = 0 apply
// them. keep, when not nil, drops further columns (dotted_line's gaps). A vertical line
// (c1 == c0) draws nothing, as in the reference.
func addLine(x []float64, w, h int, c0, r0, c1, r1 float64, keep func(col int) bool) {
	if c1 == c0 {
		return
	}
	lo := pySliceIndex(int(math.Floor(c0)), w)
	hi := pySliceIndex(int(math.Ceil(c1)), w)
	m := (r1 - r0) / (c1 - c0)
	for c := lo; c < hi; c++ {
		if keep != nil && !keep(c) {
			continue
		}
		f := m*(float64(c)-c0) + r0
		ya := max(int(math.Ceil(f-lineReach)), 0)
		yb := min(int(math.Floor(f+lineReach)), h-1)
		for r := ya; r <= yb; r++ {
			d := min(math.Abs(float64(r)-f), 2.3-1e-10)
			v := math.Log(1-d/2.3) + 1
			if v <= 0 {
				continue
			}
			p := &x[r*w+c]
			*p = min(*p+min(v, 1), 1)
		}
	}
}

// pySliceIndex maps a Python slice bound i on an axis of length n to the index it denotes:
// negative values count from the end, and the result is clamped to [0, n].
func pySliceIndex(i, n int) int {
	if i < 0 {
		return max(n+i, 0)
	}
	return min(i, n)
}

// dottedKeep reports whether MNIST-C's dotted_line keeps column c: of the 2-column blocks
// starting at 0, 2, …, 26, the blocks at 0, 4, 8, …, 24 are blanked.
func dottedKeep(c int) bool { return (c/2)%2 == 1 }

// zigzagPoints returns the vertices (columns cs, rows rs) of MNIST-C's zigzag for the start row
// r0 and the row offset dr = r1 − r0 of the end point: a zigzag of amplitude b = 2 and half
// period a = 2 along the segment from column 2 to column 25, as corruptions.py builds it. The
// last vertex keeps the reference's formula (d, r_i / (2·(d − max_c))) verbatim.
func zigzagPoints(r0, dr int) (cs, rs []float64) {
	const a, b = 2.0, 2.0
	const c0, c1 = 2, 25
	theta := math.Atan(float64(dr) / float64(c1-c0))
	d := float64(c1-c0) / math.Cos(theta)
	cs, rs = append(cs, 0), append(rs, 0)
	var ri float64
	n := int(math.Floor((d-a)/(2*a))) + 1
	for i := 0; i < n; i++ {
		ri = b
		if i%2 == 1 {
			ri = -b
		}
		cs = append(cs, float64(2*i+1)*a)
		rs = append(rs, ri)
	}
	maxC := 2 * a * math.Floor(d/(2*a))
	if d != maxC {
		cs = append(cs, d)
		rs = append(rs, ri/(2*(d-maxC)))
	}
	sin, cos := math.Sincos(theta)
	for i := range cs {
		c, r := cs[i], rs[i]
		cs[i] = cos*c - sin*r + c0
		rs[i] = sin*c + cos*r + float64(r0)
	}
	return cs, rs
}
