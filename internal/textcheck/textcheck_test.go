package textcheck_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/textcheck"
)

func TestLineAndMultiline(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in              string
		line, multiline bool // accepted?
	}{
		{"plain text, émoji 🎁", true, true},
		{"", true, true},
		{"\x00", false, false},
		{"a\x00b", false, false},
		{"a\x01", false, false},
		{"a\x1b[31m", false, false},
		{"a\x7f", false, false},
		{"a\u0085b", false, false},
		{"a\u009fb", false, false},
		{"two\nlines", false, true},
		{"tab\there", false, true},
		{"crlf\r\n", false, true},
		{"bad \xff utf-8", false, false},
		{"\u00a0nbsp is not a control", true, true},
	} {
		require.Equal(t, tc.line, textcheck.Line("f", tc.in) == nil, "Line(%q)", tc.in)
		err := textcheck.Multiline("f", tc.in)
		require.Equal(t, tc.multiline, err == nil, "Multiline(%q)", tc.in)
		if err != nil {
			e := apperr.As(err)
			require.Equal(t, apperr.CodeInvalidField, e.Code)
			require.Equal(t, "f", e.Field)
		}
	}
}

func TestJSONNamesTheField(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		doc, field string // field "": accepted
	}{
		{`{"a":"b","n":1,"l":[true,null,"x"]}`, ""},
		{`{"a":"line\nbreak\tand tab"}`, ""},
		{`{"a":"\\u0000 is text, not NUL"}`, ""},
		{`{"a":"\u0000"}`, "a"},
		{`{"a":{"b":[1,"ok","x\u0001"]}}`, "a.b[2]"},
		{`{"items":[{},{"reference":"r\u001b"}]}`, "items[1].reference"},
		{`{"k\u0000":1}`, "body"},
		{`{"m":{"k\u0000":1}}`, "m"},
		{`{"a":"\b"}`, "a"},
		{`{"a":"\f"}`, "a"},
		{"{\"a\":\"\u0085\"}", "a"},
		{`"\u0000"`, "body"},
		{`{"a":`, ""}, // malformed: the decoder reports it
	} {
		err := textcheck.JSON("", []byte(tc.doc))
		if tc.field == "" {
			require.NoError(t, err, tc.doc)
			continue
		}
		require.Error(t, err, tc.doc)
		require.Equal(t, tc.field, apperr.As(err).Field, tc.doc)
	}
	err := textcheck.JSON("metadata", []byte(`{"note":"\u0000"}`))
	require.Equal(t, "metadata.note", apperr.As(err).Field)
}

func TestInt4(t *testing.T) {
	t.Parallel()
	require.NoError(t, textcheck.Int4("p", 2147483647))
	require.NoError(t, textcheck.Int4("p", -2147483648))
	require.Error(t, textcheck.Int4("p", 2147483648))
	require.Error(t, textcheck.Int4("p", -2147483649))
}
