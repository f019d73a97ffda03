package corrupt

import (
	"math"
	"testing"
)

func TestPySliceIndex(t *testing.T) {
	tests := []struct{ i, n, want int }{
		{0, 28, 0}, {5, 28, 5}, {28, 28, 28}, {30, 28, 28}, {-1, 28, 27}, {-28, 28, 0}, {-40, 28, 0},
	}
	for _, tt := range tests {
		if got := pySliceIndex(tt.i, tt.n); got != tt.want {
			t.Errorf("pySliceIndex(%d, %d) = %d, want %d", tt.i, tt.n, got, tt.want)
		}
	}
}

// TestDottedKeep checks the dash pattern of dotted_line: blocks [0,2), [4,6), …, [24,26) blanked.
func TestDottedKeep(t *testing.T) {
	var kept []int
	for c := 0; c < 28; c++ {
		if dottedKeep(c) {
			kept = append(kept, c)
		}
	}
	want := []int{2, 3, 6, 7, 10, 11, 14, 15, 18, 19, 22, 23, 26, 27}
	if len(kept) != len(want) {
		t.Fatalf("kept %v, want %v", kept, want)
	}
	for i := range want {
		if kept[i] != want[i] {
			t.Fatalf("kept %v, want %v", kept, want)
		}
	}
}

// TestAddLine checks the stroke profile log(1 − d/2.3) + 1 on a horizontal line, the column
// limits floor(c0)..ceil(c1)−1, and that a vertical line draws nothing.
func TestAddLine(t *testing.T) {
	const w, h = 28, 28
	x := make([]float64, w*h)
	addLine(x, w, h, 3, 10, 20, 10, nil)
	for r := 0; r < h; r++ {
		d := math.Abs(float64(r) - 10)
		want := max(math.Log(1-min(d, 2.3-1e-10)/2.3)+1, 0)
		for c := 0; c < w; c++ {
			wc := want
			if c < 3 || c >= 20 {
				wc = 0
			}
			if got := x[r*w+c]; math.Abs(got-wc) > 1e-15 {
				t.Fatalf("pixel (%d, %d) = %v, want %v", r, c, got, wc)
			}
		}
	}
	if v := x[11*w+5]; math.Abs(v-(math.Log(1-1/2.3)+1)) > 1e-15 || v < 0.42 || v > 0.44 {
		t.Errorf("one row off the line: %v, want log(1 − 1/2.3) + 1 ≈ 0.4293", v)
	}
	// Adding the line again saturates at 1.
	addLine(x, w, h, 3, 10, 20, 10, nil)
	if x[10*w+5] != 1 {
		t.Errorf("on the line after two strokes: %v, want 1", x[10*w+5])
	}
	y := make([]float64, w*h)
	addLine(y, w, h, 5, 0, 5, 27, nil)
	for i, v := range y {
		if v != 0 {
			t.Fatalf("vertical line drew pixel %d = %v", i, v)
		}
	}
}

// TestZigzagPoints checks the vertices for a level zigzag (dr = 0), worked out from the
// reference's formulas: d = 23, six inner vertices at columns 2, 6, …, 22 (before the shift by
// 2) alternating ±2, and the last vertex (23, −2/(2·(23 − 20))).
func TestZigzagPoints(t *testing.T) {
	cs, rs := zigzagPoints(10, 0)
	wantC := []float64{2, 4, 8, 12, 16, 20, 24, 25}
	wantR := []float64{10, 12, 8, 12, 8, 12, 8, 10 - 1.0/3}
	if len(cs) != len(wantC) {
		t.Fatalf("%d vertices, want %d: %v %v", len(cs), len(wantC), cs, rs)
	}
	for i := range wantC {
		if math.Abs(cs[i]-wantC[i]) > 1e-12 || math.Abs(rs[i]-wantR[i]) > 1e-12 {
			t.Fatalf("vertex %d = (%v, %v), want (%v, %v)", i, cs[i], rs[i], wantC[i], wantR[i])
		}
	}
	// A tilted zigzag ends near column 25, row r0 + dr.
	cs, rs = zigzagPoints(10, 4)
	last := len(cs) - 1
	if math.Abs(cs[last]-25) > 0.5 || math.Abs(rs[last]-14) > 1 {
		t.Errorf("dr = 4: last vertex (%v, %v), want near (25, 14)", cs[last], rs[last])
	}
}
