package npy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/rws-project/rws/tensor"
)

// Format versions read by this package; Marshal writes CurrentVersion unless the header needs
// a larger length field.
const (
	MinVersion     = 1
	MaxVersion     = 3
	CurrentVersion = 1
)

// Magic is the first six bytes of every .npy file.
const Magic = "\x93NUMPY"

// MaxHeaderLen bounds the header dict accepted by the parser (NumPy's own default limit is
// 10000 bytes); it keeps a corrupt length field from causing a huge allocation.
const MaxHeaderLen = 1 << 16

// MaxDims is the largest number of dimensions accepted (NumPy 1.x allows 32).
const MaxDims = 32

// growthDigits is NumPy's GROWTH_AXIS_MAX_DIGITS: the header leaves room for the first dimension
// to grow to 21 digits without rewriting the file.
const growthDigits = 21

// align is NumPy's ARRAY_ALIGN: data starts at a multiple of 64 bytes.
const align = 64

// ErrUnsupported marks a valid .npy file that this package does not read (Fortran order,
// big-endian, structured or complex dtypes, …).
var ErrUnsupported = errors.New("unsupported .npy array")

// FormatError describes a malformed .npy file: the path (empty for a stream), the byte offset
// where the problem was found, and the cause.
type FormatError struct {
	Path   string
	Offset int64
	Err    error
}

