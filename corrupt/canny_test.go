package corrupt

import "testing"

// TestCannyEdges checks cannyEdges on synthetic images: a flat image has no edge, and a bright
// square on black gets a closed one-pixel contour around it and nothing far from it.
func TestCannyEdges(t *testing.T) {
	const w, h = 28, 28
	edges := make([]float64, w*h)
	flat := make([]float64, w*h)
	for i := range flat {
		flat[i] = 0.6
	}
	cannyEdges(edges, flat, w, h, 1, 0.1, 0.2, nil)
	for i, v := range edges {
		if v != 0 {
			t.Fatalf("flat image: edge at %d", i)
		}
	}

	sq := make([]float64, w*h)
	for y := 8; y < 20; y++ {
		for x := 8; x < 20; x++ {
			sq[y*w+x] = 1
		}
	}
	cannyEdges(edges, sq, w, h, 1, 0.1, 0.2, nil)
	n := 0
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			v := edges[y*w+x]
			if v != 0 && v != 1 {
				t.Fatalf("pixel (%d, %d) = %v, want 0 or 1", x, y, v)
			}
			if v == 0 {
				continue
			}
			n++
			// Edges lie on the boundary between rows/columns 7|8 and 19|20.
			if y < 6 || y > 21 || x < 6 || x > 21 || (y > 9 && y < 18 && x > 9 && x < 18) {
				t.Errorf("edge at (%d, %d), far from the square's boundary", x, y)
			}
		}
	}
	if n < 4*10 {
		t.Errorf("%d edge pixels, want a contour of at least 40", n)
	}
	// Every row and column crossing the square meets the contour on both sides.
	for k := 9; k < 19; k++ {
		left, right, top, bottom := false, false, false, false
		for d := 6; d <= 9; d++ {
			left = left || edges[k*w+d] == 1
			top = top || edges[d*w+k] == 1
		}
		for d := 18; d <= 21; d++ {
			right = right || edges[k*w+d] == 1
			bottom = bottom || edges[d*w+k] == 1
		}
		if !left || !right || !top || !bottom {
			t.Errorf("line %d: contour missing (left %v right %v top %v bottom %v)", k, left, right, top, bottom)
		}
	}

	// Raising the high threshold above every magnitude removes all edges (hysteresis needs a
	// strong pixel).
	cannyEdges(edges, sq, w, h, 1, 0.1, 100, nil)
	for i, v := range edges {
		if v != 0 {
			t.Fatalf("high threshold 100: edge at %d", i)
		}
	}
}
