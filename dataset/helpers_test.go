package dataset

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/npy"
	"github.com/rws-project/rws/tensor"
)

// Helpers that write small datasets in their real on-disk formats.

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.IntN(256))
	}
	return b
}

// idxBytes returns an IDX file of unsigned bytes: 00 00 08 NDIM, big-endian dims, data.
func idxBytes(dims []int, data []byte) []byte {
	b := []byte{0, 0, 8, byte(len(dims))}
	for _, d := range dims {
		b = binary.BigEndian.AppendUint32(b, uint32(d))
	}
	return append(b, data...)
}

func gzipBytes(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// writeIDXDir writes an MNIST-style folder (both splits, n images of h×w each) and returns the
// test split's images and labels.
func writeIDXDir(t *testing.T, dir string, n, h, w int, gz bool, seed uint64) ([]byte, []int) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 1))
	var testImg []byte
	var testLab []int
	for _, prefix := range []string{"train", "t10k"} {
		img := randBytes(rng, n*h*w)
		lab := make([]byte, n)
		for i := range lab {
			lab[i] = byte(rng.IntN(10))
		}
		ib, lb := idxBytes([]int{n, h, w}, img), idxBytes([]int{n}, lab)
		iname, lname := prefix+"-images-idx3-ubyte", prefix+"-labels-idx1-ubyte"
		if gz {
			ib, lb = gzipBytes(t, ib), gzipBytes(t, lb)
			iname, lname = iname+".gz", lname+".gz"
		}
		writeFile(t, filepath.Join(dir, iname), ib)
		writeFile(t, filepath.Join(dir, lname), lb)
		if prefix == "t10k" {
			testImg = img
			for _, l := range lab {
				testLab = append(testLab, int(l))
			}
		}
	}
	return testImg, testLab
}

// cifarRecords returns n CIFAR records (nlabels label bytes + 3 planes of 32×32) with labels
// below classes, the expected HWC images, and the label bytes.
func cifarRecords(rng *rand.Rand, n, nlabels int, classes []int) (rec, hwc []byte, labels [][]int) {
	labels = make([][]int, nlabels)
	for range n {
		for k := range nlabels {
			l := rng.IntN(classes[k])
			labels[k] = append(labels[k], l)
			rec = append(rec, byte(l))
		}
		planes := randBytes(rng, 3072)
		rec = append(rec, planes...)
		// HWC from the documented layout: channel c of pixel (y, x) is planes[c*1024 + y*32 + x].
		for y := range 32 {
			for x := range 32 {
				for c := range 3 {
					hwc = append(hwc, planes[c*1024+y*32+x])
				}
			}
		}
	}
	return rec, hwc, labels
}

// writeNPY writes a .npy file.
func writeNPY(t *testing.T, path string, d tensor.DType, shape []int64, data []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := npy.WriteFile(path, npy.Header{DType: d, Shape: shape}, data, npy.WriteOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
}

func int64Bytes(v []int) []byte {
	var b []byte
	for _, x := range v {
		b = binary.LittleEndian.AppendUint64(b, uint64(int64(x)))
	}
	return b
}

// writePNG writes an RGB (c 3) or grey (c 1) PNG from h×w×c bytes.
func writePNG(t *testing.T, path string, h, w, c int, pix []byte) {
	t.Helper()
	b, err := EncodePNG(pix, h, w, c)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, b)
}

// writeJPEG writes a flat-coloured RGB JPEG at quality 100.
func writeJPEG(t *testing.T, path string, h, w int, c color.RGBA) {
	t.Helper()
	m := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.Set(x, y, c)
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 100}); err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, buf.Bytes())
}

// wantErr fails unless err is non-nil and contains every part.
func wantErr(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want one containing %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Fatalf("error %q does not contain %q", err, p)
		}
	}
	if !strings.HasPrefix(err.Error(), "dataset: ") {
		t.Errorf("error %q does not start with \"dataset: \"", err)
	}
}
