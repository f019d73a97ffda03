package kernel

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"runtime"
	"sync"
	"testing"
)

// withProcs runs f with GOMAXPROCS set to n.
func withProcs(n int, f func()) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(n))
	f()
}

func TestBlocksCoverEveryElementInOrder(t *testing.T) {
	sizes := []int64{0, 1, BlockElems - 1, BlockElems, BlockElems + 1, 3*BlockElems + 7, 5}
	for _, procs := range []int{1, 2, 3} {
		got := make([][]Block, len(sizes))
		var mu sync.Mutex
		calls := 0
		err := func() (err error) {
			withProcs(procs, func() {
				err = Blocks(sizes, func() func(Block) (Block, error) {
					return func(b Block) (Block, error) { return b, nil }
				}, func(t int, parts []Block) {
					mu.Lock()
					defer mu.Unlock()
					calls++
					got[t] = append([]Block(nil), parts...)
				})
			})
			return err
		}()
		if err != nil {
			t.Fatalf("procs=%d: %v", procs, err)
		}
		if calls != len(sizes) {
			t.Errorf("procs=%d: done called %d times, want %d", procs, calls, len(sizes))
		}
		for i, n := range sizes {
			var at int64
			for k, b := range got[i] {
				if b.T != i || b.At != at || b.N > BlockElems || (b.N < BlockElems && k != len(got[i])-1) {
					t.Errorf("procs=%d: tensor %d block %d is %+v", procs, i, k, b)
				}
				at += b.N
			}
			if at != n || len(got[i]) == 0 {
				t.Errorf("procs=%d: tensor %d: blocks %v cover %d elements, want %d", procs, i, got[i], at, n)
			}
		}
	}
}

// TestBlocksFirstError checks that the error of the first failing block in order is returned,
// whatever the number of goroutines, and that a failed tensor is never done.
func TestBlocksFirstError(t *testing.T) {
	sizes := []int64{10, 3 * BlockElems, 10, 2 * BlockElems, 10, 10, 10}
	fail := map[[2]int64]bool{{1, 2 * BlockElems}: true, {3, 0}: true, {5, 0}: true}
	for _, procs := range []int{1, 2, 4} {
		var err error
		var mu sync.Mutex
		var doneT []int
		withProcs(procs, func() {
			err = Blocks(sizes, func() func(Block) (int, error) {
				return func(b Block) (int, error) {
					if fail[[2]int64{int64(b.T), b.At}] {
						return 0, fmt.Errorf("block %d/%d", b.T, b.At)
					}
					return 1, nil
				}
			}, func(t int, _ []int) {
				mu.Lock()
				doneT = append(doneT, t)
				mu.Unlock()
			})
		})
		if want := fmt.Sprintf("block 1/%d", 2*BlockElems); err == nil || err.Error() != want {
			t.Errorf("procs=%d: error %v, want %s", procs, err, want)
		}
		for _, d := range doneT {
			if d == 1 || d == 3 || d == 5 {
				t.Errorf("procs=%d: failed tensor %d was done", procs, d)
			}
		}
	}
}

func TestBlocksMomentsSameForAnyProcs(t *testing.T) {
	v := values(rand.New(rand.NewPCG(11, 12)), 3*BlockElems+1001, true)
	sizes := []int64{int64(len(v)), 17, 0}
	run := func(procs int) []Moments {
		out := make([]Moments, len(sizes))
		withProcs(procs, func() {
			err := Blocks(sizes, func() func(Block) (Moments, error) {
				return func(b Block) (Moments, error) {
					m := NewMoments()
					if b.T != 2 {
						AddMoments(&m, v[b.At:b.At+b.N])
					}
					return m, nil
				}
			}, func(t int, parts []Moments) {
				m := NewMoments()
				for _, p := range parts {
					m.Merge(p)
				}
				out[t] = m
			})
			if err != nil {
				t.Fatal(err)
			}
		})
		return out
	}
	one := run(1)
	for _, procs := range []int{2, 3} {
		if got := run(procs); !reflect.DeepEqual(got, one) {
			t.Errorf("GOMAXPROCS=%d: %+v, GOMAXPROCS=1: %+v", procs, got, one)
		}
	}
	if ref := refMoments(v); one[0].N != ref.N || one[0].NonFinite != ref.NonFinite {
		t.Errorf("counts %+v, want %+v", one[0], ref)
	}
}

func TestBlocksNoTensors(t *testing.T) {
	err := Blocks(nil, func() func(Block) (int, error) {
		return func(Block) (int, error) { return 0, errors.New("called") }
	}, func(int, []int) { t.Error("done called") })
	if err != nil {
		t.Error(err)
	}
}
