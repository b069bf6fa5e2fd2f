// Package docs_test holds docs/CONFIGURATION.md to the code: every
// environment variable the module reads is in its tables, and every variable
// in its tables is read.
//
// How variables are found. Every .go file of the module (tests included, so
// that the "Tests only" table is checked too) is parsed with go/parser, and a
// variable is read where
//
//   - a string literal, or a constant it names, is the name argument of a call
//     to os.Getenv, os.LookupEnv, or any function or method called getenv or
//     lookupEnv (any case) or envOr…: the first argument that is not itself
//     such a function, so envOr(getenv, "X", def) reads X;
//   - a const or var whose name ends in Env, or is Env<Upper>… (EnvMode),
//     holds a name: a string literal, or a composite literal of them (a map
//     such as catalog.BaseURLEnv);
//   - a string literal fills a string field whose name contains "env" in a
//     literal slice of anonymous structs (the worker's table of durations);
//   - catalog.FromEnv, called here with a getenv that records each name and
//     where it was asked, asks for it: this finds the names it builds, such as
//     <PROVIDER>_RATE_LIMIT, whatever the providers are.
//
// A name argument this cannot resolve (a variable, an expression) fails the
// test unless dynamicReads says how its names are found; a function whose
// name says it reads the environment may pass its own parameter on.
//
// What it cannot find: a read through a function whose name does not say so
// (lookup := os.Getenv; lookup("X"), or a helper envDuration("X")), a name assembled at run time outside
// catalog.FromEnv, os.Environ() scanned by prefix, and variables read only by
// the packages refundq depends on (asynq and go-redis read none that refundq
// documents). Scripts (.ci/, the Makefile, docker-compose.yml) are not Go and
// are not read.
package docs_test

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers/catalog"
)

// modulePath is the module's import path (go.mod).
const modulePath = "github.com/refundq/refundq"

// docPath is the configuration reference, from the module root.
const docPath = "docs/CONFIGURATION.md"

// testsSection is the heading of the table of variables only tests read.
const testsSection = "Tests only"

// dynamicReads are the name arguments the parser cannot resolve, by file and
// expression, with how the names they read are found instead. An entry whose
// read is gone fails the test, so this list cannot outlive the code.
var dynamicReads = map[string]string{
	"cmd/refund-worker/main.go d.env":                                      "the env fields of the table of durations it ranges over",
	"providers/catalog/catalog.go BaseURLEnv[e.Name]":                      "BaseURLEnv's values (a var whose name ends in Env)",
	`providers/catalog/catalog.go strings.ToUpper(e.Name) + "_RATE_LIMIT"`: "calling catalog.FromEnv with a recording getenv",
}

// ignored are variables the code reads that are not refundq's configuration.
var ignored = map[string]string{
	"PATH": "cmd/refundctl's README test passes it on to the shell it runs, with Go's bin directory added",
}

// site is one place the code reads (or names) a variable.
type site struct {
	file string // from the module root
	line int
	test bool // a _test.go file, or a test helper package (…test/)
}

func (s site) String() string { return s.file + ":" + strconv.Itoa(s.line) }

// unresolved is a name argument the parser could not turn into a name.
type unresolved struct {
	site
	expr string
}

// scan is what the module's source says about the environment.
type scan struct {
	reads   map[string][]site // variables read
	named   map[string][]site // variables named as NAME=value or set (Setenv): each must be read
	dynamic []unresolved
}

