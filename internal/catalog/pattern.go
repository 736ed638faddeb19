package catalog

import (
	"crypto/rand"
	"math"
	"math/big"
	"regexp"
	"strings"

	"github.com/perkshq/perks/internal/apperr"
)

// Code patterns. In a pattern, '#' is a random digit 0-9, 'X' a random
// letter of LetterAlphabet, and every other character is literal. Letters
// leave out I and O so a code read aloud or typed at a till cannot confuse
// them with 1 and 0; digits in '#' positions are unambiguous because no
// letter position can hold an O or an I. A literal X cannot be written.
const (
	LetterAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	DigitAlphabet  = "0123456789"
)

// MinPatternCapacity is the fewest distinct codes a pattern may describe.
// A gift with stock also needs CapacityPerUnit codes per unit, so that even
// when the whole stock is issued a fresh random code collides with an
// issued one at most once in a thousand tries.
const (
	MinPatternCapacity = 1e6
	CapacityPerUnit    = 1000
	// UnlimitedCapacity is what a gift without a stock limit needs.
	UnlimitedCapacity = 1e9
)

var patternRE = regexp.MustCompile(`^[A-Z0-9#][A-Z0-9#._-]{2,63}$`)

// Pattern is a parsed code pattern.
type Pattern string

// ParsePattern validates a pattern for a gift with the given stock (nil:
// unlimited). It refuses patterns whose codes would not be valid codes and
// patterns with too few combinations for the stock.
func ParsePattern(field, s string, stock *int) (Pattern, error) {
	if !patternRE.MatchString(s) {
		return "", apperr.Field(apperr.CodeInvalidField, field, "%s must be 3-64 characters of A-Z, 0-9, '-', '_', '.', with '#' for a digit and 'X' for a letter, e.g. ACME-####-XXXX", field)
	}
	p := Pattern(s)
	need := float64(UnlimitedCapacity)
	if stock != nil {
		need = math.Max(MinPatternCapacity, float64(*stock)*CapacityPerUnit)
	}
	if c := p.Capacity(); c < need {
		return "", apperr.Field(apperr.CodeInvalidField, field,
			"%s describes only %.0f codes; this gift needs at least %.0f (add '#' or 'X' positions: each '#' multiplies by 10, each 'X' by %d)",
			field, c, need, len(LetterAlphabet))
	}
	return p, nil
}

// Capacity is how many distinct codes the pattern describes.
func (p Pattern) Capacity() float64 {
	digits := strings.Count(string(p), "#")
	letters := strings.Count(string(p), "X")
	return math.Pow(10, float64(digits)) * math.Pow(float64(len(LetterAlphabet)), float64(letters))
}

// Generate returns a uniformly random code of the pattern (crypto/rand:
// codes are bearer values, they must not be predictable).
func (p Pattern) Generate() (string, error) {
	out := []byte(p)
	for i, c := range out {
		var alphabet string
		switch c {
		case '#':
			alphabet = DigitAlphabet
		case 'X':
			alphabet = LetterAlphabet
		default:
			continue
		}
		n, err := rand.Int(rand.Reader, big.NewInt(int64(len(alphabet))))
		if err != nil {
			return "", err
		}
		out[i] = alphabet[n.Int64()]
	}
	return string(out), nil
}
