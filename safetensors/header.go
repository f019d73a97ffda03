package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/rws-project/rws/internal/mem"
	"github.com/rws-project/rws/tensor"
)

// MaxHeaderSize is the largest header accepted, as in the reference implementation (100 MB).
const MaxHeaderSize = 100_000_000

// metadataKey is the reserved header entry that holds the string metadata.
const metadataKey = "__metadata__"

// Info describes one tensor of a file.
type Info struct {
	Name  string
	DType tensor.DType
	Shape []int64
	// Offset is the absolute position of the first byte in its file; Size the byte length.
	Offset int64
	Size   int64
	// File is the path of the file that holds the tensor (a shard, for sharded checkpoints).
	File string
}

// Elements is the number of elements of the tensor.
func (i Info) Elements() int64 { return tensor.Elements(i.Shape) }

// ErrFormat is matched (errors.Is) by every *FormatError.
var ErrFormat = errors.New("invalid safetensors file")

// FormatError reports a file that breaks a rule of the format. Rule names the rule, so tests and
// callers can tell failures apart; Offset is the byte position when known, or -1.
type FormatError struct {
	Path   string
	Offset int64
	Rule   string
	Detail string
}

func (e *FormatError) Error() string {
	at := ""
	if e.Offset >= 0 {
		at = fmt.Sprintf(" at byte %d", e.Offset)
	}
	return fmt.Sprintf("%s: invalid safetensors file%s: %s: %s", e.Path, at, e.Rule, e.Detail)
}

func (e *FormatError) Is(target error) bool { return target == ErrFormat }

// Rules checked by parseHeader, one per way a file can be malformed.
const (
	RuleTooShort       = "file too short"
	RuleHeaderSize     = "header size"
	RuleUTF8           = "header is not valid UTF-8"
	RuleJSON           = "header is not valid JSON"
	RuleDuplicate      = "duplicate key"
	RuleName           = "bad tensor name"
	RuleField          = "bad tensor entry"
	RuleDType          = "unknown dtype"
	RuleShape          = "bad shape"
	RuleOffsets        = "bad data offsets"
	RuleOverlap        = "overlapping tensors"
	RuleHole           = "hole between tensors"
	RuleSpan           = "byte span does not match shape and dtype"
	RuleTrailing       = "trailing bytes after the last tensor"
	RuleMetadata       = "bad __metadata__"
	RuleTruncated      = "file truncated"
	RuleIndex          = "bad sharded index"
	RuleIndexMismatch  = "index does not match shards"
	RuleDuplicateShard = "tensor in several shards"
)

// header is a parsed and validated header. Offsets in infos are relative to the data area.
type header struct {
	infos []Info // in data order (ascending offsets)
	meta  map[string]string
	// metaOrder keeps the metadata keys as they appeared, so rewriting a file keeps its header.
	size int64 // data area size implied by the header
}

// parseHeader validates raw (the JSON after the 8-byte length) for a file whose data area has
// dataSize bytes (-1 when unknown, e.g. while fuzzing only the header).
func parseHeader(path string, raw []byte, dataSize int64) (*header, error) {
	bad := func(off int64, rule, format string, args ...any) error {
		return &FormatError{Path: path, Offset: off, Rule: rule, Detail: fmt.Sprintf(format, args...)}
	}
	if !utf8.Valid(raw) {
		i := firstInvalidUTF8(raw)
		return nil, bad(8+int64(i), RuleUTF8, "invalid byte 0x%02x", raw[i])
	}
	dec := newTokens(raw)
	pos := func() int64 { return 8 + dec.InputOffset() }
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(pos(), RuleJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, bad(8, RuleJSON, "header must be a JSON object")
	}
	h := &header{meta: map[string]string{}}
	seen := map[string]bool{}
	for dec.More() {
		keyPos := pos()
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(pos(), RuleJSON, "%v", err)
		}
		name := tok.(string)
		if seen[name] {
			return nil, bad(keyPos, RuleDuplicate, "%q appears twice", name)
		}
		seen[name] = true
		if name == metadataKey {
			if err := parseMetadata(dec, h.meta, func(rule, format string, args ...any) error {
				return bad(pos(), rule, format, args...)
			}); err != nil {
				return nil, err
			}
			continue
		}
		if name == "" {
			return nil, bad(keyPos, RuleName, "empty tensor name")
		}
		if strings.IndexByte(name, 0) >= 0 {
			return nil, bad(keyPos, RuleName, "tensor name %q contains a NUL byte", name)
		}
		info, begin, end, err := parseEntry(dec, name, func(rule, format string, args ...any) error {
			return bad(pos(), rule, format, args...)
		})
		if err != nil {
			return nil, err
		}
		info.Offset, info.Size = begin, end-begin
		h.infos = append(h.infos, info)
	}
	if _, err := dec.Token(); err != nil { // closing brace
		return nil, bad(pos(), RuleJSON, "%v", err)
	}
	// Only white space may follow the object (writers pad with spaces).
	rest := raw[dec.InputOffset():]
	if len(bytes.TrimLeft(rest, " \t\r\n")) != 0 {
		return nil, bad(pos(), RuleJSON, "unexpected data after the header object")
	}
	return h, h.checkLayout(path, dataSize)
}

func firstInvalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			return i
		}
		i += n
	}
	return 0
}

type badFunc func(rule, format string, args ...any) error

func parseMetadata(dec *tokens, meta map[string]string, bad badFunc) error {
	tok, err := dec.Token()
	if err != nil {
		return bad(RuleJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return bad(RuleMetadata, "must be an object of strings, got %s", describe(tok))
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return bad(RuleJSON, "%v", err)
		}
		k := tok.(string)
		if _, dup := meta[k]; dup {
			return bad(RuleDuplicate, "metadata key %q appears twice", k)
		}
		v, err := dec.Token()
		if err != nil {
			return bad(RuleJSON, "%v", err)
		}
		s, ok := v.(string)
		if !ok {
			if d, isDelim := v.(json.Delim); isDelim {
				_ = d
				return bad(RuleMetadata, "value of %q must be a string, got an object or array", k)
			}
			return bad(RuleMetadata, "value of %q must be a string, got %s", k, describe(v))
		}
		meta[k] = s
	}
	_, err = dec.Token()
	if err != nil {
		return bad(RuleJSON, "%v", err)
	}
	return nil
}

func describe(tok json.Token) string {
	switch v := tok.(type) {
	case json.Delim:
		if v == '[' {
			return "an array"
		}
		return "an object"
	case json.Number:
		return "the number " + v.String()
	case bool:
		return strconv.FormatBool(v)
	case nil:
		return "null"
	case string:
		return strconv.Quote(v)
	}
	return fmt.Sprintf("%v", tok)
}

// parseEntry reads {"dtype": …, "shape": […], "data_offsets": [b, e]} with exact field names.
func parseEntry(dec *tokens, name string, bad badFunc) (Info, int64, int64, error) {
	info := Info{Name: name}
	var begin, end int64
	tok, err := dec.Token()
	if err != nil {
		return info, 0, 0, bad(RuleJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return info, 0, 0, bad(RuleField, "tensor %q: entry must be an object, got %s", name, describe(tok))
	}
	have := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return info, 0, 0, bad(RuleJSON, "%v", err)
		}
		field := tok.(string)
		if have[field] {
			return info, 0, 0, bad(RuleDuplicate, "tensor %q: field %q appears twice", name, field)
		}
		have[field] = true
		switch field {
		case "dtype":
			v, err := dec.Token()
			if err != nil {
				return info, 0, 0, bad(RuleJSON, "%v", err)
			}
			s, ok := v.(string)
			if !ok {
				return info, 0, 0, bad(RuleDType, "tensor %q: dtype must be a string, got %s", name, describe(v))
			}
			d, err := tensor.ParseDType(s)
			if err != nil {
				return info, 0, 0, bad(RuleDType, "tensor %q: %v", name, err)
			}
			info.DType = d
		case "shape":
			dims, err := intArray(dec, bad, RuleShape, name, "shape")
			if err != nil {
				return info, 0, 0, err
			}
			info.Shape = dims
		case "data_offsets":
			offs, err := intArray(dec, bad, RuleOffsets, name, "data_offsets")
			if err != nil {
				return info, 0, 0, err
			}
			if len(offs) != 2 {
				return info, 0, 0, bad(RuleOffsets, "tensor %q: data_offsets must have 2 numbers, has %d", name, len(offs))
			}
			begin, end = offs[0], offs[1]
		default:
			return info, 0, 0, bad(RuleField, "tensor %q: unknown field %q (fields are dtype, shape, data_offsets; names are case-sensitive)", name, field)
		}
	}
	if _, err := dec.Token(); err != nil {
		return info, 0, 0, bad(RuleJSON, "%v", err)
	}
	for _, f := range []string{"dtype", "shape", "data_offsets"} {
		if !have[f] {
			return info, 0, 0, bad(RuleField, "tensor %q: missing field %q", name, f)
		}
	}
	if begin > end {
		return info, 0, 0, bad(RuleOffsets, "tensor %q: data_offsets [%d, %d] end before they begin", name, begin, end)
	}
	n := tensor.Elements(info.Shape)
	if n < 0 {
		return info, 0, 0, bad(RuleShape, "tensor %q: shape %v overflows", name, info.Shape)
	}
	if n > (1<<62)/int64(info.DType.Size()) || n*int64(info.DType.Size()) != end-begin {
		return info, 0, 0, bad(RuleSpan, "tensor %q: %s %v needs %d bytes, data_offsets [%d, %d] give %d",
			name, info.DType, info.Shape, n*int64(info.DType.Size()), begin, end, end-begin)
	}
	return info, begin, end, nil
}

