package corrupt

// This file computes a baseline JPEG round trip the way libjpeg(-turbo) does with its default
// settings, as Pillow's Image.save(format='JPEG', quality=q) followed by Image.open does: only the
// lossy steps matter (the entropy coding is lossless), so no bitstream is written. The steps and
// their integer arithmetic are those of the IJG code: RGB→YCbCr with 16-bit fixed-point tables
// (jccolor.c), 2×2 chroma averaging with alternating rounding bias (jcsample.c), the "islow"
// forward DCT (jfdctint.c, 13-bit constants, 2 extra bits in the first pass), quantization by
// rounding division with the Annex K tables scaled by the IJG quality formula (jcparam.c,
// jcdctmgr.c), dequantization and the islow inverse DCT (jidctint.c), "fancy" triangular chroma
// upsampling (jdsample.c) and YCbCr→RGB with 16-bit tables (jdcolor.c). Edges are replicated as
// libjpeg pads partial blocks.

// jpegStdLuma and jpegStdChroma are the Annex K quantization tables in natural (row-major) order.
var (
	jpegStdLuma = [64]int32{
		16, 11, 10, 16, 24, 40, 51, 61,
		12, 12, 14, 19, 26, 58, 60, 55,
		14, 13, 16, 24, 40, 57, 69, 56,
		14, 17, 22, 29, 51, 87, 80, 62,
		18, 22, 37, 56, 68, 109, 103, 77,
		24, 35, 55, 64, 81, 104, 113, 92,
		49, 64, 78, 87, 103, 121, 120, 101,
		72, 92, 95, 98, 112, 100, 103, 99,
	}
	jpegStdChroma = [64]int32{
		17, 18, 24, 47, 99, 99, 99, 99,
		18, 21, 26, 66, 99, 99, 99, 99,
		24, 26, 56, 99, 99, 99, 99, 99,
		47, 66, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
		99, 99, 99, 99, 99, 99, 99, 99,
	}
)

// jpegQuantTable scales a standard table for quality (1-100) as jpeg_set_quality does with
// force_baseline: scale 5000/q below 50, 200 − 2q from 50, entries (t·scale + 50)/100 clamped to
// [1, 255].
func jpegQuantTable(std *[64]int32, quality int) [64]int32 {
	quality = min(max(quality, 1), 100)
	scale := int32(200 - 2*quality)
	if quality < 50 {
		scale = int32(5000 / quality)
	}
	var q [64]int32
	for i, v := range std {
		q[i] = min(max((v*scale+50)/100, 1), 255)
	}
	return q
}

// islow fixed-point constants (CONST_BITS = 13).
const (
	jConstBits = 13
	jPass1Bits = 2
	fix0298    = 2446  // FIX(0.298631336)
	fix0390    = 3196  // FIX(0.390180644)
	fix0541    = 4433  // FIX(0.541196100)
	fix0765    = 6270  // FIX(0.765366865)
	fix0899    = 7373  // FIX(0.899976223)
	fix1175    = 9633  // FIX(1.175875602)
	fix1501    = 12299 // FIX(1.501321110)
	fix1847    = 15137 // FIX(1.847759065)
	fix1961    = 16069 // FIX(1.961570560)
	fix2053    = 16819 // FIX(2.053119869)
	fix2562    = 20995 // FIX(2.562915447)
	fix3072    = 25172 // FIX(3.072711026)
)

// descale is IJG's DESCALE: x/2^n rounded (half up), with an arithmetic shift.
func descale(x int32, n uint) int32 { return (x + 1<<(n-1)) >> n }

// fdctIslow is jpeg_fdct_islow on a block of level-shifted samples (in place): rows, then
// columns; the result is the DCT scaled by 8.
func fdctIslow(d *[64]int32) {
	for r := 0; r < 8; r++ {
		p := (*[8]int32)(d[r*8 : r*8+8])
		y := fdct8(p)
		p[0], p[4] = y[0]<<jPass1Bits, y[4]<<jPass1Bits
		for _, k := range [...]int{1, 2, 3, 5, 6, 7} {
			p[k] = descale(y[k], jConstBits-jPass1Bits)
		}
	}
	for c := 0; c < 8; c++ {
		var x [8]int32
		for r := range x {
			x[r] = d[r*8+c]
		}
		y := fdct8(&x)
		d[0*8+c], d[4*8+c] = descale(y[0], jPass1Bits), descale(y[4], jPass1Bits)
		for _, k := range [...]int{1, 2, 3, 5, 6, 7} {
			d[k*8+c] = descale(y[k], jConstBits+jPass1Bits)
		}
	}
}

