package corrupt

import (
	"errors"
	"fmt"
	"image"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

// TestLookup checks the registered suites and their corruption lists.
func TestLookup(t *testing.T) {
	common := []string{"gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur",
		"motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness", "contrast", "elastic_transform",
		"pixelate", "jpeg_compression", "speckle_noise", "gaussian_blur", "spatter", "saturate"}
	for _, name := range []string{"cifar10-c", "imagenet-c"} {
		s, err := Lookup(name)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(s.Corruptions(), common) {
			t.Errorf("%s: corruptions %v, want %v", name, s.Corruptions(), common)
		}
		if s.Quantize() != Truncate {
			t.Errorf("%s: quantize %v, want truncate", name, s.Quantize())
		}
		if got := s.Severities("fog"); !slices.Equal(got, []int{1, 2, 3, 4, 5}) {
			t.Errorf("%s: fog severities %v", name, got)
		}
		if s.Severities("rain") != nil {
			t.Errorf("%s: severities of an unknown corruption are not nil", name)
		}
	}
	if _, err := Lookup("svhn-c"); !errors.Is(err, ErrUnknown) {
		t.Errorf("Lookup of an unknown suite: %v, want ErrUnknown", err)
	}
	if !slices.Contains(SuiteNames(), "cifar10-c") {
		t.Errorf("SuiteNames() = %v", SuiteNames())
	}
}

// TestApplyErrors checks Apply's refusals.
func TestApplyErrors(t *testing.T) {
	s, _ := Lookup("cifar10-c")
	img := referenceInputs(t)[0]
	rng := NewRand(0, "", "", 0, 0)
	for _, tc := range []struct {
		name, corruption string
		sev              int
		img              Image
		rng              *rand.Rand
		unknown          bool
	}{
		{"unknown corruption", "rain", 1, img, rng, true},
		{"severity 0", "fog", 0, img, rng, true},
		{"severity 6", "fog", 6, img, rng, true},
		{"nil stream for a random corruption", "fog", 1, img, nil, false},
		{"two channels", "contrast", 1, Image{Pix: make([]float64, 32*32*2), H: 32, W: 32, C: 2}, rng, false},
		{"short pixel slice", "contrast", 1, Image{Pix: make([]float64, 10), H: 32, W: 32, C: 3}, rng, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Apply(tc.corruption, tc.sev, tc.img, tc.rng)
			if err == nil {
				t.Fatal("no error")
			}
			if errors.Is(err, ErrUnknown) != tc.unknown {
				t.Errorf("%v: errors.Is(ErrUnknown) = %v, want %v", err, !tc.unknown, tc.unknown)
			}
		})
	}
	if _, err := s.Apply("contrast", 1, img, nil); err != nil {
		t.Errorf("deterministic corruption with a nil stream: %v", err)
	}
}

