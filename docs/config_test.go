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
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
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
	"PATH":              "cmd/refundctl's README test passes it on to the shell it runs, with Go's bin directory added",
	"OTEL_SERVICE_NAME": "read by the OpenTelemetry SDK; internal/tracing's test sets it for the child process it starts",
	"DEBIAN_FRONTEND":   "read by apt-get and debconf; refundctl dev-redis sets it for the apt-get that installs redis-server",
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