// fdct8 is the one-dimensional butterfly of jpeg_fdct_islow, shared by its row and column
// passes: outputs 0 and 4 unscaled, the others scaled by 2^jConstBits, none yet descaled.
func fdct8(x *[8]int32) (y [8]int32) {
	tmp0, tmp7 := x[0]+x[7], x[0]-x[7]
	tmp1, tmp6 := x[1]+x[6], x[1]-x[6]
	tmp2, tmp5 := x[2]+x[5], x[2]-x[5]
	tmp3, tmp4 := x[3]+x[4], x[3]-x[4]
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2
	y[0], y[4] = tmp10+tmp11, tmp10-tmp11
	z1 := (tmp12 + tmp13) * fix0541
	y[2], y[6] = z1+tmp13*fix0765, z1-tmp12*fix1847
	y[7], y[5], y[3], y[1] = oddPart(tmp4, tmp5, tmp6, tmp7)
	return y
}

// oddPart is the rotation of the odd-indexed terms that jpeg_fdct_islow and jpeg_idct_islow
// share (IJG's "odd part"), scaled by 2^jConstBits.
func oddPart(t0, t1, t2, t3 int32) (o0, o1, o2, o3 int32) {
	z1, z2, z3, z4 := t0+t3, t1+t2, t0+t2, t1+t3
	z5 := (z3 + z4) * fix1175
	z1 *= -fix0899
	z2 *= -fix2562
	z3 = z3*-fix1961 + z5
	z4 = z4*-fix0390 + z5
	return t0*fix0298 + z1 + z3, t1*fix2053 + z2 + z4, t2*fix3072 + z2 + z3, t3*fix1501 + z1 + z4
}

// idctIslow is jpeg_idct_islow: dequantizes the coefficients with q, runs the inverse DCT
// (columns, then rows) and writes the 8×8 samples, level-shifted and clamped to [0, 255], to out
// with the given row stride.
func idctIslow(coef *[64]int32, q *[64]int32, out []uint8, stride int) {
	var ws [64]int32
	for c := 0; c < 8; c++ {
		var x [8]int32
		ac := int32(0)
		for r := range x {
			x[r] = coef[r*8+c] * q[r*8+c]
			if r > 0 {
				ac |= x[r]
			}
		}
		if ac == 0 {
			dc := x[0] << jPass1Bits
			for r := 0; r < 8; r++ {
				ws[r*8+c] = dc
			}
			continue
		}
		y := idct8(&x)
		for r, v := range y {
			ws[r*8+c] = descale(v, jConstBits-jPass1Bits)
		}
	}
	clamp := func(v int32) uint8 { return uint8(min(max(v+128, 0), 255)) }
	for r := 0; r < 8; r++ {
		w := (*[8]int32)(ws[r*8 : r*8+8])
		o := out[r*stride : r*stride+8]
		if w[1] == 0 && w[2] == 0 && w[3] == 0 && w[4] == 0 && w[5] == 0 && w[6] == 0 && w[7] == 0 {
			v := clamp(descale(w[0], jPass1Bits+3))
			for i := range o {
				o[i] = v
			}
			continue
		}
		y := idct8(w)
		for i, v := range y {
			o[i] = clamp(descale(v, jConstBits+jPass1Bits+3))
		}
	}
}

// idct8 is the one-dimensional butterfly of jpeg_idct_islow, shared by its column and row
// passes: the eight outputs, scaled by 2^jConstBits and not yet descaled.
func idct8(x *[8]int32) (y [8]int32) {
	z2, z3 := x[2], x[6]
	z1 := (z2 + z3) * fix0541
	tmp2 := z1 - z3*fix1847
	tmp3 := z1 + z2*fix0765
	tmp0 := (x[0] + x[4]) << jConstBits
	tmp1 := (x[0] - x[4]) << jConstBits
	tmp10, tmp13 := tmp0+tmp3, tmp0-tmp3
	tmp11, tmp12 := tmp1+tmp2, tmp1-tmp2
	tmp0, tmp1, tmp2, tmp3 = oddPart(x[7], x[5], x[3], x[1])
	y[0], y[7] = tmp10+tmp3, tmp10-tmp3
	y[1], y[6] = tmp11+tmp2, tmp11-tmp2
	y[2], y[5] = tmp12+tmp1, tmp12-tmp1
	y[3], y[4] = tmp13+tmp0, tmp13-tmp0
	return y
}