func (e *FormatError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("npy: offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("npy: %q: offset %d: %v", e.Path, e.Offset, e.Err)
}

func (e *FormatError) Unwrap() error { return e.Err }

// Header describes the array in a .npy file.
type Header struct {
	// DType is the element type; see the package documentation for the supported ones.
	DType tensor.DType
	// Shape is the array shape in C order; empty for a 0-d array (one element).
	Shape []int64
	// Version is the format major version (1, 2 or 3). Marshal uses CurrentVersion when it is
	// 0, or 2 when a version 1 length field cannot hold the header.
	Version int
}

// descrs maps each supported dtype to the descr NumPy writes for it.
var descrs = map[tensor.DType]string{
	tensor.U8: "|u1", tensor.I8: "|i1", tensor.I16: "<i2", tensor.I32: "<i4", tensor.I64: "<i8",
	tensor.F16: "<f2", tensor.F32: "<f4", tensor.F64: "<f8", tensor.Bool: "|b1",
}

// Elements is the number of elements, the product of Shape (1 for a 0-d array), or -1 when a
// dimension is negative or the product overflows int64.
func (h Header) Elements() int64 { return tensor.Elements(h.Shape) }

// DataSize is the number of data bytes after the header, or -1 when it overflows int64.
func (h Header) DataSize() int64 {
	n := h.Elements()
	sz := int64(h.DType.Size())
	if n < 0 || sz == 0 || (n > 0 && n > math.MaxInt64/sz) {
		return -1
	}
	return n * sz
}

// validate checks h for writing.
func (h Header) validate() error {
	if _, ok := descrs[h.DType]; !ok {
		return fmt.Errorf("npy: dtype %q cannot be stored (supported: U8 I8 I16 I32 I64 F16 F32 F64 BOOL)", h.DType)
	}
	if len(h.Shape) > MaxDims {
		return fmt.Errorf("npy: shape %v has %d dimensions, more than %d", h.Shape, len(h.Shape), MaxDims)
	}
	if h.DataSize() < 0 {
		return fmt.Errorf("npy: shape %v is negative or too large", h.Shape)
	}
	if h.Version != 0 && (h.Version < MinVersion || h.Version > MaxVersion) {
		return fmt.Errorf("npy: version %d is not one of 1, 2, 3", h.Version)
	}
	return nil
}

// Marshal returns the bytes of h as NumPy 1.24 writes them with np.save (version 1 unless
// h.Version says otherwise): magic, version, length, dict, padding to 64 bytes, newline.
func (h Header) Marshal() ([]byte, error) {
	if err := h.validate(); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("{'descr': '")
	b.WriteString(descrs[h.DType])
	b.WriteString("', 'fortran_order': False, 'shape': (")
	for i, d := range h.Shape {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(strconv.FormatInt(d, 10))
	}
	if len(h.Shape) == 1 {
		b.WriteString(",")
	}
	b.WriteString("), }")
	if len(h.Shape) > 0 {
		// NumPy pads by GROWTH_AXIS_MAX_DIGITS - len(repr(shape[0])).
		if n := growthDigits - len(strconv.FormatInt(h.Shape[0], 10)); n > 0 {
			b.WriteString(strings.Repeat(" ", n))
		}
	}
	dict := b.String()

	version := h.Version
	if version == 0 {
		version = CurrentVersion
	}
	for {
		lenSize := 4
		if version == 1 {
			lenSize = 2
		}
		hlen := len(dict) + 1
		pad := align - (len(Magic)+2+lenSize+hlen)%align
		total := hlen + pad
		if version == 1 && total > math.MaxUint16 {
			if h.Version == 1 {
				return nil, fmt.Errorf("npy: header of %d bytes does not fit version 1; use version 2", total)
			}
			version = 2
			continue
		}
		out := make([]byte, 0, len(Magic)+2+lenSize+total)
		out = append(out, Magic...)
		out = append(out, byte(version), 0)
		if lenSize == 2 {
			out = binary.LittleEndian.AppendUint16(out, uint16(total))
		} else {
			out = binary.LittleEndian.AppendUint32(out, uint32(total))
		}
		out = append(out, dict...)
		for range pad {
			out = append(out, ' ')
		}
		return append(out, '\n'), nil
	}
}

// prefixLen is the length of the fixed part before the dict: magic, version, length field.
func prefixLen(version int) int {
	if version == 1 {
		return len(Magic) + 2 + 2
	}
	return len(Magic) + 2 + 4
}

// parsePrefix checks the magic and version in the first 8 bytes of b, and returns the version,
// the full prefix length and, when b holds it, the header dict length (-1 otherwise).
func parsePrefix(b []byte) (version, plen int, err error) {
	if len(b) < len(Magic)+2 {
		return 0, 0, &FormatError{Offset: int64(len(b)), Err: errors.New("file too short for the .npy magic and version (is it a .npy file?)")}
	}
	if string(b[:len(Magic)]) != Magic {
		return 0, 0, &FormatError{Offset: 0, Err: fmt.Errorf("bad magic %q, want %q (not a .npy file)", b[:len(Magic)], Magic)}
	}
	major, minor := int(b[6]), int(b[7])
	if major < MinVersion || major > MaxVersion || minor != 0 {
		return 0, 0, &FormatError{Offset: 6, Err: fmt.Errorf("%w: format version %d.%d (this reader knows 1.0, 2.0 and 3.0)", ErrUnsupported, major, minor)}
	}
	return major, prefixLen(major), nil
}

// headerLen reads the little-endian HEADER_LEN in the prefix b (of length plen).
func headerLen(b []byte, version int) (int, error) {
	var n uint64
	if version == 1 {
		n = uint64(binary.LittleEndian.Uint16(b[8:]))
	} else {
		n = uint64(binary.LittleEndian.Uint32(b[8:]))
	}
	if n > MaxHeaderLen {
		return 0, &FormatError{Offset: 8, Err: fmt.Errorf("header length %d exceeds the limit of %d bytes", n, MaxHeaderLen)}
	}
	if n == 0 {
		return 0, &FormatError{Offset: 8, Err: errors.New("header length is 0")}
	}
	return int(n), nil
}

// ParseHeader parses a complete header (magic through the final newline) and returns it with
// its length in bytes, i.e. the offset of the array data. Extra bytes after the header in b
// are ignored.
func ParseHeader(b []byte) (Header, int, error) {
	version, plen, err := parsePrefix(b)
	if err != nil {
		return Header{}, 0, err
	}
	if len(b) < plen {
		return Header{}, 0, &FormatError{Offset: int64(len(b)), Err: errors.New("file ends inside the header length field")}
	}
	n, err := headerLen(b, version)
	if err != nil {
		return Header{}, 0, err
	}
	if len(b) < plen+n {
		return Header{}, 0, &FormatError{Offset: int64(len(b)), Err: fmt.Errorf("file ends inside the %d-byte header", n)}
	}
	h, err := parseDict(b[plen:plen+n], int64(plen))
	if err != nil {
		return Header{}, 0, err
	}
	h.Version = version
	return h, plen + n, nil
}

// parseDict parses the header dict text; base is its file offset, for errors.
func parseDict(b []byte, base int64) (Header, error) {
	fail := func(off int, format string, args ...any) (Header, error) {
		return Header{}, &FormatError{Offset: base + int64(off), Err: fmt.Errorf(format, args...)}
	}
	for i, c := range b {
		if c >= 0x80 || (c < 0x20 && c != '\n' && c != '\t' && c != '\r') {
			return fail(i, "header byte 0x%02x is not printable ASCII", c)
		}
	}
	if b[len(b)-1] != '\n' {
		return fail(len(b)-1, "header does not end with a newline")
	}
	p := &parser{b: b[:len(b)-1]}
	var (
		descr            string
		shape            []int64
		fortran          bool
		seenD, seenF, sS bool
	)
	p.space()
	if !p.eat('{') {
		return fail(p.i, "header does not start with '{': %q", abbrev(b))
	}
	for {
		p.space()
		if p.eat('}') {
			break
		}
		keyAt := p.i
		key, err := p.str()
		if err != nil {
			return fail(p.i, "header dict: %v", err)
		}
		p.space()
		if !p.eat(':') {
			return fail(p.i, "header dict: want ':' after key %q", key)
		}
		p.space()
		valAt := p.i
		switch key {
		case "descr":
			if seenD {
				return fail(keyAt, "header has key %q twice", key)
			}
			seenD = true
			if p.peek() == '[' {
				return Header{}, &FormatError{Offset: base + int64(valAt), Err: fmt.Errorf("%w: structured dtype (descr is a list); save a plain array instead", ErrUnsupported)}
			}
			if descr, err = p.str(); err != nil {
				return fail(p.i, "descr: %v", err)
			}
		case "fortran_order":
			if seenF {
				return fail(keyAt, "header has key %q twice", key)
			}
			seenF = true
			switch {
			case p.word("True"):
				fortran = true
			case p.word("False"):
			default:
				return fail(valAt, "fortran_order is not True or False")
			}
		case "shape":
			if sS {
				return fail(keyAt, "header has key %q twice", key)
			}
			sS = true
			if shape, err = p.tuple(); err != nil {
				return fail(p.i, "shape: %v", err)
			}
		default:
			return fail(keyAt, "header has unknown key %q (want descr, fortran_order, shape)", key)
		}
		p.space()
		if p.eat(',') {
			continue
		}
		p.space()
		if p.eat('}') {
			break
		}
		return fail(p.i, "header dict: want ',' or '}'")
	}
	p.space()
	if p.i != len(p.b) {
		return fail(p.i, "header has text after the dict: %q", abbrev(p.b[p.i:]))
	}
	switch {
	case !seenD:
		return fail(0, "header has no 'descr' key")
	case !seenF:
		return fail(0, "header has no 'fortran_order' key")
	case !sS:
		return fail(0, "header has no 'shape' key")
	}
	dt, err := parseDescr(descr)
	if err != nil {
		return Header{}, &FormatError{Offset: base, Err: err}
	}
	if fortran {
		return Header{}, &FormatError{Offset: base, Err: fmt.Errorf("%w: Fortran-order array; save np.ascontiguousarray(a) instead", ErrUnsupported)}
	}
	h := Header{DType: dt, Shape: shape}
	if h.DataSize() < 0 {
		return fail(0, "shape %v is too large", shape)
	}
	return h, nil
}

// parseDescr maps a NumPy type string to a DType.
func parseDescr(s string) (tensor.DType, error) {
	code, order := s, byte('|')
	if len(s) > 0 && strings.IndexByte("<>|=", s[0]) >= 0 {
		order, code = s[0], s[1:]
	}
	one := map[string]tensor.DType{"u1": tensor.U8, "i1": tensor.I8, "b1": tensor.Bool}
	multi := map[string]tensor.DType{"i2": tensor.I16, "i4": tensor.I32, "i8": tensor.I64, "f2": tensor.F16, "f4": tensor.F32, "f8": tensor.F64}
	if d, ok := one[code]; ok {
		return d, nil
	}
	if d, ok := multi[code]; ok {
		switch order {
		case '<':
			return d, nil
		case '>':
			return "", fmt.Errorf("%w: big-endian dtype %q; save a.astype('<%s') instead", ErrUnsupported, s, code)
		default:
			return "", fmt.Errorf("%w: dtype %q has no explicit byte order; save a.astype('<%s') instead", ErrUnsupported, s, code)
		}
	}
	return "", fmt.Errorf("%w: dtype %q (supported: |u1 |i1 <i2 <i4 <i8 <f2 <f4 <f8 |b1); convert with a.astype(...)", ErrUnsupported, s)
}

func abbrev(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

// parser reads the subset of Python literal syntax used in .npy headers.
type parser struct {
	b []byte
	i int
}

func (p *parser) peek() byte {
	if p.i < len(p.b) {
		return p.b[p.i]
	}
	return 0
}

func (p *parser) space() {
	for p.i < len(p.b) && (p.b[p.i] == ' ' || p.b[p.i] == '\t' || p.b[p.i] == '\n' || p.b[p.i] == '\r') {
		p.i++
	}
}

func (p *parser) eat(c byte) bool {
	if p.peek() == c {
		p.i++
		return true
	}
	return false
}

// word consumes the identifier w when it is not followed by another identifier character.
func (p *parser) word(w string) bool {
	if !strings.HasPrefix(string(p.b[p.i:]), w) {
		return false
	}
	j := p.i + len(w)
	if j < len(p.b) && (isDigit(p.b[j]) || p.b[j] == '_' || (p.b[j]|0x20 >= 'a' && p.b[j]|0x20 <= 'z')) {
		return false
	}
	p.i = j
	return true
}

// str reads a quoted string without escapes.
func (p *parser) str() (string, error) {
	q := p.peek()
	if q != '\'' && q != '"' {
		return "", errors.New("want a quoted string")
	}
	start := p.i + 1
	for j := start; j < len(p.b); j++ {
		switch p.b[j] {
		case q:
			p.i = j + 1
			return string(p.b[start:j]), nil
		case '\\', '\n':
			return "", errors.New("escapes and newlines in strings are not supported")
		}
	}
	return "", errors.New("unterminated string")
}

// tuple reads a Python tuple of non-negative decimal integers: (), (5,), (2, 3) or (2, 3,).
func (p *parser) tuple() ([]int64, error) {
	if !p.eat('(') {
		return nil, errors.New("not a tuple")
	}
	dims := []int64{}
	comma := false // the last token was a comma
	for {
		p.space()
		if p.eat(')') {
			if len(dims) == 1 && !comma {
				return nil, errors.New("(n) is an integer, not a tuple; want (n,)")
			}
			return dims, nil
		}
		if len(dims) > 0 && !comma {
			return nil, errors.New("want ',' between dimensions")
		}
		start := p.i
		for p.i < len(p.b) && isDigit(p.b[p.i]) {
			p.i++
		}
		if p.i == start {
			if p.peek() == '-' {
				return nil, errors.New("negative dimension")
			}
			return nil, errors.New("want a non-negative integer")
		}
		digits := string(p.b[start:p.i])
		if len(digits) > 1 && digits[0] == '0' {
			return nil, fmt.Errorf("dimension %q has a leading zero", digits)
		}
		d, err := strconv.ParseInt(digits, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("dimension %q is too large", digits)
		}
		dims = append(dims, d)
		if len(dims) > MaxDims {
			return nil, fmt.Errorf("more than %d dimensions", MaxDims)
		}
		p.space()
		comma = p.eat(',')
	}
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
