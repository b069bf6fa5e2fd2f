package docs_test

import (
	"go/ast"
	"go/build"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// providerNames stand for <name> in ARCHITECTURE.md: a path with <name> must
// exist for every provider, which also holds each to the package shape.
var providerNames = []string{"bbmsl", "ecartpay", "ecomcharge", "fatora", "moyasarpg"}

// goPackage is what ARCHITECTURE.md may name of one package: its
// non-test code only, since the page is about what ships.
type goPackage struct {
	dir     string
	name    string
	imports []string // the module's own, as directories
	decls   map[string]bool
	members map[string]map[string]bool // type → its methods, fields and interface methods
}

func modulePackages(t *testing.T, root string) map[string]*goPackage {
	t.Helper()
	fset := token.NewFileSet()
	pkgs := map[string]*goPackage{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || name == "testdata" || name == "bin") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		// Build constraints as go build reads them: a generator behind
		// //go:build ignore is no package.
		if ok, err := build.Default.MatchFile(filepath.Dir(path), name); err != nil || !ok {
			return err
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		dir := filepath.ToSlash(rel)
		p := pkgs[dir]
		if p == nil {
			p = &goPackage{dir: dir, name: f.Name.Name, decls: map[string]bool{}, members: map[string]map[string]bool{}}
			pkgs[dir] = p
		}
		for _, imp := range f.Imports {
			if own, ok := strings.CutPrefix(strings.Trim(imp.Path.Value, `"`), modulePath+"/"); ok && !slices.Contains(p.imports, own) {
				p.imports = append(p.imports, own)
			}
		}
		for _, decl := range f.Decls {
			switch d := decl.(type) {
			case *ast.FuncDecl:
				if d.Recv == nil {
					p.decls[d.Name.Name] = true
					continue
				}
				p.member(receiver(d.Recv.List[0].Type), d.Name.Name)
			case *ast.GenDecl:
				for _, spec := range d.Specs {
					switch s := spec.(type) {
					case *ast.TypeSpec:
						p.decls[s.Name.Name] = true
						p.typeMembers(s)
					case *ast.ValueSpec:
						for _, id := range s.Names {
							p.decls[id.Name] = true
						}
					}
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 30 {
		t.Fatalf("found %d packages under %s: not the module", len(pkgs), root)
	}
	return pkgs
}

func (p *goPackage) member(typ, name string) {
	if p.members[typ] == nil {
		p.members[typ] = map[string]bool{}
	}
	p.members[typ][name] = true
}

func (p *goPackage) typeMembers(s *ast.TypeSpec) {
	var fields *ast.FieldList
	switch tt := s.Type.(type) {
	case *ast.StructType:
		fields = tt.Fields
	case *ast.InterfaceType:
		fields = tt.Methods
	default:
		return
	}
	for _, f := range fields.List {
		for _, id := range f.Names {
			p.member(s.Name.Name, id.Name)
		}
		if len(f.Names) == 0 { // embedded: its name is the field's
			p.member(s.Name.Name, receiver(f.Type))
		}
	}
}

// receiver is the type name of a receiver or embedded field: T, *T, pkg.T, T[P].
func receiver(e ast.Expr) string {
	switch x := e.(type) {
	case *ast.StarExpr:
		return receiver(x.X)
	case *ast.SelectorExpr:
		return x.Sel.Name
	case *ast.IndexExpr:
		return receiver(x.X)
	case *ast.Ident:
		return x.Name
	}
	return ""
}

// expand turns <name> into each provider's name.
func expand(s string) []string {
	if !strings.Contains(s, "<name>") {
		return []string{s}
	}
	var out []string
	for _, n := range providerNames {
		out = append(out, strings.ReplaceAll(s, "<name>", n))
	}
	return out
}

var (
	identRef = regexp.MustCompile(`^([a-z][a-z0-9]*)((?:\.[A-Za-z_][A-Za-z0-9_]*){1,2})$`)
	pathRef  = regexp.MustCompile(`^[A-Za-z0-9_.<>*-]+(?:/[A-Za-z0-9_.<>*-]+)+/?$`)
)

// names are the words of ARCHITECTURE.md that name code: its code spans, and
// the words of its code blocks.
func names(text string) []string {
	var out []string
	for _, span := range codeSpans.FindAllString(fence.ReplaceAllString(text, ""), -1) {
		out = append(out, strings.Fields(strings.Trim(span, "`"))...)
	}
	for _, block := range fence.FindAllString(text, -1) {
		out = append(out, strings.Fields(block)...)
	}
	for i, w := range out {
		out[i] = strings.Trim(w, "()[],;:\"'")
	}
	return out
}

// ARCHITECTURE.md is the page a new maintainer trusts first: every path it
// names exists, every identifier it names (pkg.Func, pkg.Type.Method) is
// declared in that package, and the packages import as its diagram draws.
func TestArchitectureMatchesTheCode(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "docs", "ARCHITECTURE.md"))
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	pkgs := modulePackages(t, root)
	byName := map[string]*goPackage{}
	for _, p := range pkgs {
		if p.name != "main" {
			byName[filepath.Base(p.dir)] = p
		}
	}

	paths, idents := 0, 0
	for _, w := range names(text) {
		switch {
		case strings.HasPrefix(w, "http") || strings.HasPrefix(w, "/"):
		case pathRef.MatchString(w):
			paths++
			for _, p := range expand(w) {
				if m, _ := filepath.Glob(filepath.Join(root, strings.TrimSuffix(p, "/"))); len(m) == 0 {
					t.Errorf("ARCHITECTURE.md names %s, which does not exist", p)
				}
			}
		case identRef.MatchString(w):
			m := identRef.FindStringSubmatch(w)
			p, ok := byName[m[1]]
			if !ok {
				continue // another module's package (asynq.SkipRetry), or a file name
			}
			idents++
			parts := strings.Split(strings.TrimPrefix(m[2], "."), ".")
			switch {
			case !p.decls[parts[0]]:
				t.Errorf("ARCHITECTURE.md names %s, but %s declares no %s", w, p.dir, parts[0])
			case len(parts) == 2 && !p.members[parts[0]][parts[1]]:
				t.Errorf("ARCHITECTURE.md names %s, but %s.%s has no method or field %s", w, m[1], parts[0], parts[1])
			}
		}
	}
	if paths < 20 || idents < 20 {
		t.Fatalf("checked %d paths and %d identifiers: the page is not being read", paths, idents)
	}

	checkLayers(t, text, pkgs)
}

// checkLayers reads the diagram under "## Packages" (one layer a line,
// "label | packages"; a line without a label goes on with the layer above)
// and holds every package to it: each is drawn once, and imports only
// packages of layers below its own.
func checkLayers(t *testing.T, text string, pkgs map[string]*goPackage) {
	t.Helper()
	at := strings.Index(text, "\n## Packages\n")
	if at < 0 {
		t.Fatal(`ARCHITECTURE.md has no "## Packages" section`)
	}
	block := fence.FindString(text[at:])
	layer := map[string]int{}
	n := -1
	for _, line := range strings.Split(block, "\n") {
		label, list, ok := strings.Cut(line, "|")
		if !ok {
			continue
		}
		if strings.TrimSpace(label) != "" || n < 0 {
			n++
		}
		for _, w := range strings.Fields(list) {
			for _, p := range expand(w) {
				if _, dup := layer[p]; dup {
					t.Errorf("the diagram draws %s twice", p)
				}
				layer[p] = n
			}
		}
	}
	for dir, p := range pkgs {
		l, ok := layer[dir]
		if !ok {
			t.Errorf("the diagram in ARCHITECTURE.md does not draw %s", dir)
			continue
		}
		for _, imp := range p.imports {
			if li, ok := layer[imp]; ok && li <= l {
				t.Errorf("%s imports %s, which the diagram draws on its own line or above it", dir, imp)
			}
		}
	}
	for p := range layer {
		if pkgs[p] == nil {
			t.Errorf("the diagram draws %s, which is not a package of the module", p)
		}
	}
}
