package catalog

import (
	"encoding/csv"
	"errors"
	"io"
	"strings"

	"github.com/perkshq/perks/internal/apperr"
)

// ParseCodesCSV reads an upload of voucher codes: one code per line; a
// first line "code" (any case) is a header; blank lines are skipped;
// surrounding spaces are trimmed. A malformed line, a line with more than
// one field or a code ValidateCode refuses fails the whole file with the
// line's number (never the code itself: codes are bearer values), so a bad
// row changes nothing.
func ParseCodesCSV(body io.Reader) ([]string, error) {
	r := csv.NewReader(body)
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	var codes []string
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				return nil, apperr.Field(apperr.CodeInvalidField, "codes", "malformed CSV at line %d: %s", pe.Line, pe.Err.Error())
			}
			return nil, apperr.Field(apperr.CodeInvalidField, "codes", "malformed CSV")
		}
		line, _ := r.FieldPos(0)
		if len(rec) != 1 {
			return nil, apperr.Field(apperr.CodeInvalidField, "codes", "line %d has %d fields; send one code per line", line, len(rec))
		}
		c := strings.TrimSpace(rec[0])
		if len(codes) == 0 && strings.EqualFold(c, "code") {
			continue
		}
		if c == "" {
			continue
		}
		if ValidateCode("codes", c) != nil {
			return nil, apperr.Field(apperr.CodeInvalidField, "codes", "line %d is not a valid code: codes are 3-64 characters of letters, digits, '_', '.', '-', starting with a letter or digit", line)
		}
		codes = append(codes, c)
		if len(codes) > MaxCodesPerUpload {
			return nil, apperr.Field(apperr.CodeInvalidField, "codes", "at most %d codes per upload; split the file", MaxCodesPerUpload)
		}
	}
	return codes, nil
}