// jpegPad returns the w×h plane p padded to whole 8×8 blocks by repeating its last column and
// row, as libjpeg's encoder fills partial blocks, and the padded size.
func jpegPad(p []uint8, w, h int) ([]uint8, int, int) {
	pw, ph := (w+7)/8*8, (h+7)/8*8
	if pw == w && ph == h {
		return p, w, h
	}
	out := make([]uint8, pw*ph)
	for y := 0; y < ph; y++ {
		row := p[min(y, h-1)*w:]
		for x := 0; x < pw; x++ {
			out[y*pw+x] = row[min(x, w-1)]
		}
	}
	return out, pw, ph
}

// jpegPlane compresses and decompresses, in place, one component plane of pw×ph samples (whole
// 8×8 blocks, row-major) with the quantization table q: forward DCT, quantization by rounding
// division, dequantization and inverse DCT of every block.
func jpegPlane(p []uint8, pw, ph int, q *[64]int32) {
	var blk [64]int32
	for by := 0; by < ph/8; by++ {
		for bx := 0; bx < pw/8; bx++ {
			o := p[by*8*pw+bx*8:]
			for r := 0; r < 8; r++ {
				for c := 0; c < 8; c++ {
					blk[r*8+c] = int32(o[r*pw+c]) - 128
				}
			}
			fdctIslow(&blk)
			for i, v := range blk {
				d := q[i] << 3 // the DCT output is scaled by 8
				if v < 0 {
					blk[i] = -((-v + d>>1) / d)
				} else {
					blk[i] = (v + d>>1) / d
				}
			}
			idctIslow(&blk, q, o, pw)
		}
	}
}

// jpegYCC holds libjpeg's RGB→YCbCr tables (jccolor.c, SCALEBITS 16).
var jpegYCC = func() (t [8][256]int32) {
	const one = 1 << 16
	fix := func(x float64) int32 { return int32(x*one + 0.5) }
	for i := int32(0); i < 256; i++ {
		t[0][i] = fix(0.29900) * i
		t[1][i] = fix(0.58700) * i
		t[2][i] = fix(0.11400)*i + one/2
		t[3][i] = -fix(0.16874) * i
		t[4][i] = -fix(0.33126) * i
		t[5][i] = fix(0.50000)*i + 128*one + one/2 - 1 // B→Cb and R→Cr
		t[6][i] = -fix(0.41869) * i
		t[7][i] = -fix(0.08131) * i
	}
	return t
}()

// jpegRGB holds libjpeg's YCbCr→RGB tables (jdcolor.c): Cr→R, Cb→B (rounded), Cr→G and Cb→G
// (scaled by 2^16, ONE_HALF folded into Cb→G).
var jpegRGB = func() (t [4][256]int32) {
	const one = 1 << 16
	fix := func(x float64) int32 { return int32(x*one + 0.5) }
	for i := int32(0); i < 256; i++ {
		x := i - 128
		t[0][i] = (fix(1.40200)*x + one/2) >> 16
		t[1][i] = (fix(1.77200)*x + one/2) >> 16
		t[2][i] = -fix(0.71414) * x
		t[3][i] = -fix(0.34414)*x + one/2
	}
	return t
}()

// jpegDownsample2x2 is h2v2_downsample for a w×h plane: each output sample is the sum of a 2×2
// block plus a bias alternating 1, 2 along the row, divided by 4. The output covers whole 8×8
// blocks (ceil(w/16)·8 × ceil(h/16)·8 samples), computed from the plane padded by repeating its
// last column and row, as libjpeg pads before downsampling.
func jpegDownsample2x2(p []uint8, w, h int) ([]uint8, int, int) {
	pw, ph := (w+15)/16*8, (h+15)/16*8
	out := make([]uint8, pw*ph)
	at := func(y, x int) int32 { return int32(p[min(y, h-1)*w+min(x, w-1)]) }
	for y := 0; y < ph; y++ {
		bias := int32(1)
		for x := 0; x < pw; x++ {
			s := at(2*y, 2*x) + at(2*y, 2*x+1) + at(2*y+1, 2*x) + at(2*y+1, 2*x+1)
			out[y*pw+x] = uint8((s + bias) >> 2)
			bias ^= 3
		}
	}
	return out, pw, ph
}

