package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// Output helpers shared by every command: lists print an aligned table,
// or indented JSON with --json.

// printJSON writes v as indented JSON (the --json output).
func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// newTable starts an aligned table on w with the given column headings;
// write rows tab-separated and Flush it.
func newTable(w io.Writer, columns ...string) *tabwriter.Writer {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	if len(columns) > 0 {
		fmt.Fprintln(tw, strings.Join(columns, "\t"))
	}
	return tw
}

func onOff(b bool) string {
	if b {
		return "enabled"
	}
	return "disabled"
}

// orEmpty makes a nil list print as [] in JSON.
func orEmpty(v []string) []string {
	if v == nil {
		return []string{}
	}
	return v
}

func orAll(v []string) string {
	if len(v) == 0 {
		return "(any)"
	}
	return strings.Join(v, ",")
}

// printJSONCompact writes v as one line of JSON (streams such as
// `perks jobs watch --json`: one object per line).
func printJSONCompact(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