// TestNewSuite checks the validation of suite tables and registration.
func TestNewSuite(t *testing.T) {
	id := func(img Image, _ int, _ *rand.Rand, _ *Options) (Image, error) { return img.Clone(), nil }
	ok := Corruption{Name: "identity", Severities: []int{0}, Apply: id}
	for _, tc := range []struct {
		name  string
		suite string
		list  []Corruption
	}{
		{"empty suite name", "", []Corruption{ok}},
		{"empty corruption name", "x", []Corruption{{Severities: []int{1}, Apply: id}}},
		{"no severity", "x", []Corruption{{Name: "a", Apply: id}}},
		{"no function", "x", []Corruption{{Name: "a", Severities: []int{1}}}},
		{"duplicate", "x", []Corruption{ok, ok}},
	} {
		if _, err := NewSuite(tc.suite, Round, 1, tc.list); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
	name := fmt.Sprintf("test-suite-%d", time.Now().UnixNano()) // the registry outlives -count
	s, err := NewSuite(name, Round, 1, []Corruption{ok})
	if err != nil {
		t.Fatal(err)
	}
	if err := Register(s); err != nil {
		t.Fatal(err)
	}
	if err := Register(s); err == nil {
		t.Error("second Register of the same name: no error")
	}
	got, err := Lookup(name)
	if err != nil || got != s {
		t.Errorf("Lookup after Register: %v, %v", got, err)
	}
}

// TestCIFARGreyAndOtherSizes runs every cifar10-c corruption at every severity on the 28×28 grey
// reference inputs: no error, the shape kept, finite values, and a change for all but saturate
// (which leaves grey images alone, as imagecorruptions' grey branch does).
func TestCIFARGreyAndOtherSizes(t *testing.T) {
	s, _ := Lookup("cifar10-c")
	inputs := grayInputs(t)[:4]
	for _, name := range s.Corruptions() {
		for _, sev := range s.Severities(name) {
			change := 0.0
			for i, img := range inputs {
				out, err := s.Apply(name, sev, img, NewRand(5, s.Name(), name, sev, i))
				if err != nil {
					t.Fatalf("%s %d: %v", name, sev, err)
				}
				if out.H != 28 || out.W != 28 || out.C != 1 {
					t.Fatalf("%s %d: output %dx%dx%d", name, sev, out.H, out.W, out.C)
				}
				for j, v := range out.Pix {
					if math.IsNaN(v) || math.IsInf(v, 0) {
						t.Fatalf("%s %d: value %v", name, sev, v)
					}
					change += math.Abs(float64(Truncate.Byte(v)) - float64(Truncate.Byte(img.Pix[j])))
				}
			}
			if change == 0 && name != "saturate" {
				t.Errorf("%s %d: grey images unchanged", name, sev)
			}
			if change != 0 && name == "saturate" {
				t.Errorf("saturate %d changed grey images", sev)
			}
		}
	}
}

// TestLoadTextures writes two small PNG textures, loads them and checks that frost uses them
// (a flat white texture brightens every pixel by b·255 at least up to the clip).
func TestLoadTextures(t *testing.T) {
	dir := t.TempDir()
	if _, err := LoadTextures(dir); err == nil {
		t.Error("empty folder: no error")
	}
	for _, name := range []string{"a.png", "b.PNG"} {
		img := image.NewRGBA(image.Rect(0, 0, 200, 180))
		for i := range img.Pix {
			img.Pix[i] = 255
		}
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if err := png.Encode(f, img); err != nil {
			t.Fatal(err)
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a texture"), 0o644); err != nil {
		t.Fatal(err)
	}
	tex, err := LoadTextures(dir)
	if err != nil {
		t.Fatal(err)
	}
	if tex.Len() != 2 || tex.String() != dir {
		t.Fatalf("loaded %d textures from %q, want 2 from %q", tex.Len(), tex.String(), dir)
	}
	for _, tc := range []struct {
		suite string
		a, b  float64 // frost's severity-1 weights
	}{{"cifar10-c", 1, 0.2}, {"imagenet-c", 1, 0.4}} {
		s, _ := Lookup(tc.suite)
		s = s.WithOptions(Options{Frost: tex})
		img := mosaic(t, 64)
		out, err := s.Apply("frost", 1, img, NewRand(1, tc.suite, "frost", 1, 0))
		if err != nil {
			t.Fatal(err)
		}
		a, b, suite := tc.a, tc.b, tc.suite
		for i, v := range out.Pix {
			want := min(a*img.Pix[i]*255+b*255, 255) / 255
			if math.Abs(v-want) > 1e-9 {
				t.Fatalf("%s: value %d is %v, want %v from a white texture", suite, i, v, want)
			}
		}
	}
	bad := filepath.Join(dir, "c.jpg")
	if err := os.WriteFile(bad, []byte("not a jpeg"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadTextures(dir); err == nil {
		t.Error("corrupt texture file: no error")
	}
}

// TestImageConversions checks the byte rules and the conversions to and from image.Image.
func TestImageConversions(t *testing.T) {
	for _, tc := range []struct {
		v          float64
		trunc, rnd uint8
	}{
		{-0.1, 0, 0}, {math.NaN(), 0, 0}, {0, 0, 0}, {1, 255, 255}, {1.5, 255, 255},
		{100.5 / 255, 100, 100}, {101.5 / 255, 101, 102}, {100.7 / 255, 100, 101},
	} {
		if got := Truncate.Byte(tc.v); got != tc.trunc {
			t.Errorf("Truncate.Byte(%v) = %d, want %d", tc.v, got, tc.trunc)
		}
		if got := Round.Byte(tc.v); got != tc.rnd {
			t.Errorf("Round.Byte(%v) = %d, want %d", tc.v, got, tc.rnd)
		}
	}
	for k := 0; k < 256; k++ {
		if Truncate.Byte(unitTable[k]) != uint8(k) || byteOf(unitTable[k]) != k {
			t.Fatalf("byte %d does not survive the round trip", k)
		}
	}
	src := referenceInputs(t)[3]
	back, err := FromImage(src.ToImage(Truncate), 3)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Pix, src.Pix) {
		t.Error("ToImage → FromImage changed an RGB image")
	}
	g := grayInputs(t)[0]
	back, err = FromImage(g.ToImage(Truncate), 1)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(back.Pix, g.Pix) {
		t.Error("ToImage → FromImage changed a grey image")
	}
	if _, err := FromUint8(make([]uint8, 10), 2, 2, 3); err == nil {
		t.Error("FromUint8 with a wrong length: no error")
	}
}
