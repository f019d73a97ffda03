package signature

import (
	"encoding/binary"
	"fmt"
	"math"

	"github.com/rws-project/rws/internal/kernel"
	"github.com/rws-project/rws/internal/mem"
	"github.com/rws-project/rws/quant"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// extractor computes signature tensors from the sources, reading them block by block. Each
// goroutine has its own.
type extractor struct {
	// srcs are clean, the robust models, then init when given: the order in which errors
	// about them are reported.
	srcs    []source
	nRobust int
	project bool
	spec    quant.Spec
	gran    quant.Granularity

	rd     *blockReader
	vals   []float64 // a block of signature values
	mean   []float64 // a block of the robust models' mean
	narrow []float32 // a block of values rounded to float32
	// whole holds a tensor's values as float32 for a quantizing codec, which needs all of them
	// at once; free releases it.
	whole []float32
	free  func()
}

func newExtractor(srcs []source, nRobust int, project bool, spec quant.Spec, gran quant.Granularity) *extractor {
	return &extractor{srcs: srcs, nRobust: nRobust, project: project, spec: spec, gran: gran,
		rd: newBlockReader(srcs), vals: make([]float64, blockElems), narrow: make([]float32, blockElems), free: func() {}}
}

func (x *extractor) close() { x.free() }

// tensor computes the signature of the named tensor. Codec none stores the values in out,
// which must hold exactly the tensor's elements in its clean type (nothing for a type
// EncodeFloat32 cannot write).
func (x *extractor) tensor(name string, out []byte) (*Tensor, error) {
	clean, _ := x.srcs[0].r.Info(name)
	shape := clean.Shape
	infos := make([]safetensors.Info, len(x.srcs))
	fast := x.nRobust == 1
	for j, s := range x.srcs {
		in, err := s.floatInfo(name, shape)
		if err != nil {
			return nil, firstProblem(x.srcs[:j+1], name, shape)
		}
		infos[j] = in
		fast = fast && in.DType == tensor.F32
	}
	t := &Tensor{Name: name, Shape: shape, DType: clean.DType, Groups: 1}
	var err error
	if fast {
		err = compute(x, t, infos, out, x.float32s)
	} else {
		err = compute(x, t, infos, out, x.float64s)
	}
	if err != nil {
		return nil, err
	}
	return t, nil
}

// A loader returns the last block read as the robust models' mean r, clean c and init z (nil
// without init).
type loader[T float] func(infos []safetensors.Info, n int64) (r, c, z []T, err error)

// float32s views F32 blocks of one robust model as they lie.
func (x *extractor) float32s(infos []safetensors.Info, n int64) (r, c, z []float32, err error) {
	if c, err = x.rd.float32s(0, tensor.F32, n); err == nil {
		r, err = x.rd.float32s(1, tensor.F32, n)
	}
	if err == nil && x.project {
		z, err = x.rd.float32s(2, tensor.F32, n)
	}
	return r, c, z, err
}

// float64s decodes blocks of any floating-point types and averages the robust models.
func (x *extractor) float64s(infos []safetensors.Info, n int64) (r, c, z []float64, err error) {
	if c, err = x.rd.float64s(0, infos[0].DType, n); err != nil {
		return nil, nil, nil, err
	}
	rs := make([][]float64, x.nRobust)
	for k := range rs {
		if rs[k], err = x.rd.float64s(1+k, infos[1+k].DType, n); err != nil {
			return nil, nil, nil, err
		}
	}
	if cap(x.mean) < blockElems {
		x.mean = make([]float64, blockElems)
	}
	r = x.mean[:n]
	meanInto(r, rs)
	if x.project {
		if z, err = x.rd.float64s(1+x.nRobust, infos[1+x.nRobust].DType, n); err != nil {
			return nil, nil, nil, err
		}
	}
	return r, c, z, nil
}

// compute fills t from its sources: the projection coefficient in a first pass over the
// blocks, then the values, encoded as they come (codec none) or gathered for the quantizer
// and compared with its decoded values in a third pass. The first pass also fingerprints the
// sources. Every value and sum is the one a single loop over whole float64 tensors gives.
func compute[T float](x *extractor, t *Tensor, infos []safetensors.Info, out []byte, load loader[T]) error {
	n := t.Elements()
	x.rd.reset()
	// each calls fn with every block, in order.
	each := func(hash bool, fn func(at int64, r, c, z []T)) error {
		for at := int64(0); at < n; at += blockElems {
			k := min(blockElems, n-at)
			err := x.rd.read(infos, at, k, hash)
			var r, c, z []T
			if err == nil {
				r, c, z, err = load(infos, k)
			}
			if err != nil {
				if p := firstProblem(x.srcs, t.Name, t.Shape); p != nil {
					return p
				}
				return err
			}
			fn(at, r, c, z)
		}
		return nil
	}
	// nonFinite is called when a sum is not finite: a source may hold NaN or ±Inf (an error),
	// or the sum overflowed on finite F64 values (not an error).
	nonFinite := func() error { return firstProblem(x.srcs, t.Name, t.Shape) }

	coef, hashed := 0.0, false
	if x.project {
		var da, aa float64
		if err := each(true, func(_ int64, r, c, z []T) { projectionSums(r, c, z, &da, &aa) }); err != nil {
			return err
		}
		if !isFinite(da) || !isFinite(aa) {
			if err := nonFinite(); err != nil {
				return err
			}
		}
		if aa > 0 {
			coef = da / aa
		}
		hashed = true
	}
	values := func(r, c, z []T) []float64 {
		v := x.vals[:len(c)]
		if x.project {
			projectionValues(r, c, z, coef, v)
		} else {
			differenceValues(r, c, v)
		}
		return v
	}
	st := newStats()
	var err error
	if x.spec.Codec == quant.None {
		err = each(!hashed, func(at int64, r, c, z []T) { st.store(t.DType, at, values(r, c, z), out, x.narrow) })
	} else {
		whole := x.wholeBuffer(n)
		err = each(!hashed, func(at int64, r, c, z []T) { st.gather(at, values(r, c, z), whole[at:]) })
	}
	if err != nil {
		return err
	}
	if !hashed && !isFinite(st.norm) {
		if err := nonFinite(); err != nil {
			return err
		}
	}
	fp := x.rd.fingerprints()
	t.Sources.Clean, t.Sources.Robust = fp[0], fp[1:1+x.nRobust]
	if x.project {
		t.Sources.Init = fp[1+x.nRobust]
	}
	if err := st.overflow(); err != nil {
		return fmt.Errorf("signature: tensor %q: %w", t.Name, err)
	}
	if x.spec.Codec == quant.None {
		if !t.DType.Writable() {
			return fmt.Errorf("signature: tensor %q: %w", t.Name, tensor.EncodeFloat32(t.DType, nil, nil))
		}
		// The two messages below name the tensor twice, as Extract's always have (Values' own
		// error, wrapped).
		if st.badAt >= 0 {
			return fmt.Errorf("signature: tensor %q: signature: tensor %q: value %d is %v", t.Name, t.Name, st.badAt, st.bad)
		}
		t.raw = out
	} else {
		whole := x.whole[:n]
		if x.gran == quant.PerChannel && len(t.Shape) >= 2 && t.Shape[0] > 0 {
			t.Groups = int(t.Shape[0])
		}
		q, err := quant.Encode(whole, t.Groups, x.spec)
		if err != nil {
			return fmt.Errorf("signature: tensor %q: %w", t.Name, err)
		}
		t.q = q
		if err := q.Decode(whole); err != nil {
			return fmt.Errorf("signature: tensor %q: signature: tensor %q: %w", t.Name, t.Name, err)
		}
		if err := each(false, func(at int64, r, c, z []T) { st.compare(values(r, c, z), whole[at:]) }); err != nil {
			return err
		}
	}
	st.finish(t)
	return nil
}

// wholeBuffer returns room for n float32 values, reusing the last one when large enough.
func (x *extractor) wholeBuffer(n int64) []float32 {
	if int64(cap(x.whole)) < n {
		x.free()
		b, free := mem.Mapped(int(4 * n))
		x.whole, x.free = kernel.Float32s(b), free
	}
	return x.whole[:n]
}

func isFinite(v float64) bool { return !math.IsNaN(v) && !math.IsInf(v, 0) }

// stats accumulates, in element order, what a Tensor records about its values x and their
// stored, decoded form x̂: ‖x‖², Σ(x − x̂)² and max |x − x̂|, and the first value that does not
// fit float32 and the first decoded value that is not finite (errors).
type stats struct {
	norm, err2, maxErr float64
	overAt, badAt      int64
	over               float64
	bad                float32
}

func newStats() *stats { return &stats{overAt: -1, badAt: -1} }

// note records value at, x, rounded to f and decoded as d, when f or d is not finite.
func (s *stats) note(at int64, x float64, f, d float32) {
	if math.IsInf(float64(f), 0) && s.overAt < 0 {
		s.overAt, s.over = at, x
	}
	if !isFinite(float64(d)) && s.badAt < 0 {
		s.badAt, s.bad = at, d
	}
}

// store encodes the values v of elements at, at+1, … into out, a tensor of type dt, and
// accumulates them, using scratch (at least as long as v) for types other than F32 and F64. A
// type EncodeFloat32 cannot write gets nothing stored.
func (s *stats) store(dt tensor.DType, at int64, v []float64, out []byte, scratch []float32) {
	switch dt {
	case tensor.F32, tensor.F64:
		// The decoded value is the float32 rounding in both: signature values are float32.
		var o32 []float32
		var o64 []byte
		if dt == tensor.F32 {
			o32 = kernel.Float32s(out[4*at : 4*(at+int64(len(v)))])
		} else {
			o64 = out[8*at : 8*(at+int64(len(v)))]
		}
		norm, err2, maxErr := s.norm, s.err2, s.maxErr
		for i, x := range v {
			f := float32(x)
			if o32 != nil {
				o32[i] = f
			} else {
				binary.LittleEndian.PutUint64(o64[8*i:], math.Float64bits(x))
			}
			norm += x * x
			e := math.Abs(x - float64(f))
			if e > maxErr {
				maxErr = e
			}
			err2 += e * e
			if math.Float32bits(f)&0x7f800000 == 0x7f800000 { // ±Inf or NaN
				s.note(at+int64(i), x, f, f)
			}
		}
		s.norm, s.err2, s.maxErr = norm, err2, maxErr
		return
	}
	f := scratch[:len(v)]
	s.gather(at, v, f)
	if !dt.Writable() {
		return
	}
	es := int64(dt.Size())
	raw := out[es*at : es*(at+int64(len(v)))]
	// Rounded once from float64, not through float32 first.
	tensor.EncodeFloat64(dt, v, raw)
	dec := f // decoded in place: f is not needed any more
	tensor.DecodeFloat32(dt, raw, dec)
	for i, d := range dec {
		if !isFinite(float64(d)) {
			s.note(at+int64(i), v[i], float32(v[i]), d)
		}
	}
	s.compare(v, dec)
}

// gather rounds the values v of elements at, at+1, … to float32 into f and adds them to ‖x‖².
func (s *stats) gather(at int64, v []float64, f []float32) {
	f = f[:len(v)]
	norm := s.norm
	for i, x := range v {
		r := float32(x)
		f[i] = r
		norm += x * x
		if math.Float32bits(r)&0x7f800000 == 0x7f800000 { // ±Inf or NaN
			s.note(at+int64(i), x, r, 0)
		}
	}
	s.norm = norm
}

// compare adds the differences between the values v and their decoded form dec.
func (s *stats) compare(v []float64, dec []float32) {
	dec = dec[:len(v)]
	err2, maxErr := s.err2, s.maxErr
	for i, x := range v {
		e := math.Abs(x - float64(dec[i]))
		if e > maxErr {
			maxErr = e
		}
		err2 += e * e
	}
	s.err2, s.maxErr = err2, maxErr
}

// overflow is the error for the first value beyond the float32 range, if any.
func (s *stats) overflow() error {
	if s.overAt < 0 {
		return nil
	}
	return fmt.Errorf("value %d = %g overflows float32", s.overAt, s.over)
}

// finish records the statistics in t.
func (s *stats) finish(t *Tensor) {
	t.Norm = math.Sqrt(s.norm)
	t.MaxError = s.maxErr
	if s.norm > 0 {
		t.RelError = math.Sqrt(s.err2 / s.norm)
	}
}
