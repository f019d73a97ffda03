package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/rws-project/rws/internal/mem"
)

// tokens reads a JSON document held in memory token by token, with the Token, More and
// InputOffset methods of json.Decoder (numbers as json.Number, as with UseNumber) and the same
// grammar checks: misplaced commas, colons and brackets, bad literals and numbers, control
// characters in strings are errors.
//
// It exists for speed. A patched model's header carries its undo record, megabytes of base64 in
// one metadata string; json.Decoder copies such a string three times into fresh memory, and
// scans it a byte at a time through its state machine. tokens returns a string without escapes
// as a view of the document (so the document must not change while the strings are in use), and
// unescapes the others run by run.
type tokens struct {
	b     []byte
	i     int
	stack []byte // '{' or '[' of each open container
	state tokenState
}

type tokenState int

// The states: what the next token may be.
const (
	wantValue       tokenState = iota // a value (top level, after '[', ',' in an array or ':')
	wantArrayFirst                    // a value or ']'
	wantArrayComma                    // ',' or ']'
	wantObjectFirst                   // a key or '}'
	wantKey                           // a key (after ',')
	wantColon                         // ':'
	wantObjectComma                   // ',' or '}'
	wantEnd                           // nothing: the top-level value is complete
)

func newTokens(b []byte) *tokens { return &tokens{b: b} }

// InputOffset is the offset in the document of the end of the last token read.
func (t *tokens) InputOffset() int64 { return int64(t.i) }

func (t *tokens) skipSpace() {
	for t.i < len(t.b) {
		switch t.b[t.i] {
		case ' ', '\t', '\n', '\r':
			t.i++
		default:
			return
		}
	}
}

// More reports whether the current array or object has another element.
func (t *tokens) More() bool {
	t.skipSpace()
	return t.i < len(t.b) && t.b[t.i] != ']' && t.b[t.i] != '}'
}

var errUnexpectedEnd = errors.New("unexpected end of JSON input")

func (t *tokens) syntax(what string) error {
	return fmt.Errorf("invalid character %q %s (offset %d)", t.b[t.i], what, t.i)
}

// valueDone moves past a complete value to what its container expects next.
func (t *tokens) valueDone() {
	switch {
	case len(t.stack) == 0:
		t.state = wantEnd
	case t.stack[len(t.stack)-1] == '[':
		t.state = wantArrayComma
	default:
		t.state = wantObjectComma
	}
}

// Token returns the next token: a json.Delim, a string, a json.Number, a bool or nil (null).
func (t *tokens) Token() (json.Token, error) {
	for {
		t.skipSpace()
		if t.i >= len(t.b) {
			return nil, errUnexpectedEnd
		}
		c := t.b[t.i]
		switch c {
		case ',':
			switch t.state {
			case wantArrayComma:
				t.state = wantValue
			case wantObjectComma:
				t.state = wantKey
			default:
				return nil, t.syntax("where no comma may be")
			}
			t.i++
			continue
		case ':':
			if t.state != wantColon {
				return nil, t.syntax("where no colon may be")
			}
			t.state = wantValue
			t.i++
			continue
		case ']', '}':
			open := byte('[')
			if c == '}' {
				open = '{'
			}
			ok := (c == ']' && (t.state == wantArrayFirst || t.state == wantArrayComma)) ||
				(c == '}' && (t.state == wantObjectFirst || t.state == wantObjectComma))
			if !ok || len(t.stack) == 0 || t.stack[len(t.stack)-1] != open {
				return nil, t.syntax("where no closing bracket may be")
			}
			t.stack = t.stack[:len(t.stack)-1]
			t.i++
			t.valueDone()
			return json.Delim(c), nil
		}
		if t.state == wantObjectFirst || t.state == wantKey {
			if c != '"' {
				return nil, t.syntax("looking for the beginning of an object key")
			}
			s, err := t.str()
			if err != nil {
				return nil, err
			}
			t.state = wantColon
			return s, nil
		}
		if t.state != wantValue && t.state != wantArrayFirst {
			return nil, t.syntax("after a value")
		}
		switch {
		case c == '[' || c == '{':
			t.stack = append(t.stack, c)
			t.i++
			t.state = wantArrayFirst
			if c == '{' {
				t.state = wantObjectFirst
			}
			return json.Delim(c), nil
		case c == '"':
			s, err := t.str()
			if err != nil {
				return nil, err
			}
			t.valueDone()
			return s, nil
		case c == '-' || ('0' <= c && c <= '9'):
			n, err := t.number()
			if err != nil {
				return nil, err
			}
			t.valueDone()
			return n, nil
		}
		for _, lit := range []struct {
			text string
			v    json.Token
		}{{"true", true}, {"false", false}, {"null", nil}} {
			if len(t.b)-t.i >= len(lit.text) && string(t.b[t.i:t.i+len(lit.text)]) == lit.text {
				t.i += len(lit.text)
				t.valueDone()
				return lit.v, nil
			}
		}
		return nil, t.syntax("looking for the beginning of a value")
	}
}

