//go:build !purego

#include "textflag.h"

// The Winograd F(2×2, 3×3) transforms in AVX2, eight tiles per step (see winograd.go for the
// layouts and winoInputGo / winoOutputGo for the same computations in Go). Both process whole
// steps of eight: the callers leave room for the extra tiles of the last step of each tile row
// (winoSlack), and the input transform runs over the tile rows and planes in increasing order,
// so that the values it writes past the end of a row are overwritten by the next row.

// ROWB sets h0 … h3 to the padded row at (R) times B, for eight tiles t: with d0 … d3 the
// padded columns 2t … 2t+3, h = d0−d2, d1+d2, d2−d1, d1−d3. VSHUFPS picks elements 0 and 2
// (0x88) or 1 and 3 (0xDD) of each 128-bit half of its two inputs, VPERMPD $0xD8 puts the four
// 64-bit pieces in order: the even and the odd columns. h0 and h1 double as scratch for the
// loads; clobbers Y12-Y15.
#define ROWB(R, h0, h1, h2, h3) \
	VMOVUPS 0(R), h0; \
	VMOVUPS 8(R), h1; \
	VSHUFPS $0x88, 32(R), h0, Y12; \
	VSHUFPS $0xDD, 32(R), h0, Y13; \
	VSHUFPS $0x88, 40(R), h1, Y14; \
	VSHUFPS $0xDD, 40(R), h1, Y15; \
	VPERMPD $0xD8, Y12, Y12; \
	VPERMPD $0xD8, Y13, Y13; \
	VPERMPD $0xD8, Y14, Y14; \
	VPERMPD $0xD8, Y15, Y15; \
	VSUBPS Y14, Y12, h0; \
	VADDPS Y14, Y13, h1; \
	VSUBPS Y13, Y14, h2; \
	VSUBPS Y15, Y13, h3

// func winoInputAVX2(p *float32, w2 int, v *float32, vs int, th, tw int)
//
// Registers: SI the padded row 2·ty, R9 the tile row's first output; AX and DX the same at the
// current step; DI a padded row; BX the output of column j; CX the tiles left in the row; R8
// the padded row stride in bytes; R10-R13 the output stride vs times 1, 4, 8 and 12 in bytes
// (ξ = 4i + j is at j·vs + i·4·vs); the tile rows left at 0(SP).
// Y0-Y3 and Y4-Y7: rows 1 and 2 times B; Y8-Y11 rows 0 and 3 times B, then results.
TEXT ·winoInputAVX2(SB), NOSPLIT, $8-48
	MOVQ th+32(FP), AX
	TESTQ AX, AX
	JLE done
	MOVQ tw+40(FP), CX
	TESTQ CX, CX
	JLE done
	MOVQ AX, 0(SP)
	MOVQ p+0(FP), SI
	MOVQ w2+8(FP), R8
	SHLQ $2, R8
	MOVQ v+16(FP), R9
	MOVQ vs+24(FP), R10
	SHLQ $2, R10
	MOVQ R10, R11
	SHLQ $2, R11
	MOVQ R11, R12
	SHLQ $1, R12
	LEAQ (R12)(R11*1), R13

row:
	MOVQ SI, AX
	MOVQ R9, DX
	MOVQ tw+40(FP), CX

