package layering

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

const module = "github.com/perkshq/perks"

// notDomain are the internal packages that are not domain services: the
// composition root, the transports and the test helpers. Every other
// internal package is a domain package and must not reach a transport.
var notDomain = map[string]bool{
	"internal/app":        true, // composition root: wires everything
	"internal/apptest":    true, // test helper: a whole app on httptest
	"internal/dbtest":     true, // test helper: test databases
	"internal/httpserver": true, // transport: routes, middleware
	"internal/rest":       true, // transport: the REST API
	"internal/portal":     true, // transport: the partner portal pages
	"internal/console":    true, // transport: the platform console pages (/admin)
	"internal/jobs":       true, // River wiring: checked by its own rule
	"internal/layering":   true, // this test

	"internal/merchantportal": true, // transport: the merchant portal pages (issue 17)
}

// transports are the packages (and package prefixes, ending in "/") a
// domain package must not import: the GraphQL and REST transports, the
// HTTP server, the embedded web pages and gqlgen itself.
var transports = []string{
	module + "/graph",
	module + "/graph/",
	module + "/internal/rest",
	module + "/internal/httpserver",
	module + "/internal/app",
	module + "/web",
	module + "/cmd/",
	"github.com/99designs/gqlgen/",
	"net/http/httptest",
	"net/http/pprof",
}

// serverSide are the net/http names that only a server uses. Importing
// net/http is fine for a client (webhook delivery, JWKS fetches); handling
// requests is a transport's job.
var serverSide = map[string]bool{
	"Handler": true, "HandlerFunc": true, "ServeMux": true, "NewServeMux": true,
	"ResponseWriter": true, "Server": true, "ListenAndServe": true, "Serve": true,
	"HandleFunc": true, "Handle": true, "Error": true, "Redirect": true,
	"MaxBytesReader": true, "ServeContent": true, "ServeFile": true, "FileServer": true,
	"StripPrefix": true, "TimeoutHandler": true, "AllowQuerySemicolons": true,
}

// jobsMayImport are the internal packages internal/jobs may import: River
// wiring needs the database and configuration, never a domain rule.
var jobsMayImport = map[string]bool{
	"internal/database": true,
	"internal/config":   true,
	"internal/apperr":   true,
}

// jobsViolations are domain packages internal/jobs may still import. It is
// empty since the domain workers moved to their domains (issue 12, item 2);
// it stays as the place where a deliberate, reviewed exception would be
// listed, and an entry jobs no longer imports fails TestLayers.
var jobsViolations = map[string]bool{}

// testHelpers may only be imported by tests (and by each other).
var testHelpers = map[string]bool{
	"internal/dbtest":  true,
	"internal/apptest": true,
}

type pkg struct {
	ImportPath string
	Dir        string
	GoFiles    []string
	Imports    []string
}

// listPackages runs `go list -json` over the module: Imports holds the
// imports of the non-test files only, which is what a binary links.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	gobin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command is needed to list the module's packages")
	cmd := exec.Command(gobin, "list", "-json", module+"/...")
	cmd.Dir = ".."
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "go list: %s", stderr.String())
	var pkgs []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		pkgs = append(pkgs, p)
	}
	require.NotEmpty(t, pkgs)
	return pkgs
}

func rel(path string) string { return strings.TrimPrefix(path, module+"/") }

func isDomain(p string) bool {
	p = rel(p)
	if !strings.HasPrefix(p, "internal/") || notDomain[p] {
		return false
	}
	// Sub-packages of a non-domain package (internal/rest/x) are not
	// domain either; internal/apperr/internal/errdoc is a generator.
	for nd := range notDomain {
		if strings.HasPrefix(p, nd+"/") {
			return false
		}
	}
	return !strings.Contains(strings.TrimPrefix(p, "internal/"), "/internal/")
}

func isTransport(imp string) bool {
	for _, tr := range transports {
		if imp == tr || (strings.HasSuffix(tr, "/") && strings.HasPrefix(imp, tr)) {
			return true
		}
	}
	return false
}