func intArray(dec *tokens, bad badFunc, rule, name, field string) ([]int64, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(RuleJSON, "%v", err)
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, bad(rule, "tensor %q: %s must be an array, got %s", name, field, describe(tok))
	}
	out := []int64{}
	for dec.More() {
		v, err := dec.Token()
		if err != nil {
			return nil, bad(RuleJSON, "%v", err)
		}
		num, ok := v.(json.Number)
		if !ok {
			return nil, bad(rule, "tensor %q: %s holds %s, want non-negative integers", name, field, describe(v))
		}
		x, err := strconv.ParseInt(num.String(), 10, 64)
		if err != nil || x < 0 {
			return nil, bad(rule, "tensor %q: %s holds %s, want non-negative integers below 2^63", name, field, num)
		}
		out = append(out, x)
	}
	if _, err := dec.Token(); err != nil {
		return nil, bad(RuleJSON, "%v", err)
	}
	return out, nil
}

// checkLayout sorts the tensors by offset and checks that they tile the data area exactly.
func (h *header) checkLayout(path string, dataSize int64) error {
	sort.SliceStable(h.infos, func(i, j int) bool {
		a, b := h.infos[i], h.infos[j]
		if a.Offset != b.Offset {
			return a.Offset < b.Offset
		}
		return a.Size < b.Size
	})
	var at int64
	for i, t := range h.infos {
		switch {
		case t.Offset < at:
			return &FormatError{Path: path, Offset: -1, Rule: RuleOverlap,
				Detail: fmt.Sprintf("tensor %q [%d, %d] overlaps %q [%d, %d]", t.Name, t.Offset, t.Offset+t.Size,
					h.infos[i-1].Name, h.infos[i-1].Offset, h.infos[i-1].Offset+h.infos[i-1].Size)}
		case t.Offset > at:
			return &FormatError{Path: path, Offset: -1, Rule: RuleHole,
				Detail: fmt.Sprintf("bytes [%d, %d] of the data area belong to no tensor (before %q)", at, t.Offset, t.Name)}
		}
		at = t.Offset + t.Size
	}
	h.size = at
	if dataSize >= 0 {
		if at > dataSize {
			return &FormatError{Path: path, Offset: -1, Rule: RuleTruncated,
				Detail: fmt.Sprintf("the header needs %d data bytes, the file has %d", at, dataSize)}
		}
		if at < dataSize {
			return &FormatError{Path: path, Offset: -1, Rule: RuleTrailing,
				Detail: fmt.Sprintf("%d bytes follow the last tensor", dataSize-at)}
		}
	}
	return nil
}

// readHeader reads and validates the header of the file r of the given size.
func readHeader(path string, r io.ReaderAt, fileSize int64) (*header, int64, error) {
	if fileSize < 8 {
		return nil, 0, &FormatError{Path: path, Offset: 0, Rule: RuleTooShort,
			Detail: fmt.Sprintf("%d bytes, need at least 8 for the header length", fileSize)}
	}
	var lenBuf [8]byte
	if _, err := r.ReadAt(lenBuf[:], 0); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	n := leUint64(lenBuf[:])
	if n > MaxHeaderSize {
		return nil, 0, &FormatError{Path: path, Offset: 0, Rule: RuleHeaderSize,
			Detail: fmt.Sprintf("header length %d is above the 100 MB limit (is this a safetensors file?)", n)}
	}
	if int64(n) > fileSize-8 {
		return nil, 0, &FormatError{Path: path, Offset: 0, Rule: RuleHeaderSize,
			Detail: fmt.Sprintf("header length %d runs past the end of the %d-byte file", n, fileSize)}
	}
	// Large headers (a patched model's carries its undo record) are read into huge-page memory,
	// which their metadata strings then share (see tokens).
	raw := mem.Bytes(int(n))
	if _, err := r.ReadAt(raw, 8); err != nil {
		return nil, 0, fmt.Errorf("%s: %w", path, err)
	}
	dataStart := 8 + int64(n)
	h, err := parseHeader(path, raw, fileSize-dataStart)
	if err != nil {
		return nil, 0, err
	}
	return h, dataStart, nil
}

func leUint64(b []byte) uint64 {
	return uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 |
		uint64(b[4])<<32 | uint64(b[5])<<40 | uint64(b[6])<<48 | uint64(b[7])<<56
}
