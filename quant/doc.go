// Package quant quantizes signature tensors: it turns float32 values into packed b-bit codes
// plus float32 parameters per tensor or per output channel, and back.
//
// # Codecs
//
// Each codec maps a group of values (a whole tensor, or one output channel: a contiguous run of
// Len/Groups values of a row-major tensor) to 2^b levels computed from two float32 parameters.
// Encode gives each value the level nearest to it (among the codec's own nearest level and its
// two neighbours, compared on the decoded float32 values), so decoding then encoding again is
// the identity on decoded values. The bounds below are what Tensor.Bound computes; ε = 2^−23
// stands for float32 rounding and every bound also carries a relative 2^−40 for float64
// rounding and an absolute 2^−149 for subnormals.
//
//   - none: the float32 values themselves, 4 bytes each; exact.
//   - linear, 1–8 bits: parameters min, max of the group; levels min + q·(max−min)/(2^b−1)
//     for q = 0 … 2^b−1 (the ends exactly min and max); code q = round((x−min)/(max−min)·(2^b−1)).
//     Bound: |x − x̂| ≤ (max−min)/(2·(2^b−1)) + ε·max(|min|, |max|).
//   - log, 2–8 bits: a sign bit (the code's top bit, set for negative values and −0) and a
//     (b−1)-bit magnitude m. m = 0 is reserved for exact zeros, so ±0 decode exactly; m = 1 … M,
//     M = 2^(b−1)−1, are a linear code of log2|x| over [lo, hi], the smallest and largest log2|x|
//     of the group's non-zero values rounded outward to float32 (parameters log2_min, log2_max):
//     level m decodes to ±2^(lo + (m−1)·(hi−lo)/(M−1)), or ±2^((lo+hi)/2) when M = 1 (b = 2).
//     Bound, a relative one: zero for zeros; with h = (hi−lo)/(2(M−1)), half a step in log2,
//     x lies between two neighbouring levels a and b = a·4^h and gets the nearer, so
//     |x − x̂| ≤ |x|·(4^h − 1)/(4^h + 1) + ε·|x|; when M = 1 (b = 2) the single level is
//     h = (hi−lo)/2 away in log2 at most, so |x − x̂| ≤ |x|·(2^h − 1) + ε·|x|·2^h.
//   - tanh, 1–8 bits: a linear code of t = tanh(x) over [tanh(min), tanh(max)] (parameters
//     tanh_min, tanh_max, rounded to float32 and clamped to ±(1 − 2^−24)), decoded with atanh.
//     With δ = (tanh_max − tanh_min)/(2·(2^b−1)) the decoded t̂ lies within δ of t, so x̂ lies
//     between atanh(max(t−δ, tanh_min)) and atanh(min(t+δ, tanh_max)); the bound is the larger
//     distance from x to those two ends, plus ε times their magnitude. Saturation: float32 tanh
//     reaches 1 near |x| = 8.664 (TanhSaturation), so larger magnitudes decode to about
//     ±8.664 and their error is |x| − 8.664 plus the above.
//   - gauss, 1–8 bits: the Gaussian-median codebook (../shared/METHODS.md §1, from the 1-bit
//     adapter paper, section 3). Parameters mean μ and population standard deviation σ of the
//     group; the normalized value z = (x−μ)/σ gets the code c_j nearest to it, i.e. cells meet at
//     the midpoints between codes, and x̂ = μ + σ·c_j. The codes are the medians of N(0,1)
//     on their cells: 1 bit ±0.6745; 2 bits ±0.3778, ±1.2657; 3 bits ±0.2026, ±0.6254, ±1.1137,
//     ±1.7920; 4–8 bits are the same fixed point computed numerically by
//     scripts/gen_gauss_table.go (see GaussCodes). Code j is the j-th smallest value.
//     Bound, with g the largest gap between neighbouring codes and c_max the largest code:
//     |x − x̂| ≤ max(σ·g/2, |x−μ| − σ·c_max) + ε·(|μ| + σ·c_max). Values in the tails beyond
//     ±c_max·σ are clipped, as the codebook intends for Gaussian data.
//
// # Storage
//
// Tensor.Codes holds the codes packed least significant bit first (Pack): value i's b-bit code
// occupies stream bits i·b … i·b+b−1, stream bit k is bit k mod 8 of byte k/8 (bit 0 being the
// value 1), and the code's own bit 0 comes first. For example, 3-bit codes 5, 3, 7 (binary
// 101, 011, 111) give the stream bits 1,0,1, 1,1,0, 1,1,1 and the bytes 0xDD (0b11011101) and
// 0x01 (the last byte's seven padding bits are zero). The codes take ⌈Len·b/8⌉ bytes; readers
// reject other lengths and set padding bits. Tensor.Params holds two float32 values per group,
// group after group, in the order Spec.ParamNames gives.
package quant

//go:generate go run ../scripts/gen_gauss_table.go -o gauss_table.go
