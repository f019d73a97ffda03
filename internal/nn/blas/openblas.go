//go:build cgo && !noopenblas

package blas

/*
#cgo LDFLAGS: -lopenblas
// Declared here rather than through cblas.h, which differs between BLAS vendors; the enum
// arguments are ints in every ABI (CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112).
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k, float alpha,
	const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
char *openblas_get_corename(void);
char *openblas_get_config(void);
*/
import "C"

import "unsafe"

func init() {
	// The caller parallelises over images and matrix blocks; OpenBLAS's own threads would only
	// compete with it. OpenBLAS picks its kernels for the CPU at load time; OPENBLAS_CORETYPE
	// overrides that choice (some environments set it to Haswell, which disables AVX-512).
	C.openblas_set_num_threads(1)
}

// Name describes the implementation, e.g. "openblas SkylakeX (OpenBLAS 0.3.21 DYNAMIC_ARCH …)".
func Name() string {
	return "openblas " + C.GoString(C.openblas_get_corename()) + " (" + C.GoString(C.openblas_get_config()) + ")"
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, with op(X) = Xᵀ when the
// matching trans flag is set; op(A) is m×k, op(B) k×n, C m×n. It panics when a slice is too
// short for its dimensions and leading dimension.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	check(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	ta, tb := C.int(111), C.int(111)
	if transA {
		ta = 112
	}
	if transB {
		tb = 112
	}
	var pa, pb *C.float
	if len(a) > 0 {
		pa = (*C.float)(unsafe.Pointer(&a[0]))
	}
	if len(b) > 0 {
		pb = (*C.float)(unsafe.Pointer(&b[0]))
	}
	C.cblas_sgemm(101, ta, tb, C.int(m), C.int(n), C.int(k), C.float(alpha), pa, C.int(lda),
		pb, C.int(ldb), C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}
