package signature

import (
	"bytes"
	"compress/flate"
	"io"
	"math/rand/v2"
	"testing"
)

// TestDeflate checks that deflate's chunked output is one DEFLATE stream that the standard
// inflater reads back exactly, for every kind of chunk (zeros, noise, skewed noise, mixed) and
// sizes around the chunk boundaries, and that it compresses what can be compressed.
func TestDeflate(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	kinds := map[string]func(b []byte){
		"zeros": func(b []byte) {},
		"noise": func(b []byte) {
			for i := range b {
				b[i] = byte(r.Uint32())
			}
		},
		// Mostly zero with rare small values, like the XOR of a good prediction.
		"sparse": func(b []byte) {
			for i := range b {
				if r.IntN(50) == 0 {
					b[i] = byte(r.IntN(4))
				}
			}
		},
		// Few symbols, no repeats: Huffman coding alone.
		"skewed": func(b []byte) {
			for i := range b {
				b[i] = byte(r.IntN(6) * 37)
			}
		},
		// Noise then zeros, as byte planes of an XOR are.
		"planes": func(b []byte) {
			for i := range b[:len(b)/2] {
				b[i] = byte(r.Uint32())
			}
		},
	}
	sizes := []int{0, 1, 1000, 2*deflateSample - 1, 2 * deflateSample, deflateChunk - 1, deflateChunk,
		deflateChunk + 1, 3*deflateChunk + 12345}
	for name, fill := range kinds {
		for _, n := range sizes {
			b := make([]byte, n)
			fill(b)
			for _, buf := range [][]byte{nil, make([]byte, 0, deflateBound(int64(n)))} {
				z := deflate(b, buf)
				got, err := io.ReadAll(flate.NewReader(bytes.NewReader(z)))
				if err != nil || !bytes.Equal(got, b) {
					t.Fatalf("%s, %d bytes: inflated %d bytes (%v), not the input", name, n, len(got), err)
				}
				out := make([]byte, n)
				if err := inflate(z, out); err != nil || !bytes.Equal(out, b) {
					t.Fatalf("%s, %d bytes: inflate: %v", name, n, err)
				}
				if int64(len(z)) > deflateBound(int64(n)) {
					t.Errorf("%s, %d bytes: %d compressed bytes exceed deflateBound %d", name, n, len(z), deflateBound(int64(n)))
				}
				if n >= deflateChunk && (name == "zeros" || name == "sparse") && len(z) > n/4 {
					t.Errorf("%s, %d bytes: compressed to %d bytes, want at most a quarter", name, n, len(z))
				}
				if n >= deflateChunk && name == "skewed" && len(z) > n/2 {
					t.Errorf("%s, %d bytes: compressed to %d bytes, want at most half (Huffman coding)", name, n, len(z))
				}
			}
		}
	}
}

// TestInflateRefusesWrongLength checks that inflate wants exactly the expected length.
func TestInflateRefusesWrongLength(t *testing.T) {
	b := bytes.Repeat([]byte("rws"), 1000)
	z := deflate(b, nil)
	if err := inflate(z, make([]byte, len(b)-1)); err == nil {
		t.Error("inflate into a buffer one byte short: no error")
	}
	if err := inflate(z, make([]byte, len(b)+1)); err == nil {
		t.Error("inflate into a buffer one byte long: no error")
	}
	if err := inflate(z[:len(z)/2], make([]byte, len(b))); err == nil {
		t.Error("inflate of half the stream: no error")
	}
}

// TestChunkKind checks that chunks are judged by what suits them.
func TestChunkKind(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 10))
	n := deflateChunk
	mk := func(f func(i int) byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = f(i)
		}
		return b
	}
	for _, tc := range []struct {
		name  string
		chunk []byte
		want  int
	}{
		{"zeros", mk(func(int) byte { return 0 }), levelFast},
		{"rare bytes", mk(func(int) byte { return byte(max(0, r.IntN(200)-197)) }), levelFast},
		{"noise", mk(func(int) byte { return byte(r.Uint32()) }), levelStore},
		{"sixteen values", mk(func(int) byte { return byte(r.IntN(16)) }), levelHuff},
		{"short", make([]byte, 2*deflateSample-1), levelFast},
	} {
		if got := chunkKind(tc.chunk); got != tc.want {
			t.Errorf("%s: kind %d, want %d", tc.name, got, tc.want)
		}
	}
}

// TestStore checks that store writes a DEFLATE stream of exactly storedLen bytes that the
// standard inflater reads back.
func TestStore(t *testing.T) {
	r := rand.New(rand.NewPCG(11, 12))
	for _, n := range []int{0, 1, storeBlock - 1, storeBlock, storeBlock + 1, 3*storeBlock + 17} {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		dst := make([]byte, storedLen(int64(n)))
		z := store(dst, src)
		if int64(len(z)) != storedLen(int64(n)) {
			t.Fatalf("%d bytes: store wrote %d, storedLen says %d", n, len(z), storedLen(int64(n)))
		}
		out := make([]byte, n)
		if err := inflate(z, out); err != nil || !bytes.Equal(out, src) {
			t.Fatalf("%d bytes: inflate: %v", n, err)
		}
	}
}