func TestConfigurationReference(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	s := scanModule(t, root)
	for name, sites := range catalogReads(t, root) {
		s.reads[name] = append(s.reads[name], sites...)
	}
	doc := readDoc(t, filepath.Join(root, docPath))
	if _, ok := s.reads["REDIS_URL"]; !ok {
		t.Fatal("the scan found no read of REDIS_URL: it is not reading the module's source")
	}

	t.Logf("%d variables read, %d documented: %s", len(s.reads), len(doc), strings.Join(sortedKeys(s.reads), " "))

	// (a) Every variable the code reads is documented.
	for _, name := range sortedKeys(s.reads) {
		if _, skip := ignored[name]; skip {
			continue
		}
		if _, ok := doc[name]; !ok {
			t.Errorf("%s is read by the code but %s does not list it: add a row (read at %s)", name, docPath, list(s.reads[name]))
		}
	}
	// (b) Every variable documented is read.
	for _, name := range sortedKeys(doc) {
		if _, ok := s.reads[name]; !ok {
			t.Errorf("%s:%d lists %s, which no code reads: remove the row, or restore the read", docPath, doc[name].line, name)
		}
	}
	// Variables only tests read are in the tests' table, and only they.
	for _, name := range sortedKeys(doc) {
		sites, ok := s.reads[name]
		if !ok {
			continue
		}
		testOnly := !slices.ContainsFunc(sites, func(s site) bool { return !s.test })
		switch inTests := doc[name].section == testsSection; {
		case testOnly && !inTests:
			t.Errorf("%s:%d lists %s under %q, but only tests read it (%s): move it to %q",
				docPath, doc[name].line, name, doc[name].section, list(sites), testsSection)
		case !testOnly && inTests:
			t.Errorf("%s:%d lists %s under %q, but code that is not a test reads it (%s)",
				docPath, doc[name].line, name, testsSection, list(sites))
		}
	}
	// A variable the code sets for another process, or names as NAME=value
	// in a message, is one the code reads: else it is a typo, or stale.
	for _, name := range sortedKeys(s.named) {
		if _, ok := s.reads[name]; !ok {
			if _, skip := ignored[name]; !skip {
				t.Errorf("%s is set or named as %s=… at %s, but no code reads it", name, name, list(s.named[name]))
			}
		}
	}
	// Name arguments the parser cannot resolve are each accounted for.
	seen := map[string]bool{}
	for _, u := range s.dynamic {
		key := u.file + " " + u.expr
		seen[key] = true
		if _, ok := dynamicReads[key]; !ok {
			t.Errorf("%s reads the variable named by %s, which this test cannot resolve: use a string literal or a "+
				"constant, or add %q to dynamicReads saying how its names are found", u.site, u.expr, key)
		}
	}
	for _, key := range sortedKeys(dynamicReads) {
		if !seen[key] {
			t.Errorf("dynamicReads has %q, but no such read is left: remove it", key)
		}
	}
}

// scanModule parses every .go file under root.
func scanModule(t *testing.T, root string) *scan {
	t.Helper()
	fset := token.NewFileSet()
	type parsed struct {
		rel string
		f   *ast.File
	}
	var files []parsed
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		files = append(files, parsed{filepath.ToSlash(rel), f})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 50 {
		t.Fatalf("found %d Go files under %s: not the module", len(files), root)
	}

	s := &scan{reads: map[string][]site{}, named: map[string][]site{}}
	at := func(rel string, pos token.Pos) site {
		return site{file: rel, line: fset.Position(pos).Line, test: isTestCode(rel)}
	}
	// Constants (and vars) holding a string, by package directory and name;
	// those named …Env or Env… are variable names wherever they are used.
	consts := map[string]map[string]string{}
	for _, p := range files {
		dir := pathDir(p.rel)
		for _, decl := range p.f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || (gd.Tok != token.CONST && gd.Tok != token.VAR) {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if i >= len(vs.Values) {
						break
					}
					if v, ok := stringLit(vs.Values[i]); ok {
						if consts[dir] == nil {
							consts[dir] = map[string]string{}
						}
						consts[dir][id.Name] = v
					}
					if !envNamed(id.Name) {
						continue
					}
					for _, lit := range stringsIn(vs.Values[i]) {
						if v, _ := stringLit(lit); envName.MatchString(v) {
							s.reads[v] = append(s.reads[v], at(p.rel, lit.Pos()))
						}
					}
				}
			}
		}
	}
	resolve := func(dir string, e ast.Expr) (string, bool) {
		switch e := e.(type) {
		case *ast.BasicLit:
			return stringLit(e)
		case *ast.Ident:
			v, ok := consts[dir][e.Name]
			return v, ok
		case *ast.SelectorExpr:
			pkg, ok := e.X.(*ast.Ident)
			if !ok {
				return "", false
			}
			var found []string
			for d, m := range consts {
				if v, ok := m[e.Sel.Name]; ok && pathBase(d) == pkg.Name {
					found = append(found, v)
				}
			}
			if len(found) == 1 {
				return found[0], true
			}
		}
		return "", false
	}

	for _, p := range files {
		dir := pathDir(p.rel)
		// wrapper is the enclosing function when its name says it reads the
		// environment: passing its own parameter on is no read of its own.
		var wrapperParams map[string]bool
		var visit func(n ast.Node) bool
		visit = func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.GenDecl:
				if n.Tok != token.IMPORT {
					wrapperParams = nil
				}
			case *ast.FuncDecl:
				wrapperParams = nil
				if envFunc(n.Name.Name) {
					wrapperParams = map[string]bool{}
					for _, f := range n.Type.Params.List {
						for _, id := range f.Names {
							wrapperParams[id.Name] = true
						}
					}
				}
			case *ast.CallExpr:
				switch name := calledName(n.Fun); {
				case envFunc(name):
					arg := nameArg(n)
					if arg == nil {
						break
					}
					if v, ok := resolve(dir, arg); ok {
						s.reads[v] = append(s.reads[v], at(p.rel, arg.Pos()))
						break
					}
					if id, ok := arg.(*ast.Ident); ok && wrapperParams[id.Name] {
						break
					}
					s.dynamic = append(s.dynamic, unresolved{at(p.rel, arg.Pos()), types.ExprString(arg)})
				case name == "Setenv" || name == "Unsetenv":
					if len(n.Args) > 0 {
						if v, ok := resolve(dir, n.Args[0]); ok {
							s.named[v] = append(s.named[v], at(p.rel, n.Pos()))
						}
					}
				}
			case *ast.CompositeLit:
				for _, lit := range envFields(n) {
					if v, ok := resolve(dir, lit); ok {
						s.reads[v] = append(s.reads[v], at(p.rel, lit.Pos()))
					}
				}
			case *ast.BinaryExpr:
				// SandboxEnv + "=1"
				if y, ok := stringLit(n.Y); ok && n.Op == token.ADD && strings.HasPrefix(y, "=") {
					if v, ok := resolve(dir, n.X); ok && envName.MatchString(v) {
						s.named[v] = append(s.named[v], at(p.rel, n.Pos()))
					}
				}
			case *ast.BasicLit:
				if v, ok := stringLit(n); ok {
					for _, m := range assignment.FindAllStringSubmatch(v, -1) {
						s.named[m[1]] = append(s.named[m[1]], at(p.rel, n.Pos()))
					}
				}
			}
			return true
		}
		ast.Inspect(p.f, visit)
	}
	return s
}

