package signature

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"math"

	"github.com/rws-project/rws/internal/kernel"
	"github.com/rws-project/rws/safetensors"
	"github.com/rws-project/rws/tensor"
)

// blockElems is the number of values extraction reads from each checkpoint at a time: small
// enough that the blocks of three checkpoints and the block of results (128 KiB of F32 each,
// 256 KiB of float64) stay in a core's L2 cache between reading, hashing and computing.
const blockElems = 1 << 15

// source is an opened checkpoint.
type source struct {
	path string
	r    *safetensors.Reader
}

// info returns the named tensor's description, checking that it exists with the given shape.
func (s source) info(name string, shape []int64) (safetensors.Info, error) {
	in, ok := s.r.Info(name)
	if !ok {
		return in, fmt.Errorf("signature: %w: tensor %q is missing from %s", ErrMismatch, name, s.path)
	}
	if fmt.Sprint(in.Shape) != fmt.Sprint(shape) {
		return in, fmt.Errorf("signature: %w: tensor %q has shape %v in %s but %v in the clean model", ErrMismatch, name, in.Shape, s.path, shape)
	}
	return in, nil
}

// floatInfo is info that also checks that the tensor holds floating-point values.
func (s source) floatInfo(name string, shape []int64) (safetensors.Info, error) {
	in, err := s.info(name, shape)
	if err == nil && !in.DType.IsFloat() {
		err = fmt.Errorf("signature: tensor %q in %s is %s, not a floating-point type", name, s.path, in.DType)
	}
	return in, err
}

// read returns the named tensor as float64 with its raw bytes' SHA-256, checking it as check
// does. It reads the whole tensor at once: it is meant for small ones (running statistics).
func (s source) read(name string, shape []int64) ([]float64, string, error) {
	in, err := s.floatInfo(name, shape)
	if err != nil {
		return nil, "", err
	}
	raw, err := s.r.ReadRaw(name)
	if err != nil {
		return nil, "", err
	}
	out := make([]float64, in.Elements())
	if err := tensor.DecodeFloat64(in.DType, raw, out); err != nil {
		return nil, "", fmt.Errorf("signature: %s: tensor %q: %w", s.path, name, err)
	}
	for i, v := range out {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, "", fmt.Errorf("signature: %s: tensor %q: value %d is %v", s.path, name, i, v)
		}
	}
	sum := sha256.Sum256(raw)
	return out, hex.EncodeToString(sum[:]), nil
}

// check reads the named tensor and returns the first problem with it: missing, another shape,
// not floating-point, unreadable, or a NaN or ±Inf value; nil if there is none. Extraction's
// fast path notices that something is wrong without saying what (a non-finite sum, a failed
// read); check, run on the sources in order, finds the error to report.
func (s source) check(name string, shape []int64) error {
	in, err := s.floatInfo(name, shape)
	if err != nil {
		return err
	}
	n := in.Elements()
	es := int64(in.DType.Size())
	raw := make([]byte, min(n, blockElems)*es)
	vals := make([]float64, min(n, blockElems))
	for at := int64(0); at < n; at += blockElems {
		k := min(blockElems, n-at)
		if err := s.r.ReadRawAt(name, raw[:k*es], at*es); err != nil {
			return err
		}
		if err := tensor.DecodeFloat64(in.DType, raw[:k*es], vals[:k]); err != nil {
			return fmt.Errorf("signature: %s: tensor %q: %w", s.path, name, err)
		}
		for i, v := range vals[:k] {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				return fmt.Errorf("signature: %s: tensor %q: value %d is %v", s.path, name, at+int64(i), v)
			}
		}
	}
	return nil
}

// firstProblem is the error of the first of srcs whose tensor name has a problem (see check).
func firstProblem(srcs []source, name string, shape []int64) error {
	for _, s := range srcs {
		if err := s.check(name, shape); err != nil {
			return err
		}
	}
	return nil
}

// blockReader reads one tensor block by block from several checkpoints into buffers it reuses,
// and hashes what it reads when asked. Each goroutine has its own.
type blockReader struct {
	srcs   []source
	raw    [][]byte    // per source: a block of raw bytes
	narrow [][]float32 // per source: a block decoded to float32, for types other than F32
	wide   [][]float64 // per source: a block decoded to float64
	sums   []hash.Hash // per source: the SHA-256 of what was read with hash set
}

func newBlockReader(srcs []source) *blockReader {
	n := len(srcs)
	b := &blockReader{srcs: srcs, raw: make([][]byte, n), narrow: make([][]float32, n), wide: make([][]float64, n)}
	for range srcs {
		b.sums = append(b.sums, sha256.New())
	}
	return b
}

// read reads elements [at, at+n) of a tensor, described per source by in, from every source, and
// adds the bytes to the hashes when hash is set. n is at most blockElems.
func (b *blockReader) read(in []safetensors.Info, at, n int64, hash bool) error {
	for j, s := range b.srcs {
		es := int64(in[j].DType.Size())
		if int64(cap(b.raw[j])) < blockElems*es {
			b.raw[j] = make([]byte, blockElems*es)
		}
		raw := b.raw[j][:n*es]
		if err := s.r.ReadRawAt(in[j].Name, raw, at*es); err != nil {
			return err
		}
		if hash {
			b.sums[j].Write(raw)
		}
	}
	return nil
}

// float32s returns the n values of source j's last block, of type dt, as float32 (see
// tensor.DecodeFloat32); F32 blocks are used where they lie.
func (b *blockReader) float32s(j int, dt tensor.DType, n int64) ([]float32, error) {
	raw := b.raw[j][:n*int64(dt.Size())]
	if dt == tensor.F32 {
		if v := kernel.AlignedFloat32s(raw); v != nil || n == 0 {
			return v, nil
		}
	}
	if cap(b.narrow[j]) < blockElems {
		b.narrow[j] = make([]float32, blockElems)
	}
	out := b.narrow[j][:n]
	return out, tensor.DecodeFloat32(dt, raw, out)
}

// float64s returns the n values of source j's last block, of type dt, as float64, exactly (as
// tensor.DecodeFloat64 does for floating-point types).
func (b *blockReader) float64s(j int, dt tensor.DType, n int64) ([]float64, error) {
	if cap(b.wide[j]) < blockElems {
		b.wide[j] = make([]float64, blockElems)
	}
	out := b.wide[j][:n]
	if dt == tensor.F64 {
		return out, tensor.DecodeFloat64(dt, b.raw[j][:8*n], out)
	}
	v, err := b.float32s(j, dt, n) // exact for every other floating-point type
	if err != nil {
		return nil, err
	}
	for i, x := range v {
		out[i] = float64(x)
	}
	return out, nil
}

// reset starts the hashes afresh.
func (b *blockReader) reset() {
	for _, h := range b.sums {
		h.Reset()
	}
}

// fingerprints returns the hex SHA-256 of everything hashed since the last call, per source,
// and starts the hashes afresh.
func (b *blockReader) fingerprints() []string {
	out := make([]string, len(b.sums))
	for j, h := range b.sums {
		out[j] = hex.EncodeToString(h.Sum(nil))
		h.Reset()
	}
	return out
}
