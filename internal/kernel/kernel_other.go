//go:build !amd64 || purego

package kernel

const useAVX2 = false

func moments(l *momentLanes, v []float32) int { return momentsGeneric(l, v) }

func pair(l *pairLanes, a, b []float32) { pairGeneric(l, a, b) }
