package docs_test

// How the code's reads of environment variables are found: see
// config_test.go's package comment.

import (
	"go/ast"
	"go/parser"
	"go/token"
	"go/types"
	"io/fs"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/refundq/refundq/providers/catalog"
)

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