// str reads the string starting at t.i (a '"').
func (t *tokens) str() (string, error) {
	start := t.i
	j := start + 1
	escaped := false
	for ; j < len(t.b); j++ {
		c := t.b[j]
		if c == '"' {
			break
		}
		if c < 0x20 {
			t.i = j
			return "", t.syntax("in a string (control characters must be escaped)")
		}
		if c == '\\' {
			escaped = true
			j++ // the escaped character; encoding/json checks the escape below
		}
	}
	if j >= len(t.b) {
		t.i = len(t.b)
		return "", errUnexpectedEnd
	}
	t.i = j + 1
	if !escaped {
		if j == start+1 {
			return "", nil
		}
		return unsafe.String(&t.b[start+1], j-start-1), nil
	}
	out, ok := unescape(t.b[start+1 : j])
	if !ok {
		return "", fmt.Errorf("invalid escape in the string at offset %d", start)
	}
	if len(out) == 0 {
		return "", nil
	}
	return unsafe.String(&out[0], len(out)), nil
}

// unescape decodes the escapes of a JSON string's content as encoding/json does (a lone UTF-16
// surrogate becomes U+FFFD), copying the runs between escapes whole. It reports false for an
// invalid escape.
func unescape(b []byte) ([]byte, bool) {
	out := mem.Bytes(len(b))[:0] // unescaping only shortens
	for {
		k := bytes.IndexByte(b, '\\')
		if k < 0 {
			return append(out, b...), true
		}
		out = append(out, b[:k]...)
		if k+1 >= len(b) {
			return nil, false
		}
		e := b[k+1]
		b = b[k+2:]
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(b)
			if r < 0 {
				return nil, false
			}
			b = b[4:]
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				if len(b) >= 2 && b[0] == '\\' && b[1] == 'u' {
					r2 = hex4(b[2:])
				}
				if d := utf16.DecodeRune(r, r2); d != unicode.ReplacementChar {
					r = d
					b = b[6:]
				} else {
					r = unicode.ReplacementChar
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return nil, false
		}
	}
}

// hex4 decodes four hex digits at the start of b, or returns -1.
func hex4(b []byte) rune {
	if len(b) < 4 {
		return -1
	}
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// number reads a number at t.i with JSON's grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (t *tokens) number() (json.Number, error) {
	b, start := t.b, t.i
	i := start
	digits := func() int {
		k := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i - k
	}
	bad := func() (json.Number, error) {
		if i >= len(b) {
			t.i = len(b)
			return "", errUnexpectedEnd
		}
		t.i = i
		return "", t.syntax("in a number")
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case digits() == 0:
		return bad()
	}
	if i < len(b) && b[i] == '.' {
		i++
		if digits() == 0 {
			return bad()
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if digits() == 0 {
			return bad()
		}
	}
	t.i = i
	return json.Number(b[start:i]), nil
}
