//go:build !purego

package kernel

import "golang.org/x/sys/cpu"

// useAVX2 selects the assembly loops; tests turn it off to compare them with the Go loops.
var useAVX2 = cpu.X86.HasAVX2

// momentsAVX2 is momentsGeneric in AVX2; len(v) is a positive multiple of 16, at most maxCall.
//
//go:noescape
func momentsAVX2(l *momentLanes, v []float32) (bad int)

// pairAVX2 is pairGeneric in AVX2; len(a) == len(b) is a positive multiple of 8.
//
//go:noescape
func pairAVX2(l *pairLanes, a, b []float32)

func moments(l *momentLanes, v []float32) int {
	if useAVX2 {
		return momentsAVX2(l, v)
	}
	return momentsGeneric(l, v)
}

func pair(l *pairLanes, a, b []float32) {
	if useAVX2 {
		pairAVX2(l, a, b)
		return
	}
	pairGeneric(l, a, b)
}
