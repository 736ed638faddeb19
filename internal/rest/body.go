package rest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/textcheck"
)

// ReadBody reads the whole body up to limit bytes. Signed requests need the
// raw bytes before anything else looks at them.
func ReadBody(r *http.Request, limit int64) ([]byte, error) {
	if r.Body == nil {
		return nil, nil
	}
	if r.ContentLength > limit {
		return nil, tooLarge(limit)
	}
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, apperr.New(apperr.CodeBadRequest, "could not read the request body")
	}
	if int64(len(b)) > limit {
		return nil, tooLarge(limit)
	}
	return b, nil
}

func tooLarge(limit int64) error {
	return apperr.New(apperr.CodePayloadTooLarge, "the request body is larger than %d bytes", limit)
}

// DecodeJSON decodes body strictly into dst: one JSON object, no unknown
// fields, no trailing data, and errors that name the offending field.
func DecodeJSON(r *http.Request, body []byte, dst any) error {
	ct := r.Header.Get("Content-Type")
	if mt, _, err := mime.ParseMediaType(ct); err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
		return apperr.New(apperr.CodeUnsupportedMediaType, "send the body as Content-Type: application/json")
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return apperr.New(apperr.CodeMalformedJSON, "the request body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return apperr.New(apperr.CodeMalformedJSON, "the request body must be a JSON object")
	}
	if err := CheckJSONText(body); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(dst); err != nil {
		return jsonError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.CodeMalformedJSON, "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.New(apperr.CodeMalformedJSON, "malformed JSON at byte %d: %s", syn.Offset, syn.Error())
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.CodeMalformedJSON, "the JSON document ends early")
	case errors.As(err, &typ):
		if typ.Field == "" {
			return apperr.New(apperr.CodeMalformedJSON, "the request body must be a JSON object")
		}
		return apperr.Field(apperr.CodeInvalidField, typ.Field, "%s must be %s, not %s", typ.Field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return apperr.Field(apperr.CodeUnknownField, name, "unknown field %q", name)
	}
	var fe *FieldError
	if errors.As(err, &fe) {
		return apperr.Field(apperr.CodeInvalidField, fe.Field, "%s", fe.Msg)
	}
	return apperr.New(apperr.CodeMalformedJSON, "malformed JSON: %s", err.Error())
}

// FieldError is returned by custom UnmarshalJSON methods.
type FieldError struct{ Field, Msg string }

func (e *FieldError) Error() string { return fmt.Sprintf("%s: %s", e.Field, e.Msg) }

func jsonKind(k string) string {
	switch k {
	case "string":
		return "a string"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "a whole number"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "true or false"
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "ptr":
		return "a value of the documented type"
	}
	return "a value of the documented type"
}

// CheckJSONText refuses a body that is not valid UTF-8 or whose strings
// hold control characters (textcheck.JSON): the first check of DecodeJSON.
func CheckJSONText(body []byte) error {
	if !utf8.Valid(body) {
		return apperr.New(apperr.CodeMalformedJSON, "the request body is not valid UTF-8")
	}
	return textcheck.JSON("", body)
}
