package blas

import "fmt"

// check panics when a matrix does not fit its slice; a short slice is a programming error in
// the caller, and OpenBLAS would read or write out of bounds instead of failing.
func check(transA, transB bool, m, n, k int, a []float32, lda int, b []float32, ldb int, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("blas: negative dimension m=%d n=%d k=%d", m, n, k))
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	fits := func(rows, cols, ld, length int) bool {
		if rows == 0 || cols == 0 {
			return ld >= max(cols, 1)
		}
		return ld >= cols && length >= (rows-1)*ld+cols
	}
	if !fits(ar, ac, lda, len(a)) || !fits(br, bc, ldb, len(b)) || !fits(m, n, ldc, len(c)) {
		panic(fmt.Sprintf("blas: sgemm slices too short: m=%d n=%d k=%d lda=%d len(a)=%d ldb=%d len(b)=%d ldc=%d len(c)=%d",
			m, n, k, lda, len(a), ldb, len(b), ldc, len(c)))
	}
}