// violations is what the rules find in pkgs; each rule is a pure function
// of the package list so the rules themselves are tested on made-up
// graphs below.
func violations(pkgs []pkg, serverUse func(pkg) []string) []string {
	var out []string
	for _, p := range pkgs {
		name := rel(p.ImportPath)
		for _, imp := range p.Imports {
			if testHelpers[rel(imp)] && !testHelpers[name] {
				out = append(out, name+" imports the test helper "+rel(imp)+" outside its tests")
			}
		}
		if isDomain(p.ImportPath) {
			for _, imp := range p.Imports {
				if isTransport(imp) {
					out = append(out, "domain package "+name+" imports the transport "+rel(imp))
				}
			}
			if serverUse != nil {
				for _, use := range serverUse(p) {
					out = append(out, "domain package "+name+" serves HTTP: "+use)
				}
			}
		}
		if name == "internal/jobs" {
			for _, imp := range p.Imports {
				r := rel(imp)
				if !strings.HasPrefix(imp, module+"/") || jobsMayImport[r] || r == "migrations" {
					continue
				}
				if !jobsViolations[r] {
					out = append(out, "internal/jobs (River wiring only) imports "+r)
				}
			}
		}
	}
	return out
}

// serverUse lists the server-side net/http names (http.Handler, a
// ServeMux, a ResponseWriter...) the non-test files of p use. It reads the
// syntax only: the selector must be on the file's own name for net/http.
func serverUse(t *testing.T) func(pkg) []string {
	return func(p pkg) []string {
		var uses []string
		fset := token.NewFileSet()
		for _, f := range p.GoFiles {
			file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
			require.NoError(t, err)
			httpName := ""
			for _, is := range file.Imports {
				path, _ := strconv.Unquote(is.Path.Value)
				if path != "net/http" {
					continue
				}
				httpName = "http"
				if is.Name != nil {
					httpName = is.Name.Name
				}
			}
			if httpName == "" {
				continue
			}
			ast.Inspect(file, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if id, ok := sel.X.(*ast.Ident); ok && id.Name == httpName && serverSide[sel.Sel.Name] {
					uses = append(uses, fset.Position(sel.Pos()).String()+": http."+sel.Sel.Name)
				}
				return true
			})
		}
		return uses
	}
}

// TestLayers checks the module's real import graph: domain packages never
// reach a transport, internal/jobs is River wiring only (minus the
// shrinking jobsViolations list), and the test helpers are linked into no
// binary.
func TestLayers(t *testing.T) {
	t.Parallel()
	pkgs := listPackages(t)
	require.Empty(t, violations(pkgs, serverUse(t)))

	// The allow-list must not outlive its violations: an entry jobs no
	// longer imports is deleted, so the list only ever shrinks.
	for _, p := range pkgs {
		if rel(p.ImportPath) != "internal/jobs" {
			continue
		}
		for allowed := range jobsViolations {
			require.True(t, slices.Contains(p.Imports, module+"/"+allowed),
				"internal/jobs no longer imports %s: delete it from jobsViolations", allowed)
		}
	}
}

