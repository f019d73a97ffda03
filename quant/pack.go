package quant

import (
	"fmt"
	"math"
)

// PackedLen returns the bytes that n codes of the given width occupy: ⌈n·bits/8⌉. It returns
// -1 when that does not fit in an int.
func PackedLen(n, bits int) int {
	if n < 0 || bits < 1 || n > (math.MaxInt-7)/bits {
		return -1
	}
	return (n*bits + 7) / 8
}

// Pack stores codes of the given width (1–8 bits) into dst, least significant bit first: code i
// occupies bits i·bits … i·bits+bits−1 of the stream, where stream bit k is bit k mod 8 (value
// 1<<(k mod 8)) of byte k/8, and a code's bit 0 comes first. The unused high bits of the last
// byte are zero. Pack panics if bits is outside 1–8, a code does not fit in bits, or dst is not
// PackedLen(len(codes), bits) bytes long.
func Pack(dst []byte, codes []uint8, bits int) {
	if bits < 1 || bits > 8 {
		panic(fmt.Sprintf("quant: Pack: bits %d outside 1–8", bits))
	}
	if len(dst) != PackedLen(len(codes), bits) {
		panic(fmt.Sprintf("quant: Pack: dst has %d bytes, want %d", len(dst), PackedLen(len(codes), bits)))
	}
	limit := uint8(1<<bits - 1)
	if bits == 8 {
		copy(dst, codes)
		return
	}
	var acc uint64
	nacc, o := 0, 0
	for _, c := range codes {
		if c > limit {
			panic(fmt.Sprintf("quant: Pack: code %d does not fit in %d bits", c, bits))
		}
		acc |= uint64(c) << nacc
		nacc += bits
		if nacc >= 32 {
			dst[o] = byte(acc)
			dst[o+1] = byte(acc >> 8)
			dst[o+2] = byte(acc >> 16)
			dst[o+3] = byte(acc >> 24)
			acc >>= 32
			nacc -= 32
			o += 4
		}
	}
	for nacc > 0 {
		dst[o] = byte(acc)
		acc >>= 8
		nacc -= 8
		o++
	}
}

// Unpack reads len(dst) codes of the given width (1–8 bits) from src, the layout of Pack. It
// returns an error, and leaves dst unspecified, when src is not exactly PackedLen(len(dst), bits)
// bytes long or a padding bit of the last byte is set. It panics if bits is outside 1–8.
func Unpack(dst []uint8, src []byte, bits int) error {
	if bits < 1 || bits > 8 {
		panic(fmt.Sprintf("quant: Unpack: bits %d outside 1–8", bits))
	}
	want := PackedLen(len(dst), bits)
	if len(src) != want {
		return fmt.Errorf("quant: packed codes: %w: %d bytes, want %d for %d codes of %d bits", ErrCorrupt, len(src), want, len(dst), bits)
	}
	if pad := len(src)*8 - len(dst)*bits; pad > 0 && src[len(src)-1]>>(8-pad) != 0 {
		return fmt.Errorf("quant: packed codes: %w: padding bits of the last byte are %#02x, want 0", ErrCorrupt, src[len(src)-1]>>(8-pad))
	}
	switch bits {
	case 8:
		copy(dst, src)
		return nil
	case 4:
		for i := range dst {
			dst[i] = src[i>>1] >> (4 * uint(i&1)) & 0xF
		}
		return nil
	case 2:
		for i := range dst {
			dst[i] = src[i>>2] >> (2 * uint(i&3)) & 3
		}
		return nil
	case 1:
		for i := range dst {
			dst[i] = src[i>>3] >> uint(i&7) & 1
		}
		return nil
	}
	mask := uint64(1)<<bits - 1
	var acc uint64
	nacc, i := 0, 0
	for _, b := range src {
		acc |= uint64(b) << nacc
		nacc += 8
		for nacc >= bits && i < len(dst) {
			dst[i] = uint8(acc & mask)
			acc >>= bits
			nacc -= bits
			i++
		}
	}
	return nil
}