// jpegUpsample2x2 is h2v2_fancy_upsample: every output sample weighs the nearest chroma sample
// 3/4 and the next nearest 1/4 in each direction (9/16, 3/16, 3/16, 1/16), with biases 8 and 7
// alternating along the row. p has rows of stride samples; only the first cw×ch
// (ceil(w/2)×ceil(h/2)) are used, and samples beyond them repeat the edge.
func jpegUpsample2x2(p []uint8, stride, w, h int) []uint8 {
	cw, ch := (w+1)/2, (h+1)/2
	out := make([]uint8, w*h)
	colsum := make([]int32, cw)
	for y := 0; y < h; y++ {
		r0 := y / 2
		r1 := r0 - 1 // the row above for even output rows, below for odd ones
		if y%2 == 1 {
			r1 = r0 + 1
		}
		r1 = min(max(r1, 0), ch-1)
		for j := range colsum {
			colsum[j] = 3*int32(p[r0*stride+j]) + int32(p[r1*stride+j])
		}
		o := out[y*w : (y+1)*w]
		for x := range o {
			j := x / 2
			if x%2 == 0 {
				o[x] = uint8((3*colsum[j] + colsum[max(j-1, 0)] + 8) >> 4)
			} else {
				o[x] = uint8((3*colsum[j] + colsum[min(j+1, cw-1)] + 7) >> 4)
			}
		}
	}
	return out
}

// jpegRoundTrip returns img after a baseline JPEG compression at quality and decompression, as
// libjpeg computes it with its defaults (4:2:0 chroma subsampling for colour, one component for
// grey images).
func jpegRoundTrip(img Image, quality int) Image {
	b := img.bytes8()
	w, h := img.W, img.H
	ql := jpegQuantTable(&jpegStdLuma, quality)
	// luma compresses the w×h plane p as a full-resolution component and returns the result.
	luma := func(p []uint8) []uint8 {
		pp, pw, ph := jpegPad(p, w, h)
		if &pp[0] == &p[0] {
			pp = append([]uint8(nil), p...)
		}
		jpegPlane(pp, pw, ph, &ql)
		out := make([]uint8, w*h)
		for y := 0; y < h; y++ {
			copy(out[y*w:(y+1)*w], pp[y*pw:y*pw+w])
		}
		return out
	}
	if img.C == 1 {
		return fromBytes8(luma(b), h, w, 1)
	}
	qc := jpegQuantTable(&jpegStdChroma, quality)
	Y := make([]uint8, w*h)
	Cb := make([]uint8, w*h)
	Cr := make([]uint8, w*h)
	t := &jpegYCC
	for i := range Y {
		r, g, bl := b[3*i], b[3*i+1], b[3*i+2]
		Y[i] = uint8((t[0][r] + t[1][g] + t[2][bl]) >> 16)
		Cb[i] = uint8((t[3][r] + t[4][g] + t[5][bl]) >> 16)
		Cr[i] = uint8((t[5][r] + t[6][g] + t[7][bl]) >> 16)
	}
	Y = luma(Y)
	cb, pw, ph := jpegDownsample2x2(Cb, w, h)
	cr, _, _ := jpegDownsample2x2(Cr, w, h)
	jpegPlane(cb, pw, ph, &qc)
	jpegPlane(cr, pw, ph, &qc)
	cb = jpegUpsample2x2(cb, pw, w, h)
	cr = jpegUpsample2x2(cr, pw, w, h)
	out := NewImage(h, w, 3)
	u := &jpegRGB
	for i := range Y {
		y := int32(Y[i])
		out.Pix[3*i] = unitTable[min(max(y+u[0][cr[i]], 0), 255)]
		out.Pix[3*i+1] = unitTable[min(max(y+(u[3][cb[i]]+u[2][cr[i]])>>16, 0), 255)]
		out.Pix[3*i+2] = unitTable[min(max(y+u[1][cb[i]], 0), 255)]
	}
	return out
}
