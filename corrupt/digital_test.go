package corrupt

import "testing"

// TestPILOddSize compares the JPEG round trip and the pixelate resizes with Pillow 9.4
// (libjpeg-turbo 2.1.5) on a 37×45 image, whose partial blocks and MCUs exercise the edge
// padding (testdata/cifar10c/pil_*.npy, written by scripts/gen_cifar_pil.py): every value must
// be equal.
func TestPILOddSize(t *testing.T) {
	in := readNpyU8(t, cifarTestdata("pil_input.npy"))
	rgb, err := FromUint8(in.data, 37, 45, 3)
	if err != nil {
		t.Fatal(err)
	}
	// PIL's convert('L'): (R·19595 + G·38470 + B·7471 + 0x8000) >> 16.
	g := make([]uint8, 37*45)
	for i := range g {
		r, gg, b := int(in.data[3*i]), int(in.data[3*i+1]), int(in.data[3*i+2])
		g[i] = uint8((r*19595 + gg*38470 + b*7471 + 0x8000) >> 16)
	}
	gray, _ := FromUint8(g, 37, 45, 1)
	cases := []struct {
		file string
		run  func(k int) Image
	}{
		{"pil_jpeg_rgb.npy", func(k int) Image { return jpegRoundTrip(rgb, []int{80, 25, 7}[k]) }},
		{"pil_jpeg_gray.npy", func(k int) Image { return jpegRoundTrip(gray, []int{80, 25, 7}[k]) }},
		{"pil_pixelate_box.npy", func(k int) Image { return pixelate(rgb, []float64{0.65, 0.3}[k], false) }},
		{"pil_pixelate_nearest.npy", func(k int) Image { return pixelate(rgb, []float64{0.65, 0.3}[k], true) }},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			want := readNpyU8(t, cifarTestdata(tc.file))
			n := len(want.data) / want.shape[0]
			for k := 0; k < want.shape[0]; k++ {
				got := tc.run(k).Bytes(Truncate)
				ref := want.data[k*n : (k+1)*n]
				diff := 0
				for i := range got {
					if got[i] != ref[i] {
						diff++
					}
				}
				if diff > 0 {
					t.Errorf("setting %d: %d of %d values differ from Pillow's", k, diff, n)
				}
			}
		})
	}
}

// TestJPEGQuantTable checks the IJG quality scaling against values computed by hand from
// jpeg_quality_scaling: quality 50 keeps the Annex K table, 80 scales by 0.4, 7 by 5000/7 % and
// clamps at 255.
func TestJPEGQuantTable(t *testing.T) {
	for _, tc := range []struct {
		q          int
		luma0, l63 int32
	}{
		{50, 16, 99},
		{80, 6, 40},   // (16·40+50)/100 = 6, (99·40+50)/100 = 40
		{7, 114, 255}, // scale 714: (16·714+50)/100 = 114, 99·714 → 255
	} {
		got := jpegQuantTable(&jpegStdLuma, tc.q)
		if got[0] != tc.luma0 || got[63] != tc.l63 {
			t.Errorf("quality %d: entries 0 and 63 = %d, %d, want %d, %d", tc.q, got[0], got[63], tc.luma0, tc.l63)
		}
	}
}
