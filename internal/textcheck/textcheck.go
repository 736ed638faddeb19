// Package textcheck refuses text that PostgreSQL cannot store as given, or
// that would come back different from what the client sent.
//
// PostgreSQL text and jsonb cannot hold U+0000, and bun's query formatter
// drops NUL bytes from the strings it inlines: without these checks a NUL
// either failed the statement (a 500) or was silently removed (the stored
// value differed from the answer). Other control characters are stored but
// are never meant in the fields of this API and break logs, CSV and the
// screens that show them, so they are refused too.
//
// Two kinds of field:
//   - Line: names, titles, identifiers, references, codes, URLs, reasons.
//     No control character at all (C0, DEL, C1), valid UTF-8.
//   - Multiline: free text meant to be shown as paragraphs (an ad body, a
//     gift description) and the string values of partner metadata. Tab,
//     line feed and carriage return are allowed; every other control
//     character is refused.
//
// Both return an *apperr.Error with code INVALID_FIELD naming the field.
package textcheck

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/perkshq/perks/internal/apperr"
)

// Int4 bounds: the range of a PostgreSQL integer column.
const (
	MinInt4 = math.MinInt32
	MaxInt4 = math.MaxInt32
)

// Line checks a single-line text field.
func Line(field, s string) error { return check(field, s, false) }

// Multiline checks a free-text field: \t, \n and \r are allowed.
func Multiline(field, s string) error { return check(field, s, true) }

// LinePtr checks an optional single-line field.
func LinePtr(field string, s *string) error {
	if s == nil {
		return nil
	}
	return Line(field, *s)
}

// Lines checks every element of a list of single-line values.
func Lines(field string, list []string) error {
	for i, s := range list {
		if err := Line(fmt.Sprintf("%s[%d]", field, i), s); err != nil {
			return err
		}
	}
	return nil
}

// Bad reports the first refused rune of s and its position (in runes), or
// ok when s is acceptable. Invalid UTF-8 is reported as utf8.RuneError.
func Bad(s string, multiline bool) (r rune, pos int, bad bool) {
	i := 0
	for off, c := range s {
		if c == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(s[off:]); size <= 1 {
				return c, i, true
			}
		}
		if Refused(c, multiline) {
			return c, i, true
		}
		i++
	}
	return 0, 0, false
}

// Refused reports whether the rune is refused in a field of the kind.
func Refused(c rune, multiline bool) bool {
	switch {
	case c == '\t' || c == '\n' || c == '\r':
		return !multiline
	case c < 0x20 || c == 0x7f:
		return true
	case c >= 0x80 && c <= 0x9f:
		return true
	}
	return false
}

func check(field, s string, multiline bool) error {
	r, pos, bad := Bad(s, multiline)
	if !bad {
		return nil
	}
	return Error(field, r, pos)
}

// Error is the field error for a refused rune at a position.
func Error(field string, r rune, pos int) error {
	if r == utf8.RuneError {
		return apperr.Field(apperr.CodeInvalidField, field, "%s is not valid UTF-8 (at character %d)", field, pos+1)
	}
	return apperr.Field(apperr.CodeInvalidField, field, "%s must not contain control characters (U+%04X at character %d)", field, r, pos+1)
}

// Int4 checks that n fits a PostgreSQL integer column.
func Int4(field string, n int) error {
	if n < MinInt4 || n > MaxInt4 {
		return apperr.Field(apperr.CodeInvalidField, field, "%s must be a whole number from %d to %d", field, MinInt4, MaxInt4)
	}
	return nil
}

// JSON refuses a JSON document whose strings (keys and values, at any
// depth, metadata included) hold a control character other than tab, line
// feed and carriage return (keys: none at all). PostgreSQL refuses U+0000 in text and jsonb (a 500) while bun's query
// formatter drops NUL bytes (a stored value that differs from the answer).
// Fields that must be a single line refuse \t, \n and \r in their domain
// validation (Line). The error names the field by its JSON path under
// prefix. Malformed JSON passes: reporting it is the decoder's job.
func JSON(prefix string, body []byte) error {
	if !mayHoldControl(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	type level struct {
		object bool
		key    string
		index  int
		expect bool // object: the next string is a key
	}
	var stack []level
	path := func(stack []level) string {
		var b strings.Builder
		b.WriteString(prefix)
		for _, l := range stack {
			if l.object {
				if b.Len() > 0 {
					b.WriteByte('.')
				}
				b.WriteString(l.key)
			} else {
				fmt.Fprintf(&b, "[%d]", l.index)
			}
		}
		return b.String()
	}
	// after moves past one value in the enclosing container.
	after := func() {
		if n := len(stack); n > 0 {
			if stack[n-1].object {
				stack[n-1].expect = true
			} else {
				stack[n-1].index++
			}
		}
	}
	for {
		tok, err := dec.Token()
		if err != nil {
			// Syntax errors are the decoder's to report.
			return nil
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{':
				stack = append(stack, level{object: true, expect: true})
			case '[':
				stack = append(stack, level{index: 0})
			default:
				stack = stack[:len(stack)-1]
				after()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].expect {
				if r, pos, bad := Bad(v, false); bad {
					// Named by the object that holds it: the key itself
					// is not echoed.
					field := path(stack[:n-1])
					if field == "" {
						field = "body"
					}
					return apperr.Field(apperr.CodeInvalidField, field, "a key of %s holds a control character (U+%04X at character %d)", field, r, pos+1)
				}
				stack[n-1].key = v
				stack[n-1].expect = false
				continue
			}
			if r, pos, bad := Bad(v, true); bad {
				field := path(stack)
				if field == "" {
					field = "body"
				}
				return Error(field, r, pos)
			}
			after()
		default:
			after()
		}
	}
}

// mayHoldControl is a cheap pre-check: a control character can only reach
// a decoded JSON string through an escape (\u…, \b, \f) or as a raw DEL
// or C1 byte (raw C0 bytes inside strings are syntax errors).
func mayHoldControl(b []byte) bool {
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case c == '\\' && i+1 < len(b) && (b[i+1] == 'u' || b[i+1] == 'b' || b[i+1] == 'f'):
			return true
		case c == 0x7f:
			return true
		case c == 0xc2 && i+1 < len(b) && b[i+1] >= 0x80 && b[i+1] <= 0x9f:
			return true
		}
	}
	return false
}
