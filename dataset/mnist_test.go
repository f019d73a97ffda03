package dataset

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/npy"
)

// TestEmbeddedMNISTFiles checks the embedded files against the MD5 sums torchvision lists for
// the original MNIST files (torchvision/datasets/mnist.py, MNIST.resources).
func TestEmbeddedMNISTFiles(t *testing.T) {
	want := map[string]string{
		"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
		"train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
		"t10k-images-idx3-ubyte.gz":  "9fb629c4189551a2d022fa330f9573f3",
		"t10k-labels-idx1-ubyte.gz":  "ec29112dd5afa0611ce80d1b7f02629c",
	}
	for name, sum := range want {
		b, err := fs.ReadFile(mnistFS, "mnistdata/"+name)
		if err != nil {
			t.Fatal(err)
		}
		got := md5.Sum(b)
		if hex.EncodeToString(got[:]) != sum {
			t.Errorf("%s: md5 %x, want %s", name, got, sum)
		}
	}
}

// TestMNIST loads the embedded MNIST. Expected values were read from the IDX files themselves
// with NumPy (counts: np.bincount of the labels; sums: a.sum() of the uint8 images):
//
//	l = np.frombuffer(gzip.open("train-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
//	a = np.frombuffer(gzip.open("train-images-idx3-ubyte.gz").read(), np.uint8, offset=16)
//
// The first labels are also visible with `zcat train-labels-idx1-ubyte.gz | xxd -s 8 -l 10`.
func TestMNIST(t *testing.T) {
	tests := []struct {
		split        Split
		n            int
		first        []int
		counts       []int
		sum0, sumAll int64
	}{
		{Train, 60000, []int{5, 0, 4, 1, 9, 2, 1, 3, 1, 4},
			[]int{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949}, 27525, 1567298545},
		{Test, 10000, []int{7, 2, 1, 0, 4, 1, 4, 9, 5, 9},
			[]int{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009}, 18454, 264923200},
	}
	for _, tt := range tests {
		t.Run(string(tt.split), func(t *testing.T) {
			s, err := Open("mnist", tt.split)
			if err != nil {
				t.Fatal(err)
			}
			if s.N != tt.n || s.H != 28 || s.W != 28 || s.C != 1 || s.Classes != 10 || s.Name != "mnist/"+string(tt.split) {
				t.Fatalf("%s: %d×%d×%d×%d, %d classes", s.Name, s.N, s.H, s.W, s.C, s.Classes)
			}
			if !reflect.DeepEqual(s.Labels[:10], tt.first) {
				t.Errorf("first labels %v, want %v", s.Labels[:10], tt.first)
			}
			counts := make([]int, 10)
			for _, l := range s.Labels {
				counts[l]++
			}
			if !reflect.DeepEqual(counts, tt.counts) {
				t.Errorf("class counts %v, want %v", counts, tt.counts)
			}
			var sum0, all int64
			for i, v := range s.Images {
				if i < 28*28 {
					sum0 += int64(v)
				}
				all += int64(v)
			}
			if sum0 != tt.sum0 || all != tt.sumAll {
				t.Errorf("pixel sums: image 0 %d, all %d; want %d, %d", sum0, all, tt.sum0, tt.sumAll)
			}
		})
	}
}

// TestFashionMNIST reads the Debian package's files when installed and compares the first 16
// test images with testdata/fashion_mnist_test_0-15.npy (see testdata/README.md).
func TestFashionMNIST(t *testing.T) {
	if _, err := os.Stat(FashionMNISTDir); err != nil {
		t.Skipf("%s missing (apt-get install dataset-fashion-mnist)", FashionMNISTDir)
	}
	s, err := Open("fashion-mnist", Test)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := npy.ReadFile(filepath.Join("testdata", "fashion_mnist_test_0-15.npy"))
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 10000 || s.H != 28 || s.W != 28 {
		t.Fatalf("%d×%d×%d", s.N, s.H, s.W)
	}
	if got := s.Limit(16).Images; string(got) != string(ref.Data) {
		t.Fatal("first 16 test images differ from the reference array")
	}
	want := []int{9, 2, 1, 1, 6, 1, 4, 6, 5, 7, 4, 5, 7, 3, 4, 1} // inputs.json of the reference
	if !reflect.DeepEqual(s.Labels[:16], want) {
		t.Fatalf("labels %v, want %v", s.Labels[:16], want)
	}
	tr, err := Open("fashion-mnist", Train)
	if err != nil {
		t.Fatal(err)
	}
	// Train labels start 9 0 0 3 (IDX file) and each class has 6000 images (Fashion-MNIST README).
	counts := make([]int, 10)
	for _, l := range tr.Labels {
		counts[l]++
	}
	if tr.N != 60000 || !reflect.DeepEqual(tr.Labels[:4], []int{9, 0, 0, 3}) || counts[0] != 6000 || counts[9] != 6000 {
		t.Fatalf("train: N %d labels %v counts %v", tr.N, tr.Labels[:4], counts)
	}
}

func BenchmarkOpenMNISTTrain(b *testing.B) {
	for b.Loop() {
		if _, err := Open("mnist", Train); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCorruptMNIST corrupts 2000 MNIST test images with MNIST-C shot_noise on one worker
// (the baseline) and on all cores.
func BenchmarkCorruptMNIST(b *testing.B) {
	s, err := Open("mnist", Test)
	if err != nil {
		b.Fatal(err)
	}
	s = s.Limit(2000)
	suite, err := corrupt.Lookup("mnist-c")
	if err != nil {
		b.Fatal(err)
	}
	dst := make([]byte, len(s.Images))
	for _, w := range []int{1, 0} {
		b.Run(fmt.Sprintf("workers=%d", w), func(b *testing.B) {
			b.SetBytes(int64(len(s.Images)))
			for b.Loop() {
				if err := CorruptInto(context.Background(), dst, s, suite, "shot_noise", 5, CorruptOptions{Workers: w}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
