package quant

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/rand/v2"
	"os"
	"testing"
)

// vectors is quant/testdata/vectors.json, written by scripts/gen_quant_vectors.py from an
// independent Python implementation of the layout in doc.go.
type vectors struct {
	Pack []struct {
		Bits   int
		Codes  []uint8
		Packed string
	}
	Linear []struct {
		Bits    int
		Groups  int
		X       []string
		Params  []string
		Packed  string
		Decoded []string
	}
}

func loadVectors(t *testing.T) vectors {
	t.Helper()
	raw, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatal(err)
	}
	var v vectors
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	if len(v.Pack) == 0 || len(v.Linear) == 0 {
		t.Fatal("testdata/vectors.json holds no vectors")
	}
	return v
}

func TestPackVectors(t *testing.T) {
	for _, tc := range loadVectors(t).Pack {
		want, err := hex.DecodeString(tc.Packed)
		if err != nil {
			t.Fatal(err)
		}
		got := make([]byte, PackedLen(len(tc.Codes), tc.Bits))
		Pack(got, tc.Codes, tc.Bits)
		if !bytes.Equal(got, want) {
			t.Errorf("bits %d codes %v: Pack = %x, want %x", tc.Bits, tc.Codes, got, want)
		}
		back := make([]uint8, len(tc.Codes))
		if err := Unpack(back, want, tc.Bits); err != nil {
			t.Errorf("bits %d codes %v: Unpack: %v", tc.Bits, tc.Codes, err)
		} else if !bytes.Equal(back, tc.Codes) {
			t.Errorf("bits %d: Unpack(%x) = %v, want %v", tc.Bits, want, back, tc.Codes)
		}
	}
}

func TestPackDocExample(t *testing.T) {
	got := make([]byte, 2)
	Pack(got, []uint8{5, 3, 7}, 3)
	if want := []byte{0xDD, 0x01}; !bytes.Equal(got, want) {
		t.Fatalf("Pack(5, 3, 7; 3 bits) = %x, want %x (doc.go's example)", got, want)
	}
}

func TestPackRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for bits := 1; bits <= 8; bits++ {
		for n := range 70 {
			codes := make([]uint8, n)
			for i := range codes {
				codes[i] = uint8(rng.IntN(1 << bits))
			}
			packed := make([]byte, PackedLen(n, bits))
			Pack(packed, codes, bits)
			back := make([]uint8, n)
			if err := Unpack(back, packed, bits); err != nil {
				t.Fatalf("bits %d n %d: %v", bits, n, err)
			}
			if !bytes.Equal(back, codes) {
				t.Fatalf("bits %d n %d: round trip %v, want %v", bits, n, back, codes)
			}
		}
	}
}

func TestUnpackErrors(t *testing.T) {
	tests := []struct {
		name string
		src  []byte
		n    int
		bits int
	}{
		{"short", []byte{0xFF}, 3, 3},
		{"long", []byte{0xFF, 0x01, 0x00}, 3, 3},
		{"padding bit set", []byte{0xDD, 0x03}, 3, 3},
		{"padding bit set 1-bit", []byte{0x10}, 4, 1},
		{"empty with bytes", []byte{0}, 0, 8},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Unpack(make([]uint8, tc.n), tc.src, tc.bits)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Unpack(%x, n=%d, bits=%d) = %v, want ErrCorrupt", tc.src, tc.n, tc.bits, err)
			}
		})
	}
}

func TestPackedLen(t *testing.T) {
	tests := []struct{ n, bits, want int }{
		{0, 1, 0}, {1, 1, 1}, {8, 1, 1}, {9, 1, 2}, {3, 3, 2}, {5, 8, 5}, {-1, 2, -1}, {1 << 62, 8, -1},
	}
	for _, tc := range tests {
		if got := PackedLen(tc.n, tc.bits); got != tc.want {
			t.Errorf("PackedLen(%d, %d) = %d, want %d", tc.n, tc.bits, got, tc.want)
		}
	}
}

func BenchmarkPack(b *testing.B) {
	for _, bits := range []int{1, 2, 3, 4, 8} {
		codes := make([]uint8, 1<<20)
		for i := range codes {
			codes[i] = uint8(i) & uint8(1<<bits-1)
		}
		dst := make([]byte, PackedLen(len(codes), bits))
		b.Run(benchName(bits), func(b *testing.B) {
			b.SetBytes(int64(len(codes)))
			for b.Loop() {
				Pack(dst, codes, bits)
			}
		})
		b.Run(benchName(bits)+"/unpack", func(b *testing.B) {
			b.SetBytes(int64(len(codes)))
			for b.Loop() {
				if err := Unpack(codes, dst, bits); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func benchName(bits int) string { return "bits=" + string(rune('0'+bits)) }