step:
	// Rows 1 and 2 times B, then i = 1: h1+h2 and i = 2: h2−h1.
	LEAQ (AX)(R8*1), DI
	ROWB(DI, Y0, Y1, Y2, Y3)
	ADDQ R8, DI
	ROWB(DI, Y4, Y5, Y6, Y7)
	MOVQ DX, BX
	VADDPS Y4, Y0, Y8
	VSUBPS Y0, Y4, Y9
	VMOVUPS Y8, (BX)(R11*1)
	VMOVUPS Y9, (BX)(R12*1)
	ADDQ R10, BX
	VADDPS Y5, Y1, Y8
	VSUBPS Y1, Y5, Y9
	VMOVUPS Y8, (BX)(R11*1)
	VMOVUPS Y9, (BX)(R12*1)
	ADDQ R10, BX
	VADDPS Y6, Y2, Y8
	VSUBPS Y2, Y6, Y9
	VMOVUPS Y8, (BX)(R11*1)
	VMOVUPS Y9, (BX)(R12*1)
	ADDQ R10, BX
	VADDPS Y7, Y3, Y8
	VSUBPS Y3, Y7, Y9
	VMOVUPS Y8, (BX)(R11*1)
	VMOVUPS Y9, (BX)(R12*1)

	// i = 0: h0−h2.
	ROWB(AX, Y8, Y9, Y10, Y11)
	MOVQ DX, BX
	VSUBPS Y4, Y8, Y8
	VMOVUPS Y8, (BX)
	ADDQ R10, BX
	VSUBPS Y5, Y9, Y9
	VMOVUPS Y9, (BX)
	ADDQ R10, BX
	VSUBPS Y6, Y10, Y10
	VMOVUPS Y10, (BX)
	ADDQ R10, BX
	VSUBPS Y7, Y11, Y11
	VMOVUPS Y11, (BX)

	// i = 3: h1−h3.
	ADDQ R8, DI
	ROWB(DI, Y8, Y9, Y10, Y11)
	MOVQ DX, BX
	VSUBPS Y8, Y0, Y8
	VMOVUPS Y8, (BX)(R13*1)
	ADDQ R10, BX
	VSUBPS Y9, Y1, Y9
	VMOVUPS Y9, (BX)(R13*1)
	ADDQ R10, BX
	VSUBPS Y10, Y2, Y10
	VMOVUPS Y10, (BX)(R13*1)
	ADDQ R10, BX
	VSUBPS Y11, Y3, Y11
	VMOVUPS Y11, (BX)(R13*1)

	ADDQ $64, AX
	ADDQ $32, DX
	SUBQ $8, CX
	JGT step

	// Next tile row: two padded rows down, tw outputs on.
	LEAQ (SI)(R8*2), SI
	MOVQ tw+40(FP), CX
	LEAQ (R9)(CX*4), R9
	DECQ 0(SP)
	JNZ row

done:
	VZEROUPPER
	RET

// func winoOutputAVX2(m *float32, ms int, y *float32, ys int, n int)
//
// Registers: SI the products at the current step; DI the outputs; BX the products of column j;
// DX the outputs 2 and 3; CX the values left; R8 the product stride ms in bytes and R11-R13 4,
// 8 and 12 times it; R10 the output stride in bytes. Y0-Y3: Aᵀ's first row times column j of
// M, Y4-Y7 its second row; Y8-Y11 the four outputs.
TEXT ·winoOutputAVX2(SB), NOSPLIT, $0-40
	MOVQ n+32(FP), CX
	TESTQ CX, CX
	JLE outdone
	MOVQ m+0(FP), SI
	MOVQ ms+8(FP), R8
	SHLQ $2, R8
	MOVQ R8, R11
	SHLQ $2, R11
	MOVQ R11, R12
	SHLQ $1, R12
	LEAQ (R12)(R11*1), R13
	MOVQ y+16(FP), DI
	MOVQ ys+24(FP), R10
	SHLQ $2, R10

// COLA sets s to column j of M (at (BX)) times Aᵀ's first row, m0+m1+m2, and e to its second,
// m1−m2−m3.
#define COLA(s, e) \
	VMOVUPS (BX), s; \
	VMOVUPS (BX)(R11*1), e; \
	VADDPS e, s, s; \
	VADDPS (BX)(R12*1), s, s; \
	VSUBPS (BX)(R12*1), e, e; \
	VSUBPS (BX)(R13*1), e, e

outstep:
	MOVQ SI, BX
	COLA(Y0, Y4)
	ADDQ R8, BX
	COLA(Y1, Y5)
	ADDQ R8, BX
	COLA(Y2, Y6)
	ADDQ R8, BX
	COLA(Y3, Y7)
	// Row 0 of the tile: s0+s1+s2, s1−s2−s3; row 1 the same of e.
	VADDPS Y1, Y0, Y8
	VADDPS Y2, Y8, Y8
	VSUBPS Y2, Y1, Y9
	VSUBPS Y3, Y9, Y9
	VADDPS Y5, Y4, Y10
	VADDPS Y6, Y10, Y10
	VSUBPS Y6, Y5, Y11
	VSUBPS Y7, Y11, Y11
	LEAQ (DI)(R10*2), DX
	VMOVUPS Y8, (DI)
	VMOVUPS Y9, (DI)(R10*1)
	VMOVUPS Y10, (DX)
	VMOVUPS Y11, (DX)(R10*1)
	ADDQ $32, SI
	ADDQ $32, DI
	SUBQ $8, CX
	JGT outstep

outdone:
	VZEROUPPER
	RET
