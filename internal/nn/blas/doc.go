// Package blas is the single-precision matrix multiply under package nn: OpenBLAS through cgo
// when cgo is enabled (build tag noopenblas turns it off), gonum's pure-Go BLAS otherwise.
//
// Matrices are row-major. The caller parallelises: OpenBLAS runs one thread per call, and
// several goroutines may call Sgemm at the same time on disjoint outputs.
package blas
