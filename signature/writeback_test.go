package signature

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// TestUndoHeader checks that undoHeader assembles the same bytes as the plain way (json.Marshal
// of the record, EncodeHeader), for records with large fields and names that need escaping, and
// that its padding aligns the data with the model's modulo the page size.
func TestUndoHeader(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	noise := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rng.Uint32())
		}
		return b
	}
	infos := []safetensors.Info{{Name: "a", DType: tensor.F32, Shape: []int64{4, 2}, Size: 32}, {Name: `q"b\c`, DType: tensor.F16, Shape: []int64{3}, Size: 6}}
	meta := map[string]string{"format": "pt", MetaPatch: `[{"id":"x","command":"rws patch \"m\" -s a\\b"}]`}
	for _, name := range []string{"features.0.weight", `with "quotes" and \back\slashes`, "ünïcode", "sep\u2028arator", "tab\tand\x01control", "<html> & co"} {
		rec := undoRecord{Format: UndoFormat, Version: UndoVersion, ID: "0123456789abcdef", Header: noise(300), DataBytes: 1 << 30,
			Tensors: []undoTensor{
				{Name: name, Offset: 0, Size: 40000, ElemSize: 4, Before: strings.Repeat("b", 64), After: strings.Repeat("a", 64), XOR: noise(30000)},
				{Name: name + ".2", Offset: 40000, Size: 9000, ElemSize: 2, XOR: noise(100), Terms: []undoTerm{
					{Alpha: -0.3, Codec: string(quant.None), DType: tensor.F16, Raw: noise(9000)},
					{Alpha: 1e-7, Codec: string(quant.Linear), Bits: 2, Groups: 3, Codes: noise(5000), Params: []float32{0.1, -2, 3e-9, 7}},
				}},
			}}
		want, wantLen, err := undoHeaderPlain(infos, meta, &rec, 0, alignPage)
		if err != nil {
			t.Fatal(err)
		}
		// Without padding, the plain way is EncodeHeader with the record itself.
		m := map[string]string{MetaUndo: marshal(&rec)}
		for k, v := range meta {
			m[k] = v
		}
		enc, err := safetensors.EncodeHeader(infos, m)
		if err != nil {
			t.Fatal(err)
		}
		if wantLen != int64(len(m[MetaUndo])) {
			t.Errorf("%q: record length %d, want %d", name, wantLen, len(m[MetaUndo]))
		}
		for _, like := range []int64{int64(len(enc)), 3128, 8, 13, 1 << 20} {
			for _, align := range []int64{alignPage, alignHuge} {
				var s scratch
				got, gotLen, err := undoHeader(infos, meta, &rec, like, align, &s)
				if err != nil {
					t.Fatal(err)
				}
				plain, _, _ := undoHeaderPlain(infos, meta, &rec, like, align)
				if !bytes.Equal(got, plain) || gotLen != wantLen {
					t.Errorf("%q, like %d: undoHeader differs from the plain way (%d bytes, want %d)", name, like, len(got), len(plain))
				}
				if like == int64(len(enc)) && !bytes.Equal(got, enc) {
					t.Errorf("%q: header differs from EncodeHeader although no padding is needed", name)
				}
				if pad := int64(len(got)) - like; pad%8 == 0 && pad%align != 0 {
					t.Errorf("%q, like %d: header of %d bytes is not aligned with it modulo %d", name, like, len(got), align)
				}
				if int64(binary.LittleEndian.Uint64(got)) != int64(len(got)-8) {
					t.Errorf("%q, like %d: length prefix %d for a %d-byte header", name, like, binary.LittleEndian.Uint64(got), len(got))
				}
				s.release()
			}
		}
		// The header reads back as the record.
		path := filepath.Join(t.TempDir(), "h.safetensors")
		if err := os.WriteFile(path, append(want, make([]byte, 38)...), 0o644); err != nil {
			t.Fatal(err)
		}
		r, err := safetensors.Open(path)
		if err != nil {
			t.Fatalf("%q: %v", name, err)
		}
		if r.Metadata()[MetaUndo] != m[MetaUndo] || r.Metadata()[MetaPatch] != meta[MetaPatch] {
			t.Errorf("%q: metadata does not read back", name)
		}
		r.Close()
	}
}

