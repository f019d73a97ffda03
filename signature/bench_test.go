package signature

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/tensor"
)

// benchLayout is a model with one 10 MiB tensor (the signature's) among 64 MiB of others.
var benchLayout = []entry{
	{"blocks.0.weight", []int64{4096, 1024}},
	{"blocks.1.weight", []int64{2560, 1024}},
	{"blocks.2.weight", []int64{4096, 1024}},
	{"blocks.3.weight", []int64{4096, 1024}},
	{"blocks.4.weight", []int64{4096, 1024}},
}

func benchFiles(b *testing.B) (model, sig string) {
	b.Helper()
	dir := b.TempDir()
	f := makeFamily(b, dir, benchLayout, tensor.F32, 1)
	s := mustExtract(b, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "blocks.1"})
	sig = filepath.Join(dir, "sig.rws")
	writeSig(b, s, sig)
	return f.clean, sig
}

// BenchmarkPatchInPlace patches a 10 MiB tensor in place and removes it again (crash-safe,
// with fsyncs).
func BenchmarkPatchInPlace(b *testing.B) {
	model, sigPath := benchFiles(b)
	work := filepath.Join(b.TempDir(), "work")
	copyFileB(b, model, work)
	ctx := context.Background()
	for b.Loop() {
		s, err := Read(sigPath)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := PatchInPlace(ctx, work, []Applied{{s, 1}}, PatchOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if _, err := UnpatchInPlace(ctx, work, UnpatchOptions{}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}
}

// BenchmarkPatch patches the 10 MiB tensor of an 74 MiB model out of place.
func BenchmarkPatch(b *testing.B) {
	model, sigPath := benchFiles(b)
	out := filepath.Join(b.TempDir(), "out")
	ctx := context.Background()
	st, _ := os.Stat(model)
	b.SetBytes(st.Size())
	for b.Loop() {
		s, err := Read(sigPath)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Patch(ctx, model, out, []Applied{{s, 1}}, PatchOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExtract extracts from the VGG-16 CIFAR layout (three 59 MB checkpoints, about 177
// MB read): the first 6 convolutions with each codec family, written; all 13 unquantized,
// written (59 MB, what auto keeps on checkpoints that differ everywhere alike); and auto, which
// measures all 13 and keeps the shallow ones this family moved most.
func BenchmarkExtract(b *testing.B) {
	dir := b.TempDir()
	f := makeFamily(b, dir, vgg16(), tensor.F32, 1)
	write := func(b *testing.B, layers string, spec quant.Spec) {
		for b.Loop() {
			s := mustExtract(b, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: layers, Spec: spec})
			if err := s.Write(filepath.Join(dir, "s.rws"), WriteOptions{Force: true}); err != nil {
				b.Fatal(err)
			}
		}
	}
	for _, spec := range []quant.Spec{{Codec: quant.None}, {Codec: quant.Linear, Bits: 8}, {Codec: quant.Gauss, Bits: 2}} {
		b.Run(spec.String(), func(b *testing.B) { write(b, "first:6", spec) })
	}
	b.Run("first:13", func(b *testing.B) { write(b, "first:13", quant.Spec{Codec: quant.None}) })
	b.Run("auto", func(b *testing.B) {
		for b.Loop() {
			mustExtract(b, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "auto"})
		}
	})
}

func copyFileB(b *testing.B, from, to string) {
	data, err := os.ReadFile(from)
	if err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(to, data, 0o644); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkUnpatch removes the patch of BenchmarkPatch's output.
func BenchmarkUnpatch(b *testing.B) {
	model, sigPath := benchFiles(b)
	dir := b.TempDir()
	patched, out := filepath.Join(dir, "patched"), filepath.Join(dir, "out")
	ctx := context.Background()
	s, err := Read(sigPath)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := Patch(ctx, model, patched, []Applied{{s, 1}}, PatchOptions{}); err != nil {
		b.Fatal(err)
	}
	st, _ := os.Stat(patched)
	b.SetBytes(st.Size())
	for b.Loop() {
		if _, err := Unpatch(ctx, patched, out, UnpatchOptions{Force: true}); err != nil {
			b.Fatal(err)
		}
	}
}
