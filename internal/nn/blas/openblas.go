//go:build cgo && !noopenblas

package blas

/*
#cgo LDFLAGS: -ldl
#include <dlfcn.h>
#include <stddef.h>

// OpenBLAS is loaded at run time, so rws builds and runs where only gcc is installed (falling
// back to gonum) and uses OpenBLAS wherever the shared library exists (Debian: libopenblas0 or
// libopenblas-dev). The enum arguments are ints in every ABI (CblasRowMajor = 101,
// CblasNoTrans = 111, CblasTrans = 112).
typedef void (*sgemm_fn)(int, int, int, int, int, int, float, const float *, int, const float *, int,
	float, float *, int);
typedef void (*threads_fn)(int);
typedef char *(*str_fn)(void);

static sgemm_fn rws_sgemm_ptr;
static str_fn rws_corename_ptr, rws_config_ptr;

static int rws_openblas_load(void) {
	const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblasp.so.0", NULL};
	for (int i = 0; names[i] != NULL; i++) {
		void *h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
		if (h == NULL) {
			continue;
		}
		rws_sgemm_ptr = (sgemm_fn)dlsym(h, "cblas_sgemm");
		if (rws_sgemm_ptr == NULL) {
			dlclose(h);
			continue;
		}
		threads_fn set = (threads_fn)dlsym(h, "openblas_set_num_threads");
		if (set != NULL) {
			set(1);
		}
		rws_corename_ptr = (str_fn)dlsym(h, "openblas_get_corename");
		rws_config_ptr = (str_fn)dlsym(h, "openblas_get_config");
		return 1;
	}
	return 0;
}

static void rws_sgemm(int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
	const float *b, int ldb, float beta, float *c, int ldc) {
	rws_sgemm_ptr(101, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static const char *rws_corename(void) { return rws_corename_ptr ? rws_corename_ptr() : "?"; }
static const char *rws_config(void) { return rws_config_ptr ? rws_config_ptr() : "?"; }
*/
import "C"

import (
	"sync"
	"unsafe"
)

// openBLAS loads the library on first use, not at start-up: loading takes 10–15 ms, which every
// rws command would pay, also those that never multiply a matrix. The caller parallelises over
// images and matrix blocks, so OpenBLAS runs one thread per call (its own threads would only
// compete).
var openBLAS = sync.OnceValue(func() bool { return C.rws_openblas_load() == 1 })

// Name describes the implementation, e.g. "openblas SkylakeX (OpenBLAS 0.3.21 DYNAMIC_ARCH …)",
// or "gonum (pure Go; OpenBLAS not found …)".
func Name() string {
	if !openBLAS() {
		return "gonum (pure Go; OpenBLAS not found: apt-get install libopenblas0 for full speed)"
	}
	return "openblas " + C.GoString(C.rws_corename()) + " (" + C.GoString(C.rws_config()) + ")"
}

// Sgemm computes C = alpha·op(A)·op(B) + beta·C for row-major matrices, with op(X) = Xᵀ when the
// matching trans flag is set; op(A) is m×k, op(B) k×n, C m×n. It panics when a slice is too
// short for its dimensions and leading dimension.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m == 0 || n == 0 {
		return
	}
	check(transA, transB, m, n, k, a, lda, b, ldb, c, ldc)
	if !openBLAS() {
		gonumSgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
		return
	}
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
	C.rws_sgemm(ta, tb, C.int(m), C.int(n), C.int(k), C.float(alpha), pa, C.int(lda),
		pb, C.int(ldb), C.float(beta), (*C.float)(unsafe.Pointer(&c[0])), C.int(ldc))
}
