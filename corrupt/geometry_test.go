package corrupt

import (
	"math"
	"testing"
)

// TestAffineMatrices checks the inverse maps against scikit-image 0.19's AffineTransform
// parameter formulas (params = [[sx·cos r, −sy·sin(r+shear)], [sx·sin r, sy·cos(r+shear)]]) with
// MNIST-C's centring translation c·(1 − a1 − a2), c·(1 − b1 − b2).
func TestAffineMatrices(t *testing.T) {
	s, c := math.Sin(0.4), math.Cos(0.4)
	tests := []struct {
		name string
		got  affine
		lin  [4]float64 // a1 a2 b1 b2
	}{
		{"shear +0.4", shearAffine(0.4, 13.5), [4]float64{1, -s, 0, c}},
		{"shear -0.4", shearAffine(-0.4, 13.5), [4]float64{1, s, 0, c}},
		{"rotate +0.4", rotateAffine(0.4, 13.5), [4]float64{c, -s, s, c}},
		{"scale 1/0.7", scaleAffine(1/0.7, 13.5), [4]float64{1 / 0.7, 0, 0, 1 / 0.7}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a1, a2, b1, b2 := tt.lin[0], tt.lin[1], tt.lin[2], tt.lin[3]
			want := affine{a1, a2, 13.5 * (1 - a1 - a2), b1, b2, 13.5 * (1 - b1 - b2)}
			for i := range want {
				if math.Abs(tt.got[i]-want[i]) > 1e-15 {
					t.Fatalf("got %v, want %v", tt.got, want)
				}
			}
			// The centre is a fixed point.
			x := tt.got[0]*13.5 + tt.got[1]*13.5 + tt.got[2]
			y := tt.got[3]*13.5 + tt.got[4]*13.5 + tt.got[5]
			if math.Abs(x-13.5) > 1e-12 || math.Abs(y-13.5) > 1e-12 {
				t.Errorf("centre maps to (%v, %v)", x, y)
			}
		})
	}
}

// TestWarpBilinear checks skimage.transform.warp's order-1, constant-0 behaviour on small cases
// worked out by hand (the input holds a 0, so clip=True changes nothing).
func TestWarpBilinear(t *testing.T) {
	src := []float64{
		0.0, 0.2, 0.3,
		0.4, 0.5, 0.6,
	}
	tests := []struct {
		name string
		m    affine
		want []float64
	}{
		{"identity", affine{1, 0, 0, 0, 1, 0}, src},
		// Reading one column to the right: the last column reads outside, 0.
		{"shift x+1", translateAffine(1, 0), []float64{0.2, 0.3, 0, 0.5, 0.6, 0}},
		// Reading one row up: the first row reads outside.
		{"shift y-1", translateAffine(0, -1), []float64{0, 0, 0, 0, 0.2, 0.3}},
		// Half a pixel right: means of neighbours; the last column mixes with the zero outside.
		{"shift x+0.5", translateAffine(0.5, 0), []float64{0.1, 0.25, 0.15, 0.45, 0.55, 0.3}},
		// Half a pixel left: the first column mixes with the zero outside.
		{"shift x-0.5", translateAffine(-0.5, 0), []float64{0, 0.1, 0.25, 0.2, 0.45, 0.55}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := make([]float64, len(src))
			warpBilinear(got, src, 3, 2, tt.m)
			for i := range got {
				if math.Abs(got[i]-tt.want[i]) > 1e-15 {
					t.Fatalf("got %v, want %v", got, tt.want)
				}
			}
		})
	}
}

// TestWarpClip checks skimage's clip=True: results are clipped to the input's range, except
// exact zeros from outside the image when 0 is not in that range.
func TestWarpClip(t *testing.T) {
	src := []float64{0.5, 0.7, 0.6, 0.9} // 2×2, minimum 0.5
	got := make([]float64, 4)
	warpBilinear(got, src, 2, 2, translateAffine(0.5, 0))
	// (0.5+0.7)/2, then 0.35 clipped up to 0.5; second row (0.6+0.9)/2, 0.45 → 0.5.
	want := []float64{0.6, 0.5, 0.75, 0.5}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-15 {
			t.Fatalf("half-pixel shift: got %v, want %v", got, want)
		}
	}
	warpBilinear(got, src, 2, 2, translateAffine(5, 0))
	for i, v := range got {
		if v != 0 {
			t.Fatalf("all outside: pixel %d = %v, want the exact cval 0 kept", i, v)
		}
	}
}
