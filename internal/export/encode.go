package export

import (
	"encoding/binary"
	"math"
	"strconv"
	"time"
	_ "time/tzdata" // the session's TimeZone resolves as PostgreSQL's does, whatever the host has
)

// The encoders below write exactly what PostgreSQL's json_build_object,
// json_agg and text casts wrote when the feed was rendered in SQL (the
// differential test compares them byte for byte with that SQL, kept as
// FeedQuery): keys and values separated by " : ", members and elements by
// ", ", strings escaped as escape_json does, timestamps as to_json renders
// them in the session's TimeZone. Values arrive in PostgreSQL's binary
// format.

// appendJSONString appends s as a JSON string, escaped as PostgreSQL's
// escape_json: the two-character escapes for " \ \b \f \n \r \t, \u00xx
// (lower-case hex) for the other control characters, everything else
// (DEL and non-ASCII included) as is.
func appendJSONString(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i, c := range s {
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"':
			dst = append(dst, '\\', '"')
		case '\\':
			dst = append(dst, '\\', '\\')
		case '\b':
			dst = append(dst, '\\', 'b')
		case '\f':
			dst = append(dst, '\\', 'f')
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			const hex = "0123456789abcdef"
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// appendUUID appends a 16-byte uuid in its canonical text form.
func appendUUID(dst, u []byte) []byte {
	const hex = "0123456789abcdef"
	for i, c := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			dst = append(dst, '-')
		}
		dst = append(dst, hex[c>>4], hex[c&0xf])
	}
	return dst
}

func int8Of(v []byte) int64 { return int64(binary.BigEndian.Uint64(v)) }

func boolOf(v []byte) bool { return len(v) == 1 && v[0] == 1 }

// pgEpochMicros is 2000-01-01 UTC, PostgreSQL's timestamp epoch, in Unix
// microseconds.
const pgEpochMicros = 946684800 * 1_000_000

// appendTime appends a binary timestamptz as to_json renders it (without
// quotes) in loc: 2006-01-02T15:04:05[.ffffff]+07:00[:05], the fraction
// without trailing zeros, the offset's seconds only when there are some.
func appendTime(dst, v []byte, loc *time.Location) []byte {
	us := int8Of(v)
	switch us {
	case math.MaxInt64:
		return append(dst, "infinity"...)
	case math.MinInt64:
		return append(dst, "-infinity"...)
	}
	t := time.UnixMicro(us + pgEpochMicros).In(loc)
	year, month, day := t.Date()
	hour, min, sec := t.Clock()
	dst = appendPad(dst, year, 4)
	dst = append(dst, '-')
	dst = appendPad(dst, int(month), 2)
	dst = append(dst, '-')
	dst = appendPad(dst, day, 2)
	dst = append(dst, 'T')
	dst = appendPad(dst, hour, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, min, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, sec, 2)
	if f := t.Nanosecond() / 1000; f != 0 {
		digits := 6
		for f%10 == 0 {
			f /= 10
			digits--
		}
		dst = append(dst, '.')
		dst = appendPad(dst, f, digits)
	}
	_, off := t.Zone()
	if off < 0 {
		dst = append(dst, '-')
		off = -off
	} else {
		dst = append(dst, '+')
	}
	dst = appendPad(dst, off/3600, 2)
	dst = append(dst, ':')
	dst = appendPad(dst, off/60%60, 2)
	if s := off % 60; s != 0 {
		dst = append(dst, ':')
		dst = appendPad(dst, s, 2)
	}
	return dst
}

// appendPad appends n zero-padded to width digits (more if it needs them).
func appendPad(dst []byte, n, width int) []byte {
	var b [20]byte
	s := strconv.AppendInt(b[:0], int64(n), 10)
	for i := len(s); i < width; i++ {
		dst = append(dst, '0')
	}
	return append(dst, s...)
}

// jsonw builds one JSON value the way json_build_object and json_agg
// print it.
type jsonw struct {
	b   []byte
	loc *time.Location
	// first is whether the next member or element is the first of its
	// object or array.
	first bool
}

