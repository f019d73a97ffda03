package dataset

import (
	"bytes"
	"context"
	"errors"
	"image/color"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"testing"

	"github.com/rws-project/rws/corrupt"
	"github.com/rws-project/rws/tensor"
)

func TestParseSpec(t *testing.T) {
	tests := []struct {
		in   string
		want Spec
		err  string
	}{
		{in: "mnist", want: Spec{Kind: "mnist"}},
		{in: "mnist:/d", want: Spec{Kind: "mnist", Path: "/d"}},
		{in: "fashion-mnist", want: Spec{Kind: "fashion-mnist"}},
		{in: "fashion-mnist:/x/y", want: Spec{Kind: "fashion-mnist", Path: "/x/y"}},
		{in: "idx:a,b", want: Spec{Kind: "idx", Path: "a", Labels: "b"}},
		{in: "cifar10:/c", want: Spec{Kind: "cifar10", Path: "/c"}},
		{in: "cifar100:/c,coarse", want: Spec{Kind: "cifar100", Path: "/c", Coarse: true}},
		{in: "cifar10c:/c", want: Spec{Kind: "cifar10c", Path: "/c"}},
		{in: "cifar10c:/c,fog", want: Spec{Kind: "cifar10c", Path: "/c", Corruption: "fog"}},
		{in: "cifar100c:/c,fog,5", want: Spec{Kind: "cifar100c", Path: "/c", Corruption: "fog", Severity: 5}},
		{in: "mnistc:/m,shear", want: Spec{Kind: "mnistc", Path: "/m", Corruption: "shear"}},
		{in: "folder:/f", want: Spec{Kind: "folder", Path: "/f"}},
		{in: "npy:x.npy", want: Spec{Kind: "npy", Path: "x.npy"}},
		{in: "npy:x.npy,y.npy", want: Spec{Kind: "npy", Path: "x.npy", Labels: "y.npy"}},
		{in: "cifar", err: `unknown dataset kind "cifar" (want one of: mnist, fashion-mnist`},
		{in: "cifar10", err: "want cifar10:DIR"},
		{in: "npy", err: "want npy:IMAGES[,LABELS]"},
		{in: "npy:", err: `empty path after "npy:"`},
		{in: "npy:a,,b", err: "empty field"},
		{in: "npy:a,b,c", err: "want npy:IMAGES[,LABELS]"},
		{in: "mnist:a,b", err: "want mnist or mnist:DIR"},
		{in: "cifar100:/c,fine", err: `unknown option "fine" (want coarse)`},
		{in: "cifar10c:/c,fog,6", err: `severity "6" is not 1 to 5`},
		{in: "cifar10c:/c,fog,x", err: `severity "x" is not 1 to 5`},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseSpec(tt.in)
			if tt.err != "" {
				wantErr(t, err, `spec "`+tt.in+`"`, tt.err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("ParseSpec = %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Fatalf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
	if _, err := Open("mnist", "validation"); err == nil {
		t.Fatal("Open with split \"validation\": no error")
	}
}

func TestIDX(t *testing.T) {
	for _, gz := range []bool{false, true} {
		name := map[bool]string{false: "raw", true: "gz"}[gz]
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			img, lab := writeIDXDir(t, dir, 7, 5, 4, gz, 1)
			s, err := Open("mnist:"+dir, Test)
			if err != nil {
				t.Fatal(err)
			}
			if s.N != 7 || s.H != 5 || s.W != 4 || s.C != 1 || s.Classes != 10 || len(s.ClassNames) != 10 {
				t.Fatalf("shape %d×%d×%d×%d, %d classes", s.N, s.H, s.W, s.C, s.Classes)
			}
			if !bytes.Equal(s.Images, img) || !reflect.DeepEqual(s.Labels, lab) {
				t.Fatal("images or labels differ from the written files")
			}
			if s.Name != "mnist/test" {
				t.Errorf("Name = %q", s.Name)
			}
			tr, err := Open("fashion-mnist:"+dir, Train)
			if err != nil {
				t.Fatal(err)
			}
			if tr.Name != "fashion-mnist/train" || tr.ClassNames[9] != "Ankle boot" || bytes.Equal(tr.Images, img) {
				t.Fatalf("train split: name %q, class 9 %q", tr.Name, tr.ClassNames[9])
			}
			// One explicit pair of files, with and without labels.
			ext := map[bool]string{false: "", true: ".gz"}[gz]
			ip, lp := filepath.Join(dir, "t10k-images-idx3-ubyte"+ext), filepath.Join(dir, "t10k-labels-idx1-ubyte"+ext)
			p, err := Open("idx:"+ip+","+lp, Test)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Images, img) || !reflect.DeepEqual(p.Labels, lab) {
				t.Fatal("idx pair differs")
			}
			u, err := Open("idx:"+ip, Train)
			if err != nil {
				t.Fatal(err)
			}
			if u.Labels != nil || u.Classes != 0 || u.N != 7 {
				t.Fatalf("unlabelled idx: labels %v classes %d", u.Labels, u.Classes)
			}
		})
	}
}

func TestIDXErrors(t *testing.T) {
	good := idxBytes([]int{2, 3, 3}, make([]byte, 18))
	goodLab := idxBytes([]int{2}, []byte{1, 2})
	tests := []struct {
		name       string
		img, lab   []byte
		spec       string // "idx" (pair) or "mnist" (folder: labels limited to 10 classes)
		want       []string
		isNotFound bool
	}{
		{name: "wrong magic", img: append([]byte{1, 2, 8, 3}, good[4:]...), lab: goodLab, want: []string{"bad IDX magic 01 02 08 03", "not an IDX file"}},
		{name: "not bytes", img: append([]byte{0, 0, 0x0d, 3}, good[4:]...), lab: goodLab, want: []string{"element type 0x0d is not 0x08"}},
		{name: "truncated", img: good[:len(good)-1], lab: goodLab, want: []string{"IDX file is truncated: dimensions [2 3 3] need 18 bytes, file has 17"}},
		{name: "too long", img: append(good, 0), lab: goodLab, want: []string{"longer than its header says"}},
		{name: "short header", img: good[:9], lab: goodLab, want: []string{"header with 3 dimensions is truncated"}},
		{name: "tiny", img: good[:2], lab: goodLab, want: []string{"too short for its magic number"}},
		{name: "label count", img: good, lab: idxBytes([]int{3}, []byte{1, 2, 3}), want: []string{"has 3 labels but", "has 2 images"}},
		{name: "label dims", img: good, lab: idxBytes([]int{2, 1}, []byte{1, 2}), want: []string{"IDX labels have dimensions [2 1], want one"}},
		{name: "label out of range", img: good, lab: idxBytes([]int{2}, []byte{3, 10}), spec: "mnist", want: []string{"label 10 of image 1 is out of range [0, 10)"}},
		{name: "bad gzip", img: []byte{0x1f, 0x8b, 1, 2, 3}, lab: goodLab, want: []string{"gzip"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ip, lp := filepath.Join(dir, "t10k-images-idx3-ubyte"), filepath.Join(dir, "t10k-labels-idx1-ubyte")
			writeFile(t, ip, tt.img)
			writeFile(t, lp, tt.lab)
			spec := "idx:" + ip + "," + lp
			if tt.spec == "mnist" {
				spec = "mnist:" + dir
			}
			_, err := Open(spec, Test)
			wantErr(t, err, tt.want...)
		})
	}
	t.Run("truncated gzip", func(t *testing.T) {
		dir := t.TempDir()
		writeIDXDir(t, dir, 3, 2, 2, true, 2)
		p := filepath.Join(dir, "t10k-images-idx3-ubyte.gz")
		b, _ := os.ReadFile(p)
		writeFile(t, p, b[:len(b)-10])
		_, err := Open("mnist:"+dir, Test)
		wantErr(t, err, "t10k-images-idx3-ubyte.gz", "gzip", "truncated or corrupt")
	})
	t.Run("missing folder", func(t *testing.T) {
		_, err := Open("fashion-mnist:/nonexistent/fmnist", Test)
		wantErr(t, err, `folder "/nonexistent/fmnist" not found`)
		if !errors.Is(err, ErrNotFound) {
			t.Fatalf("error %v is not ErrNotFound", err)
		}
		// The default Fashion-MNIST folder says how to install it.
		_, err = loadIDXDir("/nonexistent/fmnist", Test, "fashion-mnist", fashionNames, "install it with 'apt-get install dataset-fashion-mnist'")
		wantErr(t, err, "apt-get install dataset-fashion-mnist")
	})
	t.Run("missing files", func(t *testing.T) {
		_, err := Open("mnist:"+t.TempDir(), Train)
		wantErr(t, err, "lacks train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]")
	})
}

func TestCIFAR10(t *testing.T) {
	rng := rand.New(rand.NewPCG(10, 1))
	root := t.TempDir()
	dir := filepath.Join(root, "cifar-10-batches-bin") // Open accepts the archive's parent
	var trainImg []byte
	var trainLab []int
	for i := 1; i <= 5; i++ {
		rec, hwc, lab := cifarRecords(rng, 2, 1, []int{10})
		writeFile(t, filepath.Join(dir, "data_batch_"+string(rune('0'+i))+".bin"), rec)
		trainImg = append(trainImg, hwc...)
		trainLab = append(trainLab, lab[0]...)
	}
	rec, testImg, testLab := cifarRecords(rng, 3, 1, []int{10})
	writeFile(t, filepath.Join(dir, "test_batch.bin"), rec)

	for _, tt := range []struct {
		split Split
		img   []byte
		lab   []int
	}{{Train, trainImg, trainLab}, {Test, testImg, testLab[0]}} {
		s, err := Open("cifar10:"+root, tt.split)
		if err != nil {
			t.Fatal(err)
		}
		if s.N != len(tt.lab) || s.H != 32 || s.W != 32 || s.C != 3 || s.Classes != 10 || s.ClassNames[9] != "truck" {
			t.Fatalf("%s: %d×%d×%d×%d, classes %d %v", tt.split, s.N, s.H, s.W, s.C, s.Classes, s.ClassNames)
		}
		if !bytes.Equal(s.Images, tt.img) || !reflect.DeepEqual(s.Labels, tt.lab) {
			t.Fatalf("%s: images or labels differ", tt.split)
		}
	}

	// Class names come from batches.meta.txt when present.
	writeFile(t, filepath.Join(dir, "batches.meta.txt"), []byte("a\nb\nc\nd\ne\nf\ng\nh\ni\nj\n\n"))
	s, err := Open("cifar10:"+dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.ClassNames[0] != "a" || s.ClassNames[9] != "j" {
		t.Fatalf("ClassNames = %v", s.ClassNames)
	}

	t.Run("errors", func(t *testing.T) {
		bad := t.TempDir()
		_, err := Open("cifar10:"+filepath.Join(bad, "nope"), Test)
		wantErr(t, err, "not found", "cifar-10-binary.tar.gz")
		if !errors.Is(err, ErrNotFound) {
			t.Fatal("not ErrNotFound")
		}
		_, err = Open("cifar10:"+bad, Test)
		wantErr(t, err, "test_batch.bin", "is missing")
		writeFile(t, filepath.Join(bad, "test_batch.bin"), rec[:len(rec)-1])
		_, err = Open("cifar10:"+bad, Test)
		wantErr(t, err, "has 9218 bytes, not a whole number of 3073-byte records")
		r2 := bytes.Clone(rec)
		r2[3073] = 10
		writeFile(t, filepath.Join(bad, "test_batch.bin"), r2)
		_, err = Open("cifar10:"+bad, Test)
		wantErr(t, err, "label 10 of record 1 is out of range [0, 10)")
		_, err = Open("cifar10:"+filepath.Join(bad, "test_batch.bin"), Test)
		wantErr(t, err, "is not a folder")
	})
}

func TestCIFAR100(t *testing.T) {
	rng := rand.New(rand.NewPCG(100, 1))
	dir := t.TempDir()
	rec, img, lab := cifarRecords(rng, 4, 2, []int{20, 100})
	writeFile(t, filepath.Join(dir, "test.bin"), rec)
	fine, err := Open("cifar100:"+dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if fine.Classes != 100 || !reflect.DeepEqual(fine.Labels, lab[1]) || !bytes.Equal(fine.Images, img) || fine.ClassNames != nil {
		t.Fatalf("fine: classes %d labels %v want %v", fine.Classes, fine.Labels, lab[1])
	}
	coarse, err := Open("cifar100:"+dir+",coarse", Test)
	if err != nil {
		t.Fatal(err)
	}
	if coarse.Classes != 20 || !reflect.DeepEqual(coarse.Labels, lab[0]) || !bytes.Equal(coarse.Images, img) {
		t.Fatalf("coarse: classes %d labels %v want %v", coarse.Classes, coarse.Labels, lab[0])
	}
	_, err = Open("cifar100:"+dir, Train)
	wantErr(t, err, "train.bin", "is missing", "cifar-100-binary.tar.gz")
}

func TestCIFARC(t *testing.T) {
	rng := rand.New(rand.NewPCG(11, 1))
	dir := t.TempDir()
	const n = 3 // images per severity
	img := randBytes(rng, 5*n*32*32*3)
	lab := make([]int, 5*n)
	for i := range lab {
		lab[i] = rng.IntN(10)
	}
	writeNPY(t, filepath.Join(dir, "fog.npy"), tensor.U8, []int64{5 * n, 32, 32, 3}, img)
	writeNPY(t, filepath.Join(dir, "snow.npy"), tensor.U8, []int64{5 * n, 32, 32, 3}, img)
	writeNPY(t, filepath.Join(dir, "labels.npy"), tensor.I64, []int64{5 * n}, int64Bytes(lab))

	sz := 32 * 32 * 3
	for sev := 1; sev <= 5; sev++ {
		s, err := Open("cifar10c:"+dir+",fog,"+string(rune('0'+sev)), Test)
		if err != nil {
			t.Fatal(err)
		}
		lo, hi := (sev-1)*n, sev*n
		if s.N != n || !bytes.Equal(s.Images, img[lo*sz:hi*sz]) || !reflect.DeepEqual(s.Labels, lab[lo:hi]) {
			t.Fatalf("severity %d: N %d, labels %v want %v", sev, s.N, s.Labels, lab[lo:hi])
		}
		if want := "cifar10c:fog:" + string(rune('0'+sev)); s.Name != want {
			t.Fatalf("Name = %q, want %q", s.Name, want)
		}
	}
	all, err := Open("cifar10c:"+dir+",fog", Test)
	if err != nil {
		t.Fatal(err)
	}
	if all.N != 5*n || !bytes.Equal(all.Images, img) || all.ClassNames[0] != "airplane" {
		t.Fatalf("all severities: N %d", all.N)
	}
	c100, err := Open("cifar100c:"+dir+",fog,2", Test)
	if err != nil {
		t.Fatal(err)
	}
	if c100.Classes != 100 {
		t.Fatalf("cifar100c classes %d", c100.Classes)
	}

	// The 5×n×H×W×C layout of rws corrupt, with n labels.
	five := t.TempDir()
	writeNPY(t, filepath.Join(five, "fog.npy"), tensor.U8, []int64{5, n, 32, 32, 3}, img)
	writeNPY(t, filepath.Join(five, "labels.npy"), tensor.I64, []int64{n}, int64Bytes(lab[:n]))
	s4, err := Open("cifar10c:"+five+",fog,4", Test)
	if err != nil {
		t.Fatal(err)
	}
	if s4.N != n || !bytes.Equal(s4.Images, img[3*n*sz:4*n*sz]) || !reflect.DeepEqual(s4.Labels, lab[:n]) {
		t.Fatalf("5-d layout severity 4: N %d labels %v", s4.N, s4.Labels)
	}

	_, err = Open("cifar10c:"+dir, Test)
	wantErr(t, err, "needs a corruption", "available: fog, snow")
	_, err = Open("cifar10c:"+dir+",frost", Test)
	wantErr(t, err, `corruption "frost" not found`, "available: fog, snow")
	_, err = Open("cifar10c:"+dir+",fog", Train)
	wantErr(t, err, "test images only")
	_, err = Open("cifar10c:"+dir+",labels", Test)
	wantErr(t, err, `bad corruption name "labels"`)

	writeNPY(t, filepath.Join(dir, "gray.npy"), tensor.U8, []int64{5 * n, 32, 32}, img[:5*n*32*32])
	_, err = Open("cifar10c:"+dir+",gray", Test)
	wantErr(t, err, "holds U8 [15 32 32], want uint8 5·n×H×W×C or 5×n×H×W×C")

	bad := bytes.Clone(int64Bytes(lab))
	bad[8*4] = 10
	writeNPY(t, filepath.Join(dir, "labels.npy"), tensor.I64, []int64{5 * n}, bad)
	_, err = Open("cifar10c:"+dir+",fog,2", Test)
	wantErr(t, err, "label 10 of image 4 is out of range [0, 10)")

	writeFile(t, filepath.Join(dir, "labels.npy"), []byte("not npy"))
	_, err = Open("cifar10c:"+dir+",fog", Test)
	wantErr(t, err, "labels.npy", "file too short")
}

func TestMNISTC(t *testing.T) {
	rng := rand.New(rand.NewPCG(12, 1))
	dir := t.TempDir()
	img := randBytes(rng, 4*28*28)
	lab := []int{3, 1, 4, 1}
	c := filepath.Join(dir, "mnist_c", "shear")
	writeNPY(t, filepath.Join(c, "test_images.npy"), tensor.U8, []int64{4, 28, 28, 1}, img)
	writeNPY(t, filepath.Join(c, "test_labels.npy"), tensor.I64, []int64{4}, int64Bytes(lab))
	s, err := Open("mnistc:"+dir+",shear", Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 4 || s.C != 1 || s.Classes != 10 || !bytes.Equal(s.Images, img) || !reflect.DeepEqual(s.Labels, lab) || s.Name != "mnistc:shear/test" {
		t.Fatalf("got %s %d×%d×%d×%d %v", s.Name, s.N, s.H, s.W, s.C, s.Labels)
	}
	_, err = Open("mnistc:"+dir+",fog", Test)
	wantErr(t, err, `corruption "fog" not found`, "available: shear")
	_, err = Open("mnistc:"+dir+",shear", Train)
	wantErr(t, err, "train_images.npy")
}

func TestFolder(t *testing.T) {
	rng := rand.New(rand.NewPCG(13, 1))
	dir := t.TempDir()
	const h, w = 6, 5
	cat1, cat2, dog := randBytes(rng, h*w*3), randBytes(rng, h*w*3), randBytes(rng, h*w*3)
	writePNG(t, filepath.Join(dir, "cat", "b.png"), h, w, 3, cat2)
	writePNG(t, filepath.Join(dir, "cat", "a.png"), h, w, 3, cat1)
	writePNG(t, filepath.Join(dir, "dog", "x.PNG"), h, w, 3, dog)
	writeJPEG(t, filepath.Join(dir, "dog", "y.jpg"), h, w, color.RGBA{200, 100, 50, 255})
	writeFile(t, filepath.Join(dir, "dog", "notes.txt"), []byte("skipped"))
	writeFile(t, filepath.Join(dir, "README"), []byte("skipped"))
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		t.Fatal(err)
	}

	s, err := Open("folder:"+dir, Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 4 || s.H != h || s.W != w || s.C != 3 || s.Classes != 3 || !reflect.DeepEqual(s.ClassNames, []string{"cat", "dog", "empty"}) {
		t.Fatalf("got %d×%d×%d×%d classes %v", s.N, s.H, s.W, s.C, s.ClassNames)
	}
	if !reflect.DeepEqual(s.Labels, []int{0, 0, 1, 1}) {
		t.Fatalf("labels %v", s.Labels)
	}
	for i, want := range [][]byte{cat1, cat2, dog} {
		if !bytes.Equal(s.Image(i), want) {
			t.Fatalf("image %d differs from its PNG", i)
		}
	}
	// JPEG is lossy: a flat colour at quality 100 comes back within a few levels.
	jp := s.Image(3)
	for p := 0; p < len(jp); p += 3 {
		for c, want := range []int{200, 100, 50} {
			if d := int(jp[p+c]) - want; d < -3 || d > 3 {
				t.Fatalf("JPEG pixel %d channel %d = %d, want %d±3", p/3, c, jp[p+c], want)
			}
		}
	}

	t.Run("grey", func(t *testing.T) {
		g := t.TempDir()
		a, b := randBytes(rng, 4*3), randBytes(rng, 4*3)
		writePNG(t, filepath.Join(g, "train", "0", "a.png"), 4, 3, 1, a)
		writePNG(t, filepath.Join(g, "test", "0", "a.png"), 4, 3, 1, b)
		writePNG(t, filepath.Join(g, "test", "1", "a.png"), 4, 3, 1, a)
		s, err := Open("folder:"+g, Test)
		if err != nil {
			t.Fatal(err)
		}
		if s.C != 1 || s.N != 2 || !bytes.Equal(s.Images, append(bytes.Clone(b), a...)) || s.Name != "folder:"+g+"/test" {
			t.Fatalf("grey test split: C %d N %d name %q", s.C, s.N, s.Name)
		}
		tr, err := Open("folder:"+g, Train)
		if err != nil {
			t.Fatal(err)
		}
		if tr.N != 1 || !bytes.Equal(tr.Images, a) {
			t.Fatal("grey train split differs")
		}
	})

	t.Run("errors", func(t *testing.T) {
		_, err := Open("folder:/nonexistent/imgs", Test)
		wantErr(t, err, `folder "/nonexistent/imgs" not found`)
		empty := t.TempDir()
		_, err = Open("folder:"+empty, Test)
		wantErr(t, err, "has no class subfolders")
		if err := os.MkdirAll(filepath.Join(empty, "a"), 0o755); err != nil {
			t.Fatal(err)
		}
		_, err = Open("folder:"+empty, Test)
		wantErr(t, err, "has no .png or .jpg images")
		mixed := t.TempDir()
		writePNG(t, filepath.Join(mixed, "a", "1.png"), 4, 4, 3, randBytes(rng, 48))
		writePNG(t, filepath.Join(mixed, "a", "2.png"), 4, 5, 3, randBytes(rng, 60))
		_, err = Open("folder:"+mixed, Test)
		wantErr(t, err, "2.png", "is 5×4 pixels", "is 4×4", "one size")
		broken := t.TempDir()
		writeFile(t, filepath.Join(broken, "a", "1.png"), []byte("\x89PNG\r\n\x1a\nxx"))
		_, err = Open("folder:"+broken, Test)
		wantErr(t, err, "1.png", "not a valid PNG or JPEG")
	})
}

func TestNPY(t *testing.T) {
	rng := rand.New(rand.NewPCG(14, 1))
	dir := t.TempDir()
	p := func(n string) string { return filepath.Join(dir, n) }
	grey, rgb := randBytes(rng, 3*4*5), randBytes(rng, 3*4*5*3)
	writeNPY(t, p("grey.npy"), tensor.U8, []int64{3, 4, 5}, grey)
	writeNPY(t, p("rgb.npy"), tensor.U8, []int64{3, 4, 5, 3}, rgb)
	writeNPY(t, p("lab.npy"), tensor.I64, []int64{3}, int64Bytes([]int{2, 0, 7}))
	writeNPY(t, p("lab32.npy"), tensor.I32, []int64{3}, []byte{1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0})
	writeNPY(t, p("lab2.npy"), tensor.I64, []int64{2}, int64Bytes([]int{1, 2}))
	writeNPY(t, p("neg.npy"), tensor.I64, []int64{3}, int64Bytes([]int{1, -1, 2}))
	writeNPY(t, p("flab.npy"), tensor.F32, []int64{3}, make([]byte, 12))
	writeNPY(t, p("float.npy"), tensor.F32, []int64{1, 2, 2}, make([]byte, 16))
	writeNPY(t, p("c4.npy"), tensor.U8, []int64{1, 2, 2, 4}, make([]byte, 16))
	writeNPY(t, p("flat.npy"), tensor.U8, []int64{16}, make([]byte, 16))

	s, err := Open("npy:"+p("grey.npy")+","+p("lab.npy"), Train)
	if err != nil {
		t.Fatal(err)
	}
	if s.N != 3 || s.H != 4 || s.W != 5 || s.C != 1 || s.Classes != 8 || !bytes.Equal(s.Images, grey) || !reflect.DeepEqual(s.Labels, []int{2, 0, 7}) {
		t.Fatalf("grey: %d×%d×%d×%d classes %d labels %v", s.N, s.H, s.W, s.C, s.Classes, s.Labels)
	}
	s, err = Open("npy:"+p("rgb.npy")+","+p("lab32.npy"), Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.C != 3 || !bytes.Equal(s.Images, rgb) || !reflect.DeepEqual(s.Labels, []int{1, 0, 1}) || s.Classes != 2 {
		t.Fatalf("rgb: C %d labels %v", s.C, s.Labels)
	}
	s, err = Open("npy:"+p("rgb.npy"), Test)
	if err != nil {
		t.Fatal(err)
	}
	if s.Labels != nil || s.Classes != 0 {
		t.Fatal("unlabelled npy has labels")
	}

	for _, tt := range []struct{ spec, want string }{
		{"npy:" + p("float.npy"), "holds F32, want uint8 images"},
		{"npy:" + p("c4.npy"), "has shape [1 2 2 4], want N×H×W or N×H×W×C with C 1 or 3"},
		{"npy:" + p("flat.npy"), "has shape [16]"},
		{"npy:" + p("grey.npy") + "," + p("lab2.npy"), "has 2 labels but"},
		{"npy:" + p("grey.npy") + "," + p("neg.npy"), "label -1 of image 1 is negative"},
		{"npy:" + p("grey.npy") + "," + p("flab.npy"), "want a 1-d integer label array"},
		{"npy:" + p("missing.npy"), "no such file"},
	} {
		t.Run(tt.want, func(t *testing.T) {
			_, err := Open(tt.spec, Test)
			wantErr(t, err, tt.want)
		})
	}
}

func TestSubsetLimit(t *testing.T) {
	s := &Set{Name: "t", N: 4, H: 1, W: 2, C: 1, Images: []byte{0, 1, 10, 11, 20, 21, 30, 31}, Labels: []int{0, 1, 2, 3}, Classes: 4}
	sub, err := s.Subset([]int{3, 1, 3})
	if err != nil {
		t.Fatal(err)
	}
	if sub.N != 3 || !bytes.Equal(sub.Images, []byte{30, 31, 10, 11, 30, 31}) || !reflect.DeepEqual(sub.Labels, []int{3, 1, 3}) {
		t.Fatalf("Subset = %+v", sub)
	}
	sub.Images[0] = 99
	if s.Images[6] != 30 {
		t.Fatal("Subset shares data with its source")
	}
	if _, err := s.Subset([]int{4}); err == nil {
		t.Fatal("Subset out of range: no error")
	}
	l := s.Limit(2)
	if l.N != 2 || !bytes.Equal(l.Images, []byte{0, 1, 10, 11}) || !reflect.DeepEqual(l.Labels, []int{0, 1}) {
		t.Fatalf("Limit(2) = %+v", l)
	}
	if s.Limit(0) != s || s.Limit(9) != s {
		t.Fatal("Limit(0) or Limit(9) is not the whole set")
	}
	if err := l.check(); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseIDX checks that the IDX parser never panics and that an accepted raw file is exactly
// the header it reports followed by the data.
func FuzzParseIDX(f *testing.F) {
	f.Add(idxBytes([]int{2, 3, 3}, make([]byte, 18)))
	f.Add(idxBytes([]int{4}, []byte{1, 2, 3, 4}))
	f.Add([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		dims, data, err := parseIDX(b, "fuzz")
		if err != nil || (len(b) >= 2 && b[0] == 0x1f && b[1] == 0x8b) {
			return
		}
		if !bytes.Equal(idxBytes(dims, data), b) {
			t.Fatalf("dims %v and %d data bytes do not rebuild the input", dims, len(data))
		}
	})
}

func TestCorrupt(t *testing.T) {
	rng := rand.New(rand.NewPCG(15, 1))
	s := &Set{Name: "t", N: 6, H: 32, W: 32, C: 3, Images: randBytes(rng, 6*32*32*3), Labels: []int{0, 1, 2, 3, 4, 5}, Classes: 6}
	suite, err := corrupt.Lookup("cifar10-c")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"gaussian_noise", "contrast"} {
		one, err := Corrupt(context.Background(), s, suite, name, 3, CorruptOptions{Seed: 7, Workers: 1})
		if err != nil {
			t.Fatal(err)
		}
		many, err := Corrupt(context.Background(), s, suite, name, 3, CorruptOptions{Seed: 7, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one.Images, many.Images) {
			t.Fatalf("%s: 1 and 4 workers differ", name)
		}
		if !reflect.DeepEqual(one.Labels, s.Labels) || bytes.Equal(one.Images, s.Images) {
			t.Fatalf("%s: labels changed or images unchanged", name)
		}
		// Image i is suite.Apply with stream NewRand(seed, suite, name, severity, i).
		img, _ := corrupt.FromUint8(s.Image(4), 32, 32, 3)
		want, err := suite.Apply(name, 3, img, corrupt.NewRand(7, "cifar10-c", name, 3, 4))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(one.Image(4), want.Bytes(suite.Quantize())) {
			t.Fatalf("%s: image 4 differs from suite.Apply", name)
		}
	}
	other, err := Corrupt(context.Background(), s, suite, "gaussian_noise", 3, CorruptOptions{Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	same, _ := Corrupt(context.Background(), s, suite, "gaussian_noise", 3, CorruptOptions{Seed: 7})
	if bytes.Equal(other.Images, same.Images) {
		t.Fatal("seeds 7 and 8 give the same noise")
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Corrupt(ctx, s, suite, "contrast", 1, CorruptOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: err = %v", err)
	}
	if _, err := Corrupt(context.Background(), s, suite, "nope", 1, CorruptOptions{}); err == nil {
		t.Fatal("unknown corruption: no error")
	}
	mc, _ := corrupt.Lookup("mnist-c")
	_, err = Corrupt(context.Background(), s, mc, "shear", mc.Severities("shear")[0], CorruptOptions{})
	wantErr(t, err, "needs 28x28 grey images")
}

// A damaged gzip trailer claims a size near 1 GiB for a 24-byte file: parseIDX must not
// allocate it (the fuzzer found that each such file cost a gigabyte).
func TestParseIDXDamagedGzipTrailerAllocatesLittle(t *testing.T) {
	b := []byte("\x1f\x8b\b0\x80\xfd\xfd\xfd\x00\x80\xfd\xfd\xfd\x86;2\x00\x02\x02\x00\x008")
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	if _, _, err := parseIDX(b, "bad.gz"); err == nil {
		t.Fatal("damaged gzip file accepted")
	}
	runtime.ReadMemStats(&after)
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Fatalf("parsing a 24-byte file allocated %d bytes", got)
	}
}
