package safetensors

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"
)

// tokenSeeds are documents for TestTokensMatchDecoder and the seeds of FuzzTokens: valid ones,
// and one per kind of grammar error.
var tokenSeeds = []string{
	`{}`, `[]`, `{"a":1}`, `{"a":[1,2,{"b":null}],"c":true,"d":false}`, ` { "x" : "y" } `,
	`{"__metadata__":{"k":"v\u00e9\n\"q\"\\"},"t":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}}`,
	`[-0, 0.5, 1e10, -2.5E-3, 123456789012345678901234567890]`, `"lone string"`, `42`,
	`{"a":1,}`, `[1,]`, `[,1]`, `{"a" 1}`, `{"a":}`, `{:1}`, `{1:2}`, `[1 2]`, `{"a":1 "b":2}`,
	`[01]`, `[1.]`, `[.5]`, `[1e]`, `[-]`, `[+1]`, `[tru]`, `[nul]`, `[True]`, `[1}`, `{"a":1]`,
	"[\"tab\there\"]", `["bad \x escape"]`, `["\u12"]`, `["\ud800"]`, `[`, `{"a"`, `"open`, `]`,
	`{} x`, `1 2`, `[[[]]]`, `{"a":{"b":{"c":[]}}}`,
	// Escapes: surrogate pairs, lone and broken surrogates, every short escape, upper-case hex.
	`["\ud83d\ude00", "\ud83d", "\ud83dx", "\ud83d\u0041", "\udc00", "\u00E9\u00e9"]`,
	`["\\u1234", "a\\", "\/\b\f\n\r\t\"", "\u", "\u12g4", "\ud83d\u12"]`, `["abc\"]`, `["\`,
}

// decoderTokens runs json.Decoder over doc until its first top-level value is complete or an
// error: the tokens, and whether it ended in an error.
func decoderTokens(doc []byte) ([]json.Token, bool) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var out []json.Token
	depth := 0
	for {
		tok, err := dec.Token()
		if err != nil {
			return out, true
		}
		out = append(out, tok)
		if d, ok := tok.(json.Delim); ok && (d == '[' || d == '{') {
			depth++
		} else if ok {
			depth--
		}
		if depth == 0 {
			return out, false
		}
	}
}

func ourTokens(doc []byte) ([]json.Token, bool) {
	t := newTokens(doc)
	var out []json.Token
	for {
		tok, err := t.Token()
		if err != nil {
			return out, true
		}
		out = append(out, tok)
		if t.state == wantEnd {
			return out, false
		}
	}
}

func checkTokens(t *testing.T, doc []byte) {
	if !utf8.Valid(doc) {
		return // parseHeader refuses invalid UTF-8 before tokenizing
	}
	want, wantErr := decoderTokens(doc)
	got, gotErr := ourTokens(doc)
	if wantErr != gotErr || !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\ntokens %#v (error %v)\njson.Decoder %#v (error %v)", doc, got, gotErr, want, wantErr)
	}
}

// TestTokensMatchDecoder checks tokens against json.Decoder: the same tokens, and an error where
// it errs.
func TestTokensMatchDecoder(t *testing.T) {
	for _, s := range tokenSeeds {
		checkTokens(t, []byte(s))
	}
	// A long string, as an undo record is: returned as a view, without copies.
	long := `{"__metadata__":{"rws.undo":"` + strings.Repeat("QUJD", 1<<18) + `"}}`
	checkTokens(t, []byte(long))
	// A long string with escapes, as JSON inside JSON is.
	escaped := `{"__metadata__":{"rws.undo":"` + strings.Repeat(`{\"x\":\"QUJD\u00e9\"}`, 1<<15) + `"}}`
	checkTokens(t, []byte(escaped))
}

// TestTokensMore checks More against json.Decoder inside arrays and objects.
func TestTokensMore(t *testing.T) {
	doc := []byte(`{"a":[1,2],"b":{}}`)
	dec := json.NewDecoder(bytes.NewReader(doc))
	ours := newTokens(doc)
	for {
		if a, b := dec.More(), ours.More(); a != b {
			t.Fatalf("More: %v, json.Decoder %v at offset %d", b, a, ours.i)
		}
		_, err1 := dec.Token()
		_, err2 := ours.Token()
		if (err1 != nil) != (err2 != nil) {
			t.Fatalf("Token errors differ: %v, json.Decoder %v", err2, err1)
		}
		if err1 != nil || ours.state == wantEnd {
			return
		}
	}
}

func FuzzTokens(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { checkTokens(t, doc) })
}
