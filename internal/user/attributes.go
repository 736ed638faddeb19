package user

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"regexp"
	"strconv"
	"unicode/utf8"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/textcheck"
)

// Bounds of a user's custom attributes (issue 14). Attributes are a flat
// JSON object of strings, numbers and booleans the partner sets on POST
// /integrations/users and campaign conditions read (user.attributes.x).
// They carry no personal data by contract (segments, flags, counts: not
// names, e-mails or phone numbers): they are not encrypted, they are
// readable in conditions, and only anonymisation clears them.
const (
	MaxAttributes         = 50
	MaxAttributeStringLen = 256
	// MaxAttributesBytes bounds the stored object.
	MaxAttributesBytes = 8192
)

// attributeKeyRE keeps keys usable as CEL field names
// (user.attributes.segment): a letter, then letters, digits and '_'.
var attributeKeyRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,39}$`)

func attrErr(field, format string, args ...any) error {
	return apperr.Field(apperr.CodeInvalidField, field, format, args...)
}

// ValidateAttributes checks raw, a JSON object of attributes, and returns
// it in stored form (keys sorted, numbers as sent). It refuses more than
// MaxAttributes keys, a key outside attributeKeyRE, a string longer than
// MaxAttributeStringLen characters or with a control character, a number
// outside float64's range, and null, arrays and nested objects. The field
// of an error is "attributes" or "attributes.<key>".
func ValidateAttributes(raw json.RawMessage) (json.RawMessage, error) {
	if len(raw) > MaxAttributesBytes {
		return nil, attrErr("attributes", "attributes must be at most %d bytes", MaxAttributesBytes)
	}
	if !utf8.Valid(raw) {
		return nil, attrErr("attributes", "attributes must be valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, attrErr("attributes", "attributes must be a JSON object of strings, numbers and booleans")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, attrErr("attributes", "attributes must be one JSON object")
	}
	if len(m) > MaxAttributes {
		return nil, attrErr("attributes", "attributes holds at most %d keys", MaxAttributes)
	}
	for k, v := range m {
		if !attributeKeyRE.MatchString(k) {
			return nil, attrErr("attributes", "attribute keys must be 1 to 40 letters, digits or '_', starting with a letter")
		}
		field := "attributes." + k
		switch x := v.(type) {
		case string:
			if utf8.RuneCountInString(x) > MaxAttributeStringLen {
				return nil, attrErr(field, "%s must be at most %d characters", field, MaxAttributeStringLen)
			}
			if err := textcheck.Line(field, x); err != nil {
				return nil, err
			}
		case json.Number:
			f, err := strconv.ParseFloat(x.String(), 64)
			if err != nil || math.IsInf(f, 0) {
				return nil, attrErr(field, "%s is out of range", field)
			}
		case bool:
		default:
			return nil, attrErr(field, "%s must be a string, a number or a boolean (no null, arrays or objects)", field)
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return nil, attrErr("attributes", "attributes must be a JSON object of strings, numbers and booleans")
	}
	return out, nil
}