// catalogReads calls catalog.FromEnv with a getenv that records each name
// asked for and where.
func catalogReads(t *testing.T, root string) map[string][]site {
	t.Helper()
	got := map[string][]site{}
	catalog.FromEnv(func(name string) string {
		_, file, line, _ := runtime.Caller(1)
		rel, ok := strings.CutPrefix(filepath.ToSlash(file), modulePath+"/") // -trimpath
		if !ok {
			r, err := filepath.Rel(root, file)
			if err != nil {
				t.Fatalf("catalog.FromEnv asked from %s, outside %s", file, root)
			}
			rel = filepath.ToSlash(r)
		}
		got[name] = append(got[name], site{file: rel, line: line, test: isTestCode(rel)})
		return ""
	})
	if len(got) == 0 {
		t.Fatal("catalog.FromEnv asked for no variable")
	}
	return got
}

// docRow is where the reference lists a variable.
type docRow struct {
	line    int
	section string // the enclosing ## heading
}

var (
	// envName is what a variable's name looks like.
	envName = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	// docName is a variable in a table's first cell.
	docName = regexp.MustCompile("`([A-Za-z_][A-Za-z0-9_]*)`")
	// assignment is NAME=… in a string: an environment line, or a message
	// that names a variable with its value. One underscore at least, so
	// that "CI=1"-like short words and base64 do not count.
	assignment = regexp.MustCompile(`\b([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+)=`)
	// cellSep splits a table row at pipes that are not escaped.
	cellSep = regexp.MustCompile(`(^|[^\\])\|`)
)

