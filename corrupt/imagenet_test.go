package corrupt

import (
	"math"
	"slices"
	"testing"
)

// mosaic tiles the 32×32 reference inputs into an n×n RGB image (row-major, cycling through the
// inputs and cropping the last tiles), a natural-looking test image of any size.
func mosaic(t testing.TB, n int) Image {
	t.Helper()
	inputs := referenceInputs(t)
	m := NewImage(n, n, 3)
	tiles := (n + 31) / 32
	for y := 0; y < n; y++ {
		for x := 0; x < n; x++ {
			src := inputs[((y/32)*tiles+x/32)%len(inputs)]
			copy(m.Pix[(y*n+x)*3:(y*n+x)*3+3], src.Pix[((y%32)*32+x%32)*3:])
		}
	}
	return m
}

// toGray returns the luma of an RGB image, rounded to bytes like an 8-bit grey image.
func toGray(m Image) Image {
	g := m.luma()
	for i, v := range g.Pix {
		g.Pix[i] = unitTable[int(math.Round(v*255))]
	}
	return g
}

// meanAbsDiff returns the mean |Δ| in grey levels between two images after the suite's
// quantization.
func meanAbsDiff(q Quantize, a, b Image) float64 {
	s := 0.0
	for i := range a.Pix {
		s += math.Abs(float64(q.Byte(a.Pix[i])) - float64(q.Byte(b.Pix[i])))
	}
	return s / float64(len(a.Pix))
}

// notMonotone lists the imagenet-c corruptions whose change from the clean image need not grow
// from severity 1 to 5: saturate first desaturates (1-2) then saturates (3-5), and spatter
// switches from water (1-3) to mud (4-5).
var notMonotone = []string{"saturate", "spatter"}

// TestImagenetCSizes runs every imagenet-c corruption at every severity on 64×64 and 224×224
// RGB and grey images: the output keeps the shape, is finite, differs from the input, and for
// most corruptions changes the image more at severity 5 than at severity 1.
func TestImagenetCSizes(t *testing.T) {
	s, err := Lookup("imagenet-c")
	if err != nil {
		t.Fatal(err)
	}
	sizes := []int{64, 224}
	if testing.Short() {
		sizes = sizes[:1]
	}
	for _, n := range sizes {
		rgb := mosaic(t, n)
		for _, img := range []Image{rgb, toGray(rgb)} {
			for _, name := range s.Corruptions() {
				mad := make([]float64, 6)
				for _, sev := range s.Severities(name) {
					out, err := s.Apply(name, sev, img, NewRand(1, s.Name(), name, sev, 0))
					if err != nil {
						t.Fatalf("%dx%dx%d %s %d: %v", n, n, img.C, name, sev, err)
					}
					if out.H != img.H || out.W != img.W || out.C != img.C || len(out.Pix) != len(img.Pix) {
						t.Fatalf("%dx%dx%d %s %d: output %dx%dx%d", n, n, img.C, name, sev, out.H, out.W, out.C)
					}
					for _, v := range out.Pix {
						if math.IsNaN(v) || math.IsInf(v, 0) {
							t.Fatalf("%dx%dx%d %s %d: non-finite value %v", n, n, img.C, name, sev, v)
						}
					}
					mad[sev] = meanAbsDiff(s.Quantize(), img, out)
				}
				t.Logf("%dx%dx%d %-17s mean |Δ| s1..s5: %5.1f %5.1f %5.1f %5.1f %5.1f", n, n, img.C, name,
					mad[1], mad[2], mad[3], mad[4], mad[5])
				grey := img.C == 1 && name == "saturate" // saturation does not change grey images
				for sev := 1; sev <= 5; sev++ {
					if mad[sev] < 0.2 && !grey {
						t.Errorf("%dx%dx%d %s severity %d: mean |Δ| %.3f, want a visible change", n, n, img.C, name, sev, mad[sev])
					}
				}
				if !slices.Contains(notMonotone, name) && mad[5] <= mad[1] {
					t.Errorf("%dx%dx%d %s: mean |Δ| %.2f at severity 5, %.2f at 1: want growth", n, n, img.C, name, mad[5], mad[1])
				}
			}
		}
	}
}

// TestImagenetCMinSize checks that imagenet-c refuses images below 32 pixels, as
// imagecorruptions does.
func TestImagenetCMinSize(t *testing.T) {
	s, _ := Lookup("imagenet-c")
	if _, err := s.Apply("fog", 1, NewImage(28, 28, 1), NewRand(0, "", "", 0, 0)); err == nil {
		t.Error("28×28 image accepted")
	}
}

// TestNonSquare runs both suites on non-square images (imagenet-c at 40×90 RGB and 33×57 grey,
// cifar10-c at 17×45 RGB): every corruption at every severity must keep the shape and give
// finite values.
func TestNonSquare(t *testing.T) {
	for _, tc := range []struct {
		suite   string
		h, w, c int
	}{{"imagenet-c", 40, 90, 3}, {"imagenet-c", 33, 57, 1}, {"cifar10-c", 17, 45, 3}} {
		s, _ := Lookup(tc.suite)
		big := mosaic(t, 96)
		img := NewImage(tc.h, tc.w, 3)
		for y := 0; y < tc.h; y++ {
			copy(img.Pix[y*tc.w*3:(y+1)*tc.w*3], big.Pix[y*96*3:])
		}
		if tc.c == 1 {
			img = toGray(img)
		}
		for _, name := range s.Corruptions() {
			for _, sev := range s.Severities(name) {
				out, err := s.Apply(name, sev, img, NewRand(2, s.Name(), name, sev, 0))
				if err != nil {
					t.Fatalf("%s %dx%dx%d %s %d: %v", tc.suite, tc.h, tc.w, tc.c, name, sev, err)
				}
				if out.H != tc.h || out.W != tc.w || out.C != tc.c || len(out.Pix) != len(img.Pix) {
					t.Fatalf("%s %s %d: output %dx%dx%d", tc.suite, name, sev, out.H, out.W, out.C)
				}
				for _, v := range out.Pix {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("%s %s %d: value %v", tc.suite, name, sev, v)
					}
				}
			}
		}
	}
}
