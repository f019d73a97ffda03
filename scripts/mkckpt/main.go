// Command mkckpt writes a large synthetic safetensors checkpoint for benchmarks: layers of conv
// and linear shaped F32 tensors up to a total size, values seeded, written tensor by tensor.
//
//	go run ./scripts/mkckpt -size 2GiB -largest 64MiB -seed 1 -o /tmp/big.safetensors
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

func parseSize(s string) (int64, error) {
	mult := int64(1)
	for suf, m := range map[string]int64{"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30} {
		if strings.HasSuffix(s, suf) {
			s, mult = strings.TrimSuffix(s, suf), m
		}
	}
	f, err := strconv.ParseFloat(s, 64)
	return int64(f * float64(mult)), err
}

func main() {
	sizeS := flag.String("size", "1GiB", "total bytes")
	largestS := flag.String("largest", "64MiB", "largest tensor")
	seed := flag.Uint64("seed", 1, "seed of the values")
	noise := flag.Float64("noise", 0, "add this much seeded noise (seed+1) on top of the base values of seed")
	out := flag.String("o", "", "output file")
	force := flag.Bool("force", false, "overwrite")
	flag.Parse()
	size, err := parseSize(*sizeS)
	check(err)
	largest, err := parseSize(*largestS)
	check(err)
	var infos []safetensors.Info
	var total int64
	for i := 0; total < size; i++ {
		n := min(largest, size-total) / 4
		if i%4 == 3 { // a bias after every three weights
			n = min(n, 1024)
		}
		if n == 0 {
			break
		}
		infos = append(infos, safetensors.Info{Name: fmt.Sprintf("layers.%d.weight", i), DType: tensor.F32,
			Shape: []int64{n}, Size: 4 * n})
		total += 4 * n
	}
	w, err := safetensors.Create(*out, infos, map[string]string{"format": "pt"}, safetensors.WriteOptions{Force: *force})
	check(err)
	defer w.Abort()
	base := rand.New(rand.NewPCG(*seed, 7))
	extra := rand.New(rand.NewPCG(*seed+1, 7))
	buf := make([]byte, 4<<20)
	for _, in := range infos {
		for left := in.Size; left > 0; {
			k := min(int64(len(buf)), left)
			for j := int64(0); j < k; j += 4 {
				v := float32(base.NormFloat64() * 0.05)
				if *noise != 0 {
					v += float32(extra.NormFloat64() * *noise)
				}
				binary.LittleEndian.PutUint32(buf[j:], math.Float32bits(v))
			}
			_, err := w.Write(buf[:k])
			check(err)
			left -= k
		}
	}
	check(w.Commit())
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mkckpt:", err)
		os.Exit(1)
	}
}
