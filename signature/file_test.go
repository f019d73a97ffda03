package signature

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// TestReadDamaged checks that truncated or altered signature files are refused with ErrFormat.
func TestReadDamaged(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	for _, spec := range []quant.Spec{{Codec: quant.None}, {Codec: quant.Linear, Bits: 3}} {
		path := filepath.Join(dir, "a.rws")
		writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2", Spec: spec}), path)
		good, _ := os.ReadFile(path)
		damage := []struct {
			name string
			fn   func([]byte) []byte
		}{
			{"truncated", func(b []byte) []byte { return b[:len(b)-3] }},
			{"half", func(b []byte) []byte { return b[:len(b)/2] }},
			{"last byte flipped", func(b []byte) []byte { b[len(b)-1] ^= 0x40; return b }},
			{"data byte flipped", func(b []byte) []byte { b[len(b)-100] ^= 1; return b }},
			{"format", func(b []byte) []byte { return []byte(strings.Replace(string(b), FormatName, "rws.signaturX", 1)) }},
			{"version", func(b []byte) []byte {
				return []byte(strings.Replace(string(b), `"rws.signature.version":"1"`, `"rws.signature.version":"9"`, 1))
			}},
			{"empty", func([]byte) []byte { return nil }},
		}
		for _, d := range damage {
			b := d.fn(append([]byte(nil), good...))
			p := filepath.Join(dir, "bad.rws")
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := Read(p); !errors.Is(err, ErrFormat) {
				t.Errorf("%s/%s: Read = %v, want ErrFormat", spec, d.name, err)
			}
		}
	}
	// A model is not a signature.
	if _, err := Read(f.clean); err == nil || !strings.Contains(err.Error(), "is this a model") {
		t.Errorf("Read(model) = %v", err)
	}
}

func TestSimilarity(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 2)
	a := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust[:1], Layers: "first:2"}), filepath.Join(dir, "a.rws"))
	b := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust[1:], Layers: "first:2"}), filepath.Join(dir, "b.rws"))
	deep := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "features.10"}), filepath.Join(dir, "c.rws"))
	rep, err := Similarity([]*Signature{a, a, b, deep}, []string{"a", "a2", "b", "deep"})
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Overall[0][1]; c == nil || math.Abs(*c-1) > 1e-12 {
		t.Errorf("cos(a, a) = %v, want 1", c)
	}
	if c := rep.Overall[0][2]; c == nil || math.Abs(*c) > 0.2 {
		t.Errorf("cos(a, b) = %v: independent noise should be near 0", c)
	}
	if rep.Overall[0][3] != nil {
		t.Errorf("cos(a, deep) = %v, want none (no shared tensor)", *rep.Overall[0][3])
	}
	if len(rep.Layers) != 5 || rep.Layers[0].Layer != "features.0" {
		t.Errorf("layers %v", rep.Layers)
	}
	// An independent check of one entry: cos over features.0 only, from the values.
	va, _ := a.Tensor("features.0.weight").Values()
	vb, _ := b.Tensor("features.0.weight").Values()
	wa, _ := a.Tensor("features.0.bias").Values()
	wb, _ := b.Tensor("features.0.bias").Values()
	var dot, na, nb float64
	for i := range va {
		dot += float64(va[i]) * float64(vb[i])
		na += float64(va[i]) * float64(va[i])
		nb += float64(vb[i]) * float64(vb[i])
	}
	for i := range wa {
		dot += float64(wa[i]) * float64(wb[i])
		na += float64(wa[i]) * float64(wa[i])
		nb += float64(wb[i]) * float64(wb[i])
	}
	if got := *rep.Layers[0].Matrix[0][2]; math.Abs(got-dot/math.Sqrt(na*nb)) > 1e-12 {
		t.Errorf("features.0 cosine %v, want %v", got, dot/math.Sqrt(na*nb))
	}
}

func TestDescribe(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 2)
	path := filepath.Join(dir, "fog.rws")
	writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:2", Name: "fog",
		Spec: quant.Spec{Codec: quant.Gauss, Bits: 2}, Granularity: quant.PerChannel, Command: "rws extract -o fog.rws"}), path)
	d, err := Describe(path)
	if err != nil {
		t.Fatal(err)
	}
	s := d.String()
	for _, want := range []string{`"fog"`, "projection", "averaged over 2 robust models", "features.0, features.1, features.3, features.4",
		"first 2 weight layers", "gauss, 2 bits per value, one range per output channel", "smaller", "rws extract -o fog.rws"} {
		if !strings.Contains(s, want) {
			t.Errorf("description lacks %q:\n%s", want, s)
		}
	}
	if d.Ratio <= 1 || d.MaxError <= 0 || d.RelError <= 0 || d.RelError > 1 {
		t.Errorf("ratio %v, errors %v %v", d.Ratio, d.MaxError, d.RelError)
	}
}

// FuzzRead feeds damaged signature files to Read: it must never panic, and whatever it accepts
// must decode.
func FuzzRead(f *testing.F) {
	dir := f.TempDir()
	fam := makeFamily(f, dir, smallCNN, tensor.F32, 1)
	for _, spec := range []quant.Spec{{Codec: quant.None}, {Codec: quant.Gauss, Bits: 2}} {
		for _, stats := range []bool{false, true} {
			p := filepath.Join(dir, "seed.rws")
			writeSig(f, mustExtract(f, ExtractOptions{Init: fam.init, Clean: fam.clean, Robust: fam.robust, Layers: "first:1", Spec: spec, BNStats: stats}), p)
			b, _ := os.ReadFile(p)
			f.Add(b)
		}
	}
	p := filepath.Join(fuzzDir(f), "fuzz.rws")
	f.Fuzz(func(t *testing.T, b []byte) {
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		s, err := Read(p)
		if err != nil {
			return
		}
		for _, st := range s.Tensors {
			if _, err := st.Values(); err != nil {
				t.Fatalf("accepted file does not decode: %v", err)
			}
		}
		for _, st := range s.Stats {
			if _, err := st.Values(); err != nil {
				t.Fatalf("accepted file's statistics do not decode: %v", err)
			}
		}
	})
}