// readDoc returns the variables the reference's tables list. A row lists
// the names in backquotes in its first cell; a table's rows must have as many
// cells as its header, none empty; a variable is listed once.
func readDoc(t *testing.T, path string) map[string]docRow {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows := map[string]docRow{}
	section, width, n := "", 0, 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if h, ok := strings.CutPrefix(line, "## "); ok {
			section = strings.TrimSpace(h)
			continue
		}
		if !strings.HasPrefix(line, "|") {
			width = 0
			continue
		}
		cells := splitRow(line)
		switch {
		case width == 0: // the header
			width = len(cells)
			continue
		case strings.Trim(strings.Join(cells, ""), "-: ") == "": // the rule under it
			continue
		case len(cells) != width:
			t.Errorf("%s:%d: a row of %d cells in a table of %d", docPath, n, len(cells), width)
		}
		for i, c := range cells {
			if strings.TrimSpace(c) == "" {
				t.Errorf("%s:%d: cell %d is empty", docPath, n, i+1)
			}
		}
		names := docName.FindAllStringSubmatch(cells[0], -1)
		if len(names) == 0 {
			t.Errorf("%s:%d: a table row with no `VARIABLE` in its first cell", docPath, n)
		}
		for _, m := range names {
			if prev, dup := rows[m[1]]; dup {
				t.Errorf("%s:%d lists %s again (first at line %d)", docPath, n, m[1], prev.line)
				continue
			}
			rows[m[1]] = docRow{line: n, section: section}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// splitRow returns a table row's cells.
func splitRow(line string) []string {
	line = strings.TrimSuffix(strings.TrimPrefix(line, "|"), "|")
	var cells []string
	for {
		loc := cellSep.FindStringIndex(line)
		if loc == nil {
			return append(cells, strings.TrimSpace(line))
		}
		end := loc[1] - 1 // the pipe
		cells = append(cells, strings.TrimSpace(line[:end]))
		line = line[end+1:]
	}
}

// envFunc reports whether a function of this name reads the environment:
// getenv and lookupEnv in any case (os.Getenv, a getenv parameter), and
// envOr… (a read with a default).
func envFunc(name string) bool {
	switch strings.ToLower(name) {
	case "getenv", "lookupenv":
		return true
	}
	return strings.HasPrefix(strings.ToLower(name), "envor")
}

// envNamed reports whether a const or var of this name holds a variable's name.
func envNamed(name string) bool {
	return strings.HasSuffix(name, "Env") || len(name) > 3 && strings.HasPrefix(name, "Env") && name[3] >= 'A' && name[3] <= 'Z'
}

// calledName is the name of the function or method fun calls.
func calledName(fun ast.Expr) string {
	switch f := fun.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// nameArg is the argument of an environment read that names the variable:
// the first that is not the getenv function itself (envOr(getenv, key, def)).
func nameArg(call *ast.CallExpr) ast.Expr {
	for _, a := range call.Args {
		if envFunc(calledName(a)) {
			continue
		}
		return a
	}
	return nil
}

// envFields returns, for a literal slice or array of anonymous structs, the
// expressions that fill a string field whose name contains "env".
func envFields(lit *ast.CompositeLit) []ast.Expr {
	arr, ok := lit.Type.(*ast.ArrayType)
	if !ok {
		return nil
	}
	st, ok := arr.Elt.(*ast.StructType)
	if !ok {
		return nil
	}
	field, index, i := "", -1, 0
	for _, f := range st.Fields.List {
		for _, id := range f.Names {
			if typ, ok := f.Type.(*ast.Ident); ok && typ.Name == "string" && strings.Contains(strings.ToLower(id.Name), "env") {
				field, index = id.Name, i
			}
			i++
		}
	}
	if index < 0 {
		return nil
	}
	var out []ast.Expr
	for _, e := range lit.Elts {
		el, ok := e.(*ast.CompositeLit)
		if !ok {
			continue
		}
		for j, v := range el.Elts {
			if kv, ok := v.(*ast.KeyValueExpr); ok {
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name == field {
					out = append(out, kv.Value)
				}
			} else if j == index {
				out = append(out, v)
			}
		}
	}
	return out
}

// stringsIn returns the string literals of a value: itself, or the elements
// and values of a composite literal.
func stringsIn(e ast.Expr) []*ast.BasicLit {
	switch e := e.(type) {
	case *ast.BasicLit:
		return []*ast.BasicLit{e}
	case *ast.CompositeLit:
		var out []*ast.BasicLit
		for _, el := range e.Elts {
			if kv, ok := el.(*ast.KeyValueExpr); ok {
				el = kv.Value
			}
			out = append(out, stringsIn(el)...)
		}
		return out
	}
	return nil
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

// isTestCode reports whether a file is a test, or part of a test helper
// package (internal/redistest, providers/providertest).
func isTestCode(rel string) bool {
	return strings.HasSuffix(rel, "_test.go") || strings.HasSuffix(pathBase(pathDir(rel)), "test")
}

func pathDir(rel string) string  { return filepath.ToSlash(filepath.Dir(rel)) }
func pathBase(dir string) string { return filepath.Base(dir) }

func list(sites []site) string {
	var out []string
	for _, s := range sites {
		out = append(out, s.String())
	}
	slices.Sort(out)
	return strings.Join(slices.Compact(out), ", ")
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
