// Command graphgen runs gqlgen as `go tool gqlgen generate` does, then
// marshals in order the lists whose elements never wait.
//
// gqlgen marshals every list of objects with a goroutine per element
// (graphql.MarshalSliceConcurrently), so that resolvers of different
// elements run together and their loaders batch. For an element type whose
// whole selection is plain fields (no resolver, no method taking a context,
// at any depth) there is nothing to wait for, and the goroutines only cost:
// the catalog page spawned one per gift and one per gift's merchant list,
// each growing its own stack. graphgen asks gqlgen's own model which list
// types qualify and, in the generated file, points their marshal functions
// at graph's marshalSliceInOrder, which has the same signature and the same
// per-element field context and panic handling, in one goroutine.
//
// Run by `go generate ./graph/` (graph/resolver.go), from any directory
// inside the module.
package main

import (
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/99designs/gqlgen/api"
	"github.com/99designs/gqlgen/codegen"
	"github.com/99designs/gqlgen/codegen/config"
	"github.com/vektah/gqlparser/v2/ast"
)

// inOrder is the name, in package graph, of the sequential replacement for
// graphql.MarshalSliceConcurrently.
const inOrder = "marshalSliceInOrder"

const concurrently = "graphql.MarshalSliceConcurrently("

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "graphgen:", err)
		os.Exit(1)
	}
}

func run() error {
	cfg, err := config.LoadConfigFromDefaultLocations()
	if err != nil {
		return fmt.Errorf("load gqlgen config: %w", err)
	}
	lists := &plainLists{}
	if err := api.Generate(cfg, api.AddPlugin(lists)); err != nil {
		return fmt.Errorf("gqlgen: %w", err)
	}
	src, err := os.ReadFile(cfg.Exec.Filename)
	if err != nil {
		return err
	}
	out, err := rewrite(string(src), lists.funcs)
	if err != nil {
		return err
	}
	return os.WriteFile(cfg.Exec.Filename, []byte(out), 0o644)
}

// plainLists is a gqlgen plugin that records the marshal functions of list
// types whose elements are plain objects (see plain).
type plainLists struct{ funcs []string }

func (*plainLists) Name() string { return "plainlists" }

// GenerateCode runs before gqlgen writes the executable schema; it only
// reads gqlgen's model of it.
func (p *plainLists) GenerateCode(data *codegen.Data) error {
	memo := map[string]bool{}
	for _, ref := range data.ReferencedTypes {
		if !ref.IsSlice() || ref.Elem() == nil || ref.Elem().IsSlice() || ref.Definition == nil {
			continue
		}
		if plain(data, ref.Definition.Name, memo) {
			p.funcs = append(p.funcs, ref.MarshalFunc())
		}
	}
	slices.Sort(p.funcs)
	p.funcs = slices.Compact(p.funcs)
	return nil
}

// plain reports whether the object type name, and every object reachable
// through its fields, has only fields gqlgen marshals inline: no resolver,
// no batch resolver, no method taking a context. Interfaces and unions are
// not plain (their implementations may not be). A type under evaluation
// counts as plain, so recursive types are judged by their other fields.
func plain(data *codegen.Data, name string, memo map[string]bool) bool {
	if v, ok := memo[name]; ok {
		return v
	}
	obj := data.Objects.ByName(name)
	if obj == nil || obj.Kind != ast.Object {
		memo[name] = false
		return false
	}
	memo[name] = true
	for _, f := range obj.Fields {
		if f.IsConcurrent() || f.IsResolver || f.IsBatch() {
			memo[name] = false
			return false
		}
		def := data.Schema.Types[f.Type.Name()]
		if def == nil {
			continue
		}
		switch def.Kind {
		case ast.Interface, ast.Union:
			memo[name] = false
			return false
		case ast.Object:
			if !plain(data, def.Name, memo) {
				memo[name] = false
				return false
			}
		}
	}
	return true
}

// rewrite points each named marshal function's MarshalSliceConcurrently
// call at inOrder. A named function that is absent was pruned by gqlgen; one
// without the call means gqlgen's output changed, which is an error rather
// than a silent no-op.
func rewrite(src string, funcs []string) (string, error) {
	for _, name := range funcs {
		start := strings.Index(src, "func (ec *executionContext) "+name+"(")
		if start < 0 {
			continue
		}
		end := strings.Index(src[start:], "\n}\n")
		if end < 0 {
			return "", fmt.Errorf("%s: no end of function", name)
		}
		body := src[start : start+end]
		if strings.Count(body, concurrently) != 1 {
			return "", fmt.Errorf("%s: expected one call of %s in its body", name, concurrently)
		}
		src = src[:start] + strings.Replace(body, concurrently, inOrder+"(", 1) + src[start+end:]
	}
	return src, nil
}
