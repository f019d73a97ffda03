//go:build !cgo || noopenblas

package blas

// Name describes the implementation: "gonum (pure Go)".
func Name() string { return "gonum (pure Go)" }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, with op(X) = Xᵀ when the
// matching trans flag is set; op(A) is m×k, op(B) k×n, C m×n. It panics when a slice is too
// short for its dimensions and leading dimension.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	check(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	gonumSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