func (w *jsonw) open(c byte) { w.b = append(w.b, c); w.first = true }

func (w *jsonw) close(c byte) { w.b = append(w.b, c); w.first = false }

// elem starts an array element.
func (w *jsonw) elem() {
	if !w.first {
		w.b = append(w.b, ", "...)
	}
	w.first = false
}

// key starts a member.
func (w *jsonw) key(k string) {
	if !w.first {
		w.b = append(w.b, ", "...)
	}
	w.first = false
	w.b = append(w.b, '"')
	w.b = append(w.b, k...)
	w.b = append(w.b, `" : `...)
}

func (w *jsonw) null() { w.b = append(w.b, "null"...) }

func (w *jsonw) text(v []byte) {
	if v == nil {
		w.null()
		return
	}
	w.b = appendJSONString(w.b, v)
}

func (w *jsonw) uuid(v []byte) {
	if v == nil {
		w.null()
		return
	}
	w.b = append(w.b, '"')
	w.b = appendUUID(w.b, v)
	w.b = append(w.b, '"')
}

func (w *jsonw) int8(v []byte) {
	if v == nil {
		w.null()
		return
	}
	w.b = strconv.AppendInt(w.b, int8Of(v), 10)
}

func (w *jsonw) int(n int64) { w.b = strconv.AppendInt(w.b, n, 10) }

func (w *jsonw) bool(b bool) { w.b = strconv.AppendBool(w.b, b) }

func (w *jsonw) time(v []byte) {
	if v == nil {
		w.null()
		return
	}
	w.b = append(w.b, '"')
	w.b = appendTime(w.b, v, w.loc)
	w.b = append(w.b, '"')
}

// raw appends a value that is already JSON text (a jsonb's text form).
func (w *jsonw) raw(v []byte) {
	if v == nil {
		w.null()
		return
	}
	w.b = append(w.b, v...)
}

// csvw builds one CSV line as the SQL did: every field quoted with inner
// quotes doubled, NULL an empty field, fields separated by commas.
type csvw struct {
	b     []byte
	first bool
	tmp   []byte
	loc   *time.Location
}

func (c *csvw) sep() {
	if !c.first {
		c.b = append(c.b, ',')
	}
	c.first = false
}

func (c *csvw) null() { c.sep() }

// quoted appends v as a quoted field.
func (c *csvw) quoted(v []byte) {
	c.sep()
	c.b = append(c.b, '"')
	start := 0
	for i, ch := range v {
		if ch == '"' {
			c.b = append(c.b, v[start:i+1]...)
			c.b = append(c.b, '"')
			start = i + 1
		}
	}
	c.b = append(c.b, v[start:]...)
	c.b = append(c.b, '"')
}

// text appends a partner's free text, neutralised against spreadsheet
// formulas (csvText): a leading =, +, -, @, tab or carriage return gets a
// single quote in front.
func (c *csvw) text(v []byte) {
	if v == nil {
		c.null()
		return
	}
	if len(v) > 0 {
		switch v[0] {
		case '=', '+', '-', '@', '\t', '\r':
			c.tmp = append(append(c.tmp[:0], '\''), v...)
			c.quoted(c.tmp)
			return
		}
	}
	c.quoted(v)
}

// plain appends a value that needs no formula guard (a code, JSON text).
func (c *csvw) plain(v []byte) {
	if v == nil {
		c.null()
		return
	}
	c.quoted(v)
}

func (c *csvw) uuid(v []byte) {
	if v == nil {
		c.null()
		return
	}
	c.tmp = appendUUID(c.tmp[:0], v)
	c.quoted(c.tmp)
}

func (c *csvw) int(n int64) {
	c.tmp = strconv.AppendInt(c.tmp[:0], n, 10)
	c.quoted(c.tmp)
}

func (c *csvw) bool(b bool) {
	c.tmp = strconv.AppendBool(c.tmp[:0], b)
	c.quoted(c.tmp)
}

func (c *csvw) time(v []byte) {
	if v == nil {
		c.null()
		return
	}
	c.tmp = appendTime(c.tmp[:0], v, c.loc)
	c.quoted(c.tmp)
}
