package corrupt

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/rws-project/rws/internal/atomicfile"
)

// writeSheetPNG writes img to dir/name through atomicfile when dir is not empty.
func writeSheetPNG(t *testing.T, dir, name string, img image.Image) {
	t.Helper()
	if dir == "" {
		return
	}
	path := filepath.Join(dir, name)
	f, err := atomicfile.Create(path, atomicfile.Options{Force: true})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Abort()
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", path)
}

// TestSheet draws the cifar10-c contact sheet of the 16 reference inputs and checks its layout
// and that it is reproducible. With RWS_SHEET_DIR set it also writes sheet_cifar.png there (for
// looking at).
func TestSheet(t *testing.T) {
	s, _ := Lookup("cifar10-c")
	inputs := referenceInputs(t)
	img, err := Sheet(s, inputs, 1)
	if err != nil {
		t.Fatal(err)
	}
	groupW := 6*34 - 2
	wantW, wantH := 16*(groupW+8)-8, 19*34-2
	if b := img.Bounds(); b.Dx() != wantW || b.Dy() != wantH {
		t.Fatalf("sheet is %dx%d, want %dx%d", b.Dx(), b.Dy(), wantW, wantH)
	}
	// The clean cell of row 0, image 0 is the input itself.
	r, g, b, _ := img.At(5, 7).RGBA()
	p := inputs[0].Bytes(Truncate)[(7*32+5)*3:]
	if uint8(r>>8) != p[0] || uint8(g>>8) != p[1] || uint8(b>>8) != p[2] {
		t.Errorf("clean cell pixel (5, 7) = %d %d %d, want %v", r>>8, g>>8, b>>8, p[:3])
	}
	again, err := Sheet(s, inputs, 1)
	if err != nil {
		t.Fatal(err)
	}
	if string(img.(*image.RGBA).Pix) != string(again.(*image.RGBA).Pix) {
		t.Error("two sheets with the same seed differ")
	}
	writeSheetPNG(t, os.Getenv("RWS_SHEET_DIR"), "sheet_cifar.png", img)
	if _, err := Sheet(s, nil, 1); err == nil {
		t.Error("Sheet with no images: no error")
	}
}