// TestRules feeds the rules made-up graphs, so a rule that matches nothing
// (a typo in a path) cannot pass silently.
func TestRules(t *testing.T) {
	t.Parallel()
	m := func(s string) string { return module + "/" + s }
	noServer := func(pkg) []string { return nil }
	tests := []struct {
		name string
		pkgs []pkg
		want int
	}{
		{"domain imports rest", []pkg{{ImportPath: m("internal/ledger"), Imports: []string{m("internal/rest")}}}, 1},
		{"domain imports graph", []pkg{{ImportPath: m("internal/voucher"), Imports: []string{m("graph")}}}, 1},
		{"domain imports graph/model", []pkg{{ImportPath: m("internal/voucher"), Imports: []string{m("graph/model")}}}, 1},
		{"domain imports httpserver", []pkg{{ImportPath: m("internal/user"), Imports: []string{m("internal/httpserver")}}}, 1},
		{"domain imports gqlgen", []pkg{{ImportPath: m("internal/user"), Imports: []string{"github.com/99designs/gqlgen/graphql"}}}, 1},
		{"domain imports httptest", []pkg{{ImportPath: m("internal/user"), Imports: []string{"net/http/httptest"}}}, 1},
		{"domain http client is fine", []pkg{{ImportPath: m("internal/webhook"), Imports: []string{"net/http"}}}, 0},
		{"transport imports transport", []pkg{{ImportPath: m("internal/httpserver"), Imports: []string{m("internal/rest"), "github.com/99designs/gqlgen/graphql/playground"}}}, 0},
		{"jobs imports a new domain package", []pkg{{ImportPath: m("internal/jobs"), Imports: []string{m("internal/ledger")}}}, 1},
		{"jobs imports a domain package with workers", []pkg{{ImportPath: m("internal/jobs"), Imports: []string{m("internal/voucher")}}}, 1},
		{"jobs imports the database", []pkg{{ImportPath: m("internal/jobs"), Imports: []string{m("internal/database"), "github.com/riverqueue/river"}}}, 0},
		{"binary imports dbtest", []pkg{{ImportPath: m("cmd/perks"), Imports: []string{m("internal/dbtest")}}}, 1},
		{"domain imports apptest", []pkg{{ImportPath: m("internal/voucher"), Imports: []string{m("internal/apptest")}}}, 1},
		{"apptest imports dbtest", []pkg{{ImportPath: m("internal/apptest"), Imports: []string{m("internal/dbtest")}}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			require.Len(t, violations(tt.pkgs, noServer), tt.want, "%v", violations(tt.pkgs, noServer))
		})
	}

	t.Run("server-side net/http use in a domain package", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		src := `package d
import h "net/http"
var _ h.Handler
func client() *h.Client { return &h.Client{} }
func serve(w h.ResponseWriter, r *h.Request) {}
`
		require.NoError(t, writeFile(filepath.Join(dir, "d.go"), src))
		got := violations([]pkg{{ImportPath: m("internal/d"), Dir: dir, GoFiles: []string{"d.go"}, Imports: []string{"net/http"}}}, serverUse(t))
		require.Len(t, got, 2, "%v", got) // h.Handler and h.ResponseWriter; Client and Request are client-side too
	})
}

func writeFile(path, s string) error {
	return os.WriteFile(path, []byte(s), 0o600)
}

// txNameViolations are exported functions that take a bun.Tx without
// ending in Tx. It is empty (the last ones were renamed in issue 12); an
// entry that no longer violates fails TestTxSuffix.
var txNameViolations = map[string]bool{}

// txFuncs lists the exported functions and methods of p's non-test files
// that take a bun.Tx (or *bun.Tx) parameter and whose name does not end in
// Tx, as "pkg.Recv.Name".
func txFuncs(t *testing.T, p pkg) []string {
	t.Helper()
	var out []string
	fset := token.NewFileSet()
	for _, f := range p.GoFiles {
		file, err := parser.ParseFile(fset, filepath.Join(p.Dir, f), nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		bunName := ""
		for _, is := range file.Imports {
			if path, _ := strconv.Unquote(is.Path.Value); path == "github.com/uptrace/bun" {
				bunName = "bun"
				if is.Name != nil {
					bunName = is.Name.Name
				}
			}
		}
		if bunName == "" {
			continue
		}
		for _, d := range file.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || !fd.Name.IsExported() || strings.HasSuffix(fd.Name.Name, "Tx") {
				continue
			}
			for _, field := range fd.Type.Params.List {
				typ := field.Type
				if star, ok := typ.(*ast.StarExpr); ok {
					typ = star.X
				}
				sel, ok := typ.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "Tx" {
					continue
				}
				if id, ok := sel.X.(*ast.Ident); !ok || id.Name != bunName {
					continue
				}
				name := rel(p.ImportPath) + "."
				if fd.Recv != nil && len(fd.Recv.List) == 1 {
					recv := fd.Recv.List[0].Type
					if star, ok := recv.(*ast.StarExpr); ok {
						recv = star.X
					}
					if idx, ok := recv.(*ast.IndexExpr); ok {
						recv = idx.X
					}
					if id, ok := recv.(*ast.Ident); ok {
						name += id.Name + "."
					}
				}
				out = append(out, name+fd.Name.Name)
				break
			}
		}
	}
	return out
}

// TestTxSuffix: a function that runs inside its caller's transaction says
// so in its name (docs/testing.md, "Layers").
func TestTxSuffix(t *testing.T) {
	t.Parallel()
	var found []string
	for _, p := range listPackages(t) {
		for _, name := range txFuncs(t, p) {
			if !txNameViolations[name] {
				t.Errorf("%s takes a bun.Tx: its name must end in Tx", name)
			}
			found = append(found, name)
		}
	}
	for name := range txNameViolations {
		require.Contains(t, found, name, "%s is renamed: delete it from txNameViolations", name)
	}
}
