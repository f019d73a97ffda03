package signature

import (
	"context"
	"fmt"
	"math"

	"github.com/rws-project/rws/safetensors"
)

// measureUnits returns each unit's relative difference ‖mean θ_c − θ_std‖ / ‖θ_std‖ over its
// tensors, read as float32 and summed in float64 in order, for --layers auto. Units are
// measured on all cores; each reads its tensors block by block.
func measureUnits(ctx context.Context, clean source, robust []source, units []Unit) ([]float64, error) {
	out := make([]float64, len(units))
	srcs := append([]source{clean}, robust...)
	elements := func(i int) int64 {
		var n int64
		for _, name := range units[i].Tensors {
			in, _ := clean.r.Info(name)
			n += in.Elements()
		}
		return n
	}
	err := forEach(ctx, len(units), elements,
		func() *blockReader { return newBlockReader(srcs) },
		func(*blockReader) {},
		func(rd *blockReader, i int) error {
			r, err := measureUnit(ctx, rd, units[i])
			out[i] = r
			return err
		})
	return out, err
}

// measureUnit measures one unit with rd, which reads the clean model, then the robust ones.
func measureUnit(ctx context.Context, rd *blockReader, u Unit) (float64, error) {
	var dd, cc float64
	rs := make([][]float32, len(rd.srcs)-1)
	for _, name := range u.Tensors {
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		in, _ := rd.srcs[0].r.Info(name)
		infos := []safetensors.Info{in}
		for _, s := range rd.srcs[1:] {
			ri, err := s.info(name, in.Shape)
			if err != nil {
				return 0, err
			}
			infos = append(infos, ri)
		}
		n := in.Elements()
		for at := int64(0); at < n; at += blockElems {
			k := min(blockElems, n-at)
			if err := rd.read(infos, at, k, false); err != nil {
				return 0, err
			}
			c, err := rd.float32s(0, in.DType, k)
			if err != nil {
				return 0, err
			}
			for j := range rs {
				if rs[j], err = rd.float32s(1+j, infos[1+j].DType, k); err != nil {
					return 0, err
				}
			}
			differenceSums(rs, c, &dd, &cc)
		}
	}
	if math.IsNaN(dd+cc) || math.IsInf(dd+cc, 0) {
		return 0, fmt.Errorf("signature: layer %s holds non-finite values in the clean or a robust model", u.Name)
	}
	if cc == 0 {
		return 0, nil
	}
	return math.Sqrt(dd / cc), nil
}