// FuzzUnpatchRecord feeds damaged undo records to Unpatch: it must never panic, and when it
// succeeds the restored tensors hold the recorded originals (their SHA-256 is checked).
func FuzzUnpatchRecord(f *testing.F) {
	dir := f.TempDir()
	fam := makeFamily(f, dir, smallCNN, tensor.F32, 1)
	ctx := context.Background()
	var meta map[string]string
	var tensors []safetensors.Tensor
	for _, spec := range []quant.Spec{{Codec: quant.None}, {Codec: quant.Linear, Bits: 2}} {
		s := writeSig(f, mustExtract(f, ExtractOptions{Init: fam.init, Clean: fam.clean, Robust: fam.robust, Layers: "first:2", Spec: spec}), filepath.Join(dir, "s.rws"))
		p := filepath.Join(dir, "p")
		if _, err := Patch(ctx, fam.clean, p, []Applied{{s, 0.5}}, PatchOptions{Force: true}); err != nil {
			f.Fatal(err)
		}
		r, err := safetensors.Open(p)
		if err != nil {
			f.Fatal(err)
		}
		meta = r.Metadata()
		f.Add([]byte(meta[MetaUndo]))
		tensors = nil
		for _, in := range r.Tensors() {
			b, _ := r.ReadRaw(in.Name)
			tensors = append(tensors, safetensors.Tensor{Name: in.Name, DType: in.DType, Shape: in.Shape, Data: b})
		}
		r.Close()
	}
	in := filepath.Join(fuzzDir(f), "in")
	out := filepath.Join(filepath.Dir(in), "out")
	f.Fuzz(func(t *testing.T, rec []byte) {
		m := map[string]string{}
		for k, v := range meta {
			m[k] = v
		}
		m[MetaUndo] = string(rec)
		if err := safetensors.WriteFile(in, tensors, m, safetensors.WriteOptions{Force: true}); err != nil {
			return // not valid UTF-8 and the like
		}
		os.Remove(out)
		Unpatch(ctx, in, out, UnpatchOptions{Force: true})
	})
}

// TestReadNonFinite checks that a well-formed signature file whose stored values hold a NaN or
// an infinity is refused when read, for F32 values (viewed in place) and F16 ones (decoded).
func TestReadNonFinite(t *testing.T) {
	for _, dt := range []tensor.DType{tensor.F32, tensor.F16} {
		t.Run(string(dt), func(t *testing.T) {
			dir := t.TempDir()
			fam := makeFamily(t, dir, smallCNN, dt, 1)
			s := mustExtract(t, ExtractOptions{Init: fam.init, Clean: fam.clean, Robust: fam.robust, Layers: "first:1"})
			for _, bad := range []float32{float32(math.NaN()), float32(math.Inf(-1))} {
				st := s.Tensors[0]
				raw := append([]byte(nil), st.raw...)
				if err := tensor.EncodeFloat32(dt, []float32{bad}, raw[:dt.Size()]); err != nil {
					t.Fatal(err)
				}
				damaged := *s
				damaged.Tensors = append([]*Tensor(nil), s.Tensors...)
				c := *st
				c.raw, c.values = raw, nil
				c.SHA256 = c.storedSHA256()
				damaged.Tensors[0] = &c
				p := filepath.Join(dir, "bad.rws")
				if err := damaged.Write(p, WriteOptions{Force: true}); err != nil {
					t.Fatal(err)
				}
				if _, err := Read(p); err == nil || !strings.Contains(err.Error(), "value 0 is") {
					t.Errorf("value %v: Read gave %v, want a refusal naming value 0", bad, err)
				}
			}
		})
	}
}

// TestFirstNonFinite checks the block-wise scan against a plain loop, with a NaN or an
// infinity at the edges of its blocks and nowhere.
func TestFirstNonFinite(t *testing.T) {
	plain := func(xs []float32) int {
		for i, v := range xs {
			if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
				return i
			}
		}
		return -1
	}
	bad := []float32{float32(math.NaN()), float32(math.Inf(1)), float32(math.Inf(-1)),
		math.Float32frombits(0xffc00001)} // a negative NaN with payload
	for _, n := range []int{0, 1, 255, 256, 257, 1000} {
		xs := make([]float32, n)
		for i := range xs {
			xs[i] = float32(float64(i) * math.MaxFloat32 / float64(n+1)) // large but finite
		}
		if got := firstNonFinite(xs); got != -1 {
			t.Fatalf("n=%d, all finite: got %d", n, got)
		}
		for _, at := range []int{0, 1, 254, 255, 256, 257, 511, 512, n - 1} {
			if at < 0 || at >= n {
				continue
			}
			for _, v := range bad {
				ys := append([]float32(nil), xs...)
				ys[at] = v
				if n > at+3 {
					ys[at+3] = v // a later one must not win
				}
				if got, want := firstNonFinite(ys), plain(ys); got != want {
					t.Errorf("n=%d, %v at %d: got %d, want %d", n, v, at, got, want)
				}
			}
		}
	}
}