func TestPagePad(t *testing.T) {
	for _, tc := range []struct{ n, like, align, want int64 }{
		{3128, 3128, alignPage, 0},
		{16, 3128, alignPage, 3112},
		{8 + 4096, 8, alignPage, 0},
		{5000, 3128, alignPage, 4096 - (5000 - 3128)},
		{16, 13, alignPage, 0}, // 8-byte alignment wins
		{4096*3 + 8, 3128, alignPage, 3120},
		{10931256, 3128, alignHuge, 12<<20 + 3128 - 10931256},
		{3128, 3128, alignHuge, 0},
	} {
		got := pagePad(tc.n, tc.like, tc.align)
		if got != tc.want {
			t.Errorf("pagePad(%d, %d, %d) = %d, want %d", tc.n, tc.like, tc.align, got, tc.want)
		}
		if got > 0 && (tc.n+got-tc.like)%tc.align != 0 {
			t.Errorf("pagePad(%d, %d, %d) = %d does not align", tc.n, tc.like, tc.align, got)
		}
	}
	if dataAlign(hugeAlignFrom-1) != alignPage || dataAlign(hugeAlignFrom) != alignHuge {
		t.Error("dataAlign: huge-page alignment should start at hugeAlignFrom")
	}
}

// TestRangeCopier copies random ranges in the kernel and through the buffer and checks both
// against the source; a source shorter than asked is an error either way.
func TestRangeCopier(t *testing.T) {
	dir := t.TempDir()
	rng := rand.New(rand.NewPCG(7, 8))
	data := make([]byte, 3*copyBufSize+12345)
	for i := range data {
		data[i] = byte(rng.Uint32())
	}
	srcPath := filepath.Join(dir, "src")
	if err := os.WriteFile(srcPath, data, 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(srcPath)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, plain := range []bool{false, true} {
		dst, err := os.Create(filepath.Join(dir, fmt.Sprint("dst", plain)))
		if err != nil {
			t.Fatal(err)
		}
		c := &rangeCopier{dst: dst, src: src}
		if plain {
			c.buf = make([]byte, copyBufSize)
		}
		want := make([]byte, len(data)+5000)
		for range 20 {
			n := rng.Int64N(2*copyBufSize + 1)
			so := rng.Int64N(int64(len(data)) - n + 1)
			do := rng.Int64N(int64(len(want)) - n + 1)
			if err := c.copy(do, so, n); err != nil {
				t.Fatalf("plain %v: copy %d bytes from %d to %d: %v", plain, n, so, do, err)
			}
			copy(want[do:], data[so:so+n])
		}
		got := make([]byte, len(want))
		n, _ := dst.ReadAt(got, 0)
		if !bytes.Equal(got[:n], want[:n]) || bytes.ContainsFunc(want[n:], func(r rune) bool { return r != 0 }) {
			t.Errorf("plain %v: copied bytes differ", plain)
		}
		if err := c.copy(0, int64(len(data))-10, 20); err == nil || !strings.Contains(err.Error(), "shorter than its header says") {
			t.Errorf("plain %v: copy past the end of the source: %v", plain, err)
		}
		dst.Close()
	}
}

// TestPatchAligned checks that a patched model's data starts at the offset of the original's
// modulo the page size (so that the kernel copies whole pages), and that it still unpatches
// exactly.
func TestPatchAligned(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, mediumCNN, tensor.F32, 1)
	s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:3"}), filepath.Join(dir, "s.rws"))
	ctx := context.Background()
	in, out, back := f.clean, filepath.Join(dir, "p"), filepath.Join(dir, "b")
	if _, err := Patch(ctx, in, out, []Applied{{s, 0.7}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	start := func(path string) int64 {
		fh, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer fh.Close()
		h, err := readHeader(fh)
		if err != nil {
			t.Fatal(err)
		}
		return int64(len(h))
	}
	a, b := start(in), start(out)
	if (b-a)%alignPage != 0 || b <= a {
		t.Errorf("data starts at %d in the model and %d in the patched one, want equal modulo %d", a, b, alignPage)
	}
	if _, err := Unpatch(ctx, out, back, UnpatchOptions{}); err != nil || !sameFile(t, back, in) {
		t.Fatalf("unpatch not exact: %v", err)
	}
}

// TestDamagedUndoData flips a byte of the originals kept in an undo sidecar and in a journal:
// the in-place unpatch and the recovery refuse them and leave the model as it is.
func TestDamagedUndoData(t *testing.T) {
	dir := t.TempDir()
	f := makeFamily(t, dir, smallCNN, tensor.F32, 1)
	s := writeSig(t, mustExtract(t, ExtractOptions{Init: f.init, Clean: f.clean, Robust: f.robust, Layers: "first:3"}), filepath.Join(dir, "s.rws"))
	ctx := context.Background()
	work := filepath.Join(dir, "work")
	copyFile(t, f.clean, work)
	if _, err := PatchInPlace(ctx, work, []Applied{{s, 1}}, PatchOptions{}); err != nil {
		t.Fatal(err)
	}
	patched, _ := os.ReadFile(work)
	flipLast := func(path string) {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		b[len(b)-1] ^= 0x40
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	side := work + UndoSuffix
	good, _ := os.ReadFile(side)
	flipLast(side)
	if _, err := UnpatchInPlace(ctx, work, UnpatchOptions{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("unpatch with damaged originals: %v, want an error saying so", err)
	}
	if _, err := Unpatch(ctx, work, filepath.Join(dir, "out"), UnpatchOptions{}); err == nil || !strings.Contains(err.Error(), "damaged") {
		t.Errorf("unpatch to a file with damaged originals: %v, want an error saying so", err)
	}
	if got, _ := os.ReadFile(work); !bytes.Equal(got, patched) {
		t.Fatal("a refused unpatch changed the model")
	}
	// A damaged journal: recovery refuses to guess.
	if err := os.WriteFile(side, good, 0o644); err != nil {
		t.Fatal(err)
	}
	crashHook = func(st string) bool { return st == "journal" }
	_, err := PatchInPlace(ctx, work, []Applied{{s, 1}}, PatchOptions{})
	crashHook = nil
	if !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	flipLast(work + JournalSuffix)
	did, err := RecoverReport(work)
	if err == nil || !strings.Contains(err.Error(), "journal is damaged") {
		t.Errorf("recover with a damaged journal: %q, %v", did, err)
	}
	if got, _ := os.ReadFile(work); !bytes.Equal(got, patched) {
		t.Fatal("a refused recovery changed the model")
	}
}

// TestApplyNonFinite checks that the one-signature F32 loop of applyTensor, like the general
// one, refuses a sum that overflows to infinity and names the element.
func TestApplyNonFinite(t *testing.T) {
	raw := make([]byte, 4*3)
	binary.LittleEndian.PutUint32(raw[4:], 0x7f7fffff) // the largest float32
	for _, vals := range [][][]float32{{{0, 3e38, 0}}, {{0, 3e38, 0}, {0, 0, 0}}} {
		alphas := make([]float64, len(vals))
		for k := range alphas {
			alphas[k] = 1
		}
		err := applyTensor(tensor.F32, raw, alphas, vals, make([]byte, len(raw)))
		if !errors.Is(err, ErrNonFinite) || !strings.Contains(err.Error(), "value 1 ") {
			t.Errorf("%d terms: %v, want ErrNonFinite at value 1", len(vals), err)
		}
	}
}

// TestEncodeBase64 checks the parallel encoder against the standard one around its piece size.
func TestEncodeBase64(t *testing.T) {
	const piece = 3 << 18
	r := rand.New(rand.NewPCG(3, 4))
	for _, n := range []int{0, 1, 2, 3, 2*piece - 1, 2 * piece, 2*piece + 1, 5*piece + 2} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		want := base64.StdEncoding.EncodeToString(src)
		dst := make([]byte, base64.StdEncoding.EncodedLen(n))
		encodeBase64(dst, src)
		if string(dst) != want {
			t.Errorf("%d bytes: encoding differs from encoding/base64", n)
		}
	}
}

// TestB64 checks that b64 reads what json.Marshal writes for a []byte, at sizes around the
// parallel decoder's pieces, and refuses what encoding/json refuses.
func TestB64(t *testing.T) {
	const piece = 1 << 20 / 4 * 3 // bytes per piece of characters
	r := rand.New(rand.NewPCG(5, 6))
	for _, n := range []int{0, 1, 2, 3, 4, 2*piece - 1, 2 * piece, 2*piece + 1, 3*piece + 2} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		data, err := json.Marshal(src)
		if err != nil {
			t.Fatal(err)
		}
		var got b64
		if err := json.Unmarshal(data, &got); err != nil || !bytes.Equal(got, src) {
			t.Fatalf("%d bytes: decoded %d bytes (%v), not the input", n, len(got), err)
		}
	}
	var got b64
	if err := json.Unmarshal([]byte(`null`), &got); err != nil || got != nil {
		t.Errorf("null: %v, %v", got, err)
	}
	if err := json.Unmarshal([]byte(`"QUJD\/w=="`), &got); err != nil || string(got) != "ABC\xff" {
		t.Errorf("escaped slash: %q, %v", got, err)
	}
	long := strings.Repeat("QUJD", 2*piece/3)
	for _, bad := range []string{`"QUJ"`, `"QU=D"`, `"QUJ*"`, `12`, `"` + long[:len(long)/2] + "QQ==" + long[len(long)/2:] + `"`} {
		if err := json.Unmarshal([]byte(bad), &got); err == nil {
			t.Errorf("%.30s…: no error", bad)
		}
	}
}
