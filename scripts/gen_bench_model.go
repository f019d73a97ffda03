//go:build ignore

// gen_bench_model writes the checkpoints scripts/bench_patch.sh times: a large F32 model (2 GiB
// of tensor data by default) and three small checkpoints holding only its tensor blocks.0.weight
// ([2560 1024], 10 MiB), from which a 10 MB signature is extracted (the clean one equals the
// model's tensor, so the patch is not a transfer).
//
// With -vgg it writes instead the VGG-16 CIFAR layout (13 3×3 convolutions with bias, 512→10
// head; 14.7 M parameters, 59 MB as F32) as vgg-init, vgg-clean and vgg-robust.safetensors, the
// checkpoint set extract is timed on.
//
// Usage: go run scripts/gen_bench_model.go -dir /tmp/rws-bench-patch [-mib 2048] [-vgg]
package main

import (
	"encoding/binary"
	"flag"
	"fmt"
	"log"
	"math"
	"os"
	"path/filepath"
	"sort"

	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

const sigRows, cols = 2560, 1024

// fill writes pseudo-random float32 values in [−scale, scale) derived from seed (xorshift64*).
func fill(b []byte, seed uint64, scale float32) {
	x := seed*0x9E3779B97F4A7C15 | 1
	for i := 0; i+4 <= len(b); i += 4 {
		x ^= x >> 12
		x ^= x << 25
		x ^= x >> 27
		v := float32(int32((x*0x2545F4914F6CDD1D)>>32)) / (1 << 31) * scale
		binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
	}
}

func main() {
	dir := flag.String("dir", "/tmp/rws-bench-patch", "output folder")
	mib := flag.Int64("mib", 2048, "tensor data of the model, MiB")
	vgg := flag.Bool("vgg", false, "write the VGG-16 CIFAR checkpoint set instead")
	flag.Parse()
	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	if *vgg {
		writeVGG(*dir)
		return
	}
	// blocks.0 is the signature's tensor; blocks.1 … hold 64 MiB each, the last one the rest.
	total := *mib << 20
	infos := []safetensors.Info{{Name: "blocks.0.weight", DType: tensor.F32, Shape: []int64{sigRows, cols}, Size: sigRows * cols * 4}}
	left := total - infos[0].Size
	for i := 1; left > 0; i++ {
		rows := min(int64(16384), left/(cols*4))
		if rows == 0 {
			break
		}
		infos = append(infos, safetensors.Info{Name: fmt.Sprintf("blocks.%d.weight", i), DType: tensor.F32, Shape: []int64{rows, cols}, Size: rows * cols * 4})
		left -= rows * cols * 4
	}
	// Put the signature's tensor in the middle of the file.
	mid := len(infos) / 2
	infos[0], infos[mid] = infos[mid], infos[0]
	w, err := safetensors.Create(filepath.Join(*dir, "model.safetensors"), infos, map[string]string{"format": "pt"}, safetensors.WriteOptions{Force: true})
	if err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64<<20)
	for i, in := range infos {
		b := buf[:in.Size]
		fill(b, uint64(i+1), 0.1)
		if in.Name == "blocks.0.weight" {
			fill(b, 1000, 0.1)
		}
		if err := w.WriteTensor(in.Name, b); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Commit(); err != nil {
		log.Fatal(err)
	}
	small := func(name string, seeds ...uint64) {
		b := make([]byte, sigRows*cols*4)
		fill(b, 1000, 0.1)
		d := make([]byte, len(b))
		for _, s := range seeds {
			fill(d, s, 0.01)
			for i := 0; i < len(b); i += 4 {
				v := math.Float32frombits(binary.LittleEndian.Uint32(b[i:])) + math.Float32frombits(binary.LittleEndian.Uint32(d[i:]))
				binary.LittleEndian.PutUint32(b[i:], math.Float32bits(v))
			}
		}
		ts := []safetensors.Tensor{{Name: "blocks.0.weight", DType: tensor.F32, Shape: []int64{sigRows, cols}, Data: b}}
		if err := safetensors.WriteFile(filepath.Join(*dir, name), ts, map[string]string{"format": "pt"}, safetensors.WriteOptions{Force: true}); err != nil {
			log.Fatal(err)
		}
	}
	// init is θ0; the model (and clean) equal θ0's tensor here, robust moves away from it.
	small("init.safetensors")
	small("clean.safetensors")
	small("robust.safetensors", 7)
}

// writeVGG writes θ0, θstd and θc of the VGG-16 CIFAR layout; θstd and θc move away from θ0.
func writeVGG(dir string) {
	chans := [][2]int64{{3, 64}, {64, 64}, {64, 128}, {128, 128}, {128, 256}, {256, 256}, {256, 256},
		{256, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}, {512, 512}}
	idx := []int{0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28}
	var ts []safetensors.Tensor
	for i, c := range chans {
		n := fmt.Sprintf("features.%d", idx[i])
		ts = append(ts, safetensors.Tensor{Name: n + ".bias", DType: tensor.F32, Shape: []int64{c[1]}},
			safetensors.Tensor{Name: n + ".weight", DType: tensor.F32, Shape: []int64{c[1], c[0], 3, 3}})
	}
	ts = append(ts, safetensors.Tensor{Name: "classifier.bias", DType: tensor.F32, Shape: []int64{10}},
		safetensors.Tensor{Name: "classifier.weight", DType: tensor.F32, Shape: []int64{10, 512}})
	for k, name := range []string{"vgg-init", "vgg-clean", "vgg-robust"} {
		for i := range ts {
			ts[i].Data = make([]byte, 4*tensor.Elements(ts[i].Shape))
			fill(ts[i].Data, uint64(i+1), 0.05)
			if k > 0 {
				d := make([]byte, len(ts[i].Data))
				fill(d, uint64(100*k+i), 0.005)
				for j := 0; j < len(d); j += 4 {
					v := math.Float32frombits(binary.LittleEndian.Uint32(ts[i].Data[j:])) + math.Float32frombits(binary.LittleEndian.Uint32(d[j:]))
					binary.LittleEndian.PutUint32(ts[i].Data[j:], math.Float32bits(v))
				}
			}
		}
		sorted := append([]safetensors.Tensor(nil), ts...)
		sort.Slice(sorted, func(a, b int) bool { return sorted[a].Name < sorted[b].Name })
		if err := safetensors.WriteFile(filepath.Join(dir, name+".safetensors"), sorted, map[string]string{"format": "pt"}, safetensors.WriteOptions{Force: true}); err != nil {
			log.Fatal(err)
		}
	}
}
