package signature

import (
	"bytes"
	"compress/flate"
	"context"
	"fmt"
	"io"
	"math"
)

// deflateChunk is the size of the pieces deflate compresses independently.
const deflateChunk = 1 << 20

// deflate compresses b into a single DEFLATE stream (RFC 1951), in buf's memory when it fits
// (deflateBound(len(b)) always does).
//
// Undo records hold the XOR of a tensor's original bytes with a prediction of them: mostly zeros
// where the prediction is good, noise in the low mantissa bytes where it is not. Inputs over a
// chunk are cut into chunks compressed on all cores, as pigz does: every chunk but the last ends
// with a sync flush (an empty stored block), so that their concatenation is one valid stream that
// any inflater reads. Each chunk gets what suits its sampled bytes (chunkKind): noise is stored
// as it is, which costs a copy instead of a search; skewed noise is Huffman coded without the
// search; mostly one byte value gets the fastest level's search for runs.
func deflate(b, buf []byte) []byte {
	n := (len(b) + deflateChunk - 1) / deflateChunk
	if n <= 1 {
		out := bytes.NewBuffer(buf[:0])
		deflateInto(out, b, true, newDeflaters())
		return out.Bytes()
	}
	// Chunk i is compressed into region i of buf, then the regions are moved together.
	region := int(deflateBound(deflateChunk))
	if cap(buf) < n*region {
		buf = make([]byte, n*region)
	}
	buf = buf[:cap(buf)]
	outs := make([][]byte, n)
	forEach(context.Background(), n, nil, newDeflaters, func(*deflaters) {}, func(d *deflaters, i int) error {
		lo, hi := i*deflateChunk, min(len(b), (i+1)*deflateChunk)
		out := bytes.NewBuffer(buf[i*region : i*region : (i+1)*region])
		deflateInto(out, b[lo:hi], i == n-1, d)
		outs[i] = out.Bytes()
		return nil
	})
	for i, o := range outs {
		if len(o) > region || (len(o) > 0 && &o[0] != &buf[i*region]) {
			// A chunk outgrew its region (deflateBound says it cannot): join them elsewhere.
			return bytes.Join(outs, nil)
		}
	}
	w := 0
	for _, o := range outs {
		w += copy(buf[w:], o) // regions only move down, and copy allows overlap
	}
	return buf[:w]
}

// deflaters are one goroutine's compressors, made when first needed (each allocates tables of
// its own, and fresh memory is slow to touch) and reused from chunk to chunk.
type deflaters struct {
	writers [3]*flate.Writer // by level: fast, huff, store
}

// The kinds of chunk, by what compresses them.
const (
	levelFast  = iota // flate.BestSpeed: runs and repeats (mostly zero bytes)
	levelHuff         // flate.HuffmanOnly: skewed noise, with no repeats for a search to find
	levelStore        // flate.NoCompression: noise
)

func newDeflaters() *deflaters { return &deflaters{} }

func (d *deflaters) writer(kind int, out io.Writer) *flate.Writer {
	if d.writers[kind] == nil {
		level := [...]int{flate.BestSpeed, flate.HuffmanOnly, flate.NoCompression}[kind]
		d.writers[kind], _ = flate.NewWriter(out, level)
	} else {
		d.writers[kind].Reset(out)
	}
	return d.writers[kind]
}

// A chunk is judged by deflateSamples pieces of deflatePiece bytes spread evenly over it.
const (
	deflateSamples = 8
	deflatePiece   = 2 << 10
	deflateSample  = deflateSamples * deflatePiece
)

// chunkKind judges a chunk by the entropy of its sampled bytes, which is about what Huffman
// coding leaves of them: at 7.75 bits a byte and more it is noise; under 2, mostly one byte
// value, which the search of BestSpeed shortens further; in between, skewed noise.
func chunkKind(chunk []byte) int {
	if len(chunk) < 2*deflateSample {
		return levelFast
	}
	var count [256]int
	step := (len(chunk) - deflatePiece) / (deflateSamples - 1)
	for k := range deflateSamples {
		for _, c := range chunk[k*step : k*step+deflatePiece] {
			count[c]++
		}
	}
	bits := 0.0
	for _, n := range count {
		if n > 0 {
			p := float64(n) / deflateSample
			bits -= p * math.Log2(p)
		}
	}
	switch {
	case bits >= 7.75:
		return levelStore
	case bits >= 2:
		return levelHuff
	}
	return levelFast
}

// deflateInto writes chunk to out as DEFLATE blocks, ending the stream when last is set and with a
// sync flush otherwise.
func deflateInto(out *bytes.Buffer, chunk []byte, last bool, d *deflaters) {
	w := d.writer(chunkKind(chunk), out)
	w.Write(chunk)
	if last {
		w.Close()
	} else {
		w.Flush()
	}
}

// deflateBound is room enough for deflate of n bytes: incompressible data goes into stored
// blocks of at most 64 KiB with a 5-byte header each, and every chunk ends with a 5-byte flush
// marker or final block.
func deflateBound(n int64) int64 {
	chunks := n/deflateChunk + 1
	return n + 5*(n/(1<<15)+2) + 16*chunks + 64
}

// inflate decompresses exactly len(out) bytes into out, refusing more or fewer.
func inflate(b, out []byte) error {
	r := flate.NewReader(bytes.NewReader(b))
	defer r.Close()
	if _, err := io.ReadFull(r, out); err != nil {
		return fmt.Errorf("compressed data ends early: %w", err)
	}
	var one [1]byte
	if m, _ := r.Read(one[:]); m != 0 {
		return fmt.Errorf("compressed data is longer than %d bytes", len(out))
	}
	return nil
}

// storeBlock is the most data a stored DEFLATE block holds.
const storeBlock = 65535

// storedLen is the length of store's output for n bytes: the bytes themselves and a 5-byte header
// per block (one empty block for n = 0).
func storedLen(n int64) int64 { return n + 5*max(1, (n+storeBlock-1)/storeBlock) }

// store writes src as a DEFLATE stream of stored blocks (RFC 1951 §3.2.4) into dst, which must
// hold storedLen(len(src)) bytes, and returns that much of dst. Unlike deflate, its length is
// known before the data is, so a header holding it can be laid out first.
func store(dst, src []byte) []byte {
	w := 0
	for first := true; first || len(src) > 0; first = false {
		k := min(len(src), storeBlock)
		final := byte(0)
		if k == len(src) {
			final = 1
		}
		dst[w] = final // BFINAL, BTYPE 00 (stored), padded to the byte boundary
		dst[w+1], dst[w+2] = byte(k), byte(k>>8)
		dst[w+3], dst[w+4] = ^byte(k), ^byte(k>>8)
		w += 5 + copy(dst[w+5:], src[:k])
		src = src[k:]
	}
	return dst[:w]
}
