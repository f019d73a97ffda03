package corrupt

import (
	"fmt"
	"math"
	"testing"
)

// TestCIFARDeterministic compares the deterministic corruptions of the cifar10-c suite with the
// outputs of make_cifar_c.py (hendrycks/robustness 8190fe32, numpy 1.24, scipy 1.10,
// scikit-image 0.19, OpenCV 4.6, Pillow 9.4; testdata/cifar10c/<name>.npy, see its README) on
// the 16 reference inputs: at least 99% of the values within ±1 grey level after the suite's
// truncation (jpeg_compression: a PSNR of at least 35 dB per severity, the bound for a codec other
// than libjpeg's), and every value equal for the corruptions this package reproduces exactly (all
// eight at the time of writing).
func TestCIFARDeterministic(t *testing.T) {
	s, err := Lookup("cifar10-c")
	if err != nil {
		t.Fatal(err)
	}
	inputs := referenceInputs(t)
	for _, name := range []string{"contrast", "brightness", "saturate", "pixelate", "jpeg_compression",
		"defocus_blur", "gaussian_blur", "zoom_blur"} {
		t.Run(name, func(t *testing.T) {
			want := readNpyU8(t, cifarTestdata(name+".npy"))
			if fmt.Sprint(want.shape) != "[5 16 32 32 3]" {
				t.Fatalf("%s.npy: shape %v, want (5, 16, 32, 32, 3)", name, want.shape)
			}
			for sev := 1; sev <= 5; sev++ {
				var n, exact, within1 int
				var se float64
				maxd := 0
				for i, img := range inputs {
					out, err := s.Apply(name, sev, img, nil)
					if err != nil {
						t.Fatal(err)
					}
					got := out.Bytes(s.Quantize())
					ref := want.data[((sev-1)*16+i)*3072:][:3072]
					for j := range got {
						d := int(got[j]) - int(ref[j])
						n++
						if d == 0 {
							exact++
						}
						if d >= -1 && d <= 1 {
							within1++
						}
						maxd = max(maxd, abs(d))
						se += float64(d * d)
					}
				}
				psnr := 10 * math.Log10(255*255/(se/float64(n)))
				frac := float64(within1) / float64(n)
				t.Logf("severity %d: exact %.2f%%, within ±1 %.2f%%, max |Δ| %d, PSNR %.1f dB",
					sev, 100*float64(exact)/float64(n), 100*frac, maxd, psnr)
				if name == "jpeg_compression" {
					if psnr < 35 {
						t.Errorf("severity %d: PSNR %.1f dB, want ≥ 35", sev, psnr)
					}
				} else if frac < 0.99 {
					t.Errorf("severity %d: %.2f%% of values within ±1, want ≥ 99%%", sev, 100*frac)
				}
				if exact != n {
					t.Errorf("severity %d: %d of %d values differ from the reference", sev, n-exact, n)
				}
			}
		})
	}
}
