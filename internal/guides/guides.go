// Package guides reads the runnable examples out of the Markdown guides
// (docs/migrate/, the quickstarts) so that a test runs them exactly as a
// reader copies them: the document and its test cannot drift apart.
//
// A guide marks its blocks in the fence's info string, after the language:
//
//	```sh run            a shell block the test runs, in order, in one bash
//	                     session (variables carry over between blocks)
//	```js file=NAME      a file written to the working directory before the
//	                     first block runs (scripts the shell blocks call)
//	```json output       what the run block just before it prints: the whole
//	                     output, where "..." stands for any text (ids, times)
//
// Blocks without a mark are illustrations and are not run. The tests live in
// this package (guides_test.go); docs/testing.md describes the convention.
package guides

import (
	"fmt"
	"regexp"
	"strings"
)

// Block is one fenced code block of a guide.
type Block struct {
	// Lang is the fence's language (sh, js, json, ...).
	Lang string
	// Run marks a shell block the test runs.
	Run bool
	// Output marks the expected output of the run block before it.
	Output bool
	// File is the name the block is written to, when it is a file.
	File string
	// Body is the block's text, ending with a newline unless empty.
	Body string
	// Line is the 1-based line of the opening fence, for error messages.
	Line int
}

var fence = regexp.MustCompile("^```([A-Za-z0-9_+-]*)(.*)$")

// Parse returns the fenced code blocks of a Markdown document in order.
// It refuses unknown marks and an unterminated fence, so a typo in a mark
// cannot quietly turn a runnable example into an illustration.
func Parse(doc string) ([]Block, error) {
	var out []Block
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		m := fence.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		b := Block{Lang: m[1], Line: i + 1}
		for _, f := range strings.Fields(m[2]) {
			switch {
			case f == "run":
				b.Run = true
			case f == "output":
				b.Output = true
			case strings.HasPrefix(f, "file="):
				b.File = strings.TrimPrefix(f, "file=")
				if b.File == "" || strings.ContainsAny(b.File, "/\\") || strings.HasPrefix(b.File, ".") {
					return nil, fmt.Errorf("line %d: file=%q must be a plain file name", b.Line, b.File)
				}
			case strings.HasPrefix(f, "title=") || strings.HasPrefix(f, "{"):
				// Presentation hints of other tools; not ours.
			default:
				return nil, fmt.Errorf("line %d: unknown block mark %q (run, output, file=NAME)", b.Line, f)
			}
		}
		if n := boolInt(b.Run) + boolInt(b.Output) + boolInt(b.File != ""); n > 1 {
			return nil, fmt.Errorf("line %d: a block is run, output or file=, not several", b.Line)
		}
		var body []string
		closed := false
		for i++; i < len(lines); i++ {
			if strings.TrimRight(lines[i], " \t") == "```" {
				closed = true
				break
			}
			body = append(body, lines[i])
		}
		if !closed {
			return nil, fmt.Errorf("line %d: the code block is never closed", b.Line)
		}
		if len(body) > 0 {
			b.Body = strings.Join(body, "\n") + "\n"
		}
		out = append(out, b)
	}
	return out, nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// Match reports whether got is the expected output: the same text, after
// trimming surrounding white space, where each "..." of want matches any
// text (including none and line breaks).
func Match(want, got string) bool {
	parts := strings.Split(strings.TrimSpace(want), "...")
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	re := regexp.MustCompile("(?s)^" + strings.Join(parts, ".*?") + "$")
	return re.MatchString(strings.TrimSpace(got))
}
