package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/refundq/refundq/internal/redistest"
	"github.com/refundq/refundq/internal/store"
)

// The README is the front door; the reference moved to docs/. The tests
// here hold the commands of every page as readme_test.go holds the first
// hour's: each sh block is run by a test or named below with what runs it
// instead, and every refundctl command and flag a page shows exists.

// docExample is a section whose sh blocks TestDocsExamples runs, in a
// directory of its own, as a reader pastes them.
type docExample struct {
	page, heading string
	// files are written before the commands run: a file name, and the info
	// string of the section's fenced block that holds it (the file a reader
	// saves from the page).
	files map[string]string
}

var docExamples = []docExample{
	{page: "README.md", heading: "### The batch script author: `refundctl bulk`"},
	{page: "docs/ENQUEUE.md", heading: "## Bulk files", files: map[string]string{"refunds.csv": "csv"}},
}

// notRunHere is every other section with sh blocks, and what runs its
// commands instead, or why nothing can. A new sh block fails
// TestEveryDocsBlockIsRun until it is in docExamples or here.
var notRunHere = map[string]string{
	"README.md ## The two commands": "TestDemo runs the demo (runDemo, what refundctl demo runs); make test is the suite itself",
	"README.md ## The first hour":   "TestReadmeFirstHour runs it line by line",
	"README.md ### The operator: workers and the review list": "a worker with a live provider key; the first hour runs the " +
		"same binaries and commands against the sandbox",
	"docs/OPERATING.md ## Running workers": "a worker with a live provider key, as the README's operator section",
	"docs/OPERATING.md ## Metrics, health and alerts": "needs a running worker and API, and promtool; worker and internal/api " +
		"tests scrape /metrics, make deploy-check runs the rules' tests",
	"docs/API.md # The HTTP API (`refund-api`)":                           "refund-api in the foreground; internal/api's tests serve every route",
	"docs/TRACING.md # Tracing":                                           "needs an OTLP collector; internal/tracing's TestSetupExportsToTheCollector runs one",
	"docs/SPEED.md # Speed":                                               "make bench: minutes of measuring, by hand; its figures are the page",
	"docs/RELIABILITY.md ## The large runs (by hand)":                     "make chaos-large, chaos-quirks: tens of minutes, by hand",
	"docs/RELIABILITY.md ## The small run (every CI run)":                 "make test runs it (make chaos)",
	"docs/RELIABILITY.md ## Sentinel failover (by hand: `make sentinel`)": "make sentinel: minutes of failovers, by hand",
}

// docPages are the README and every docs/ page, by path from the root.
func docPages(t *testing.T) map[string]string {
	t.Helper()
	root := repoRoot(t)
	names, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	out := map[string]string{"README.md": readme(t)}
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out["docs/"+filepath.Base(name)] = string(b)
	}
	return out
}

var mdHeading = regexp.MustCompile(`^(#{1,6}) `)

// sectionOf returns text from the line heading (as written: "## Bulk files")
// to the next heading of its level or above; lines in fenced blocks are
// never headings (a shell comment is not one).
func sectionOf(text, heading string) (string, bool) {
	lines := strings.Split(text, "\n")
	level, start, in := 0, -1, false
	for i, line := range lines {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			in = !in
			continue
		}
		m := mdHeading.FindStringSubmatch(line)
		if in || m == nil {
			continue
		}
		if start >= 0 && len(m[1]) <= level {
			return strings.Join(lines[start:i], "\n"), true
		}
		if start < 0 && line == heading {
			level, start = len(m[1]), i
		}
	}
	if start < 0 {
		return "", false
	}
	return strings.Join(lines[start:], "\n"), true
}

// fencedBlock is one fenced block of a page, under its nearest heading.
type fencedBlock struct {
	heading, info, body string
}

func fencedBlocks(text string) []fencedBlock {
	var out []fencedBlock
	heading, in := "", false
	var cur fencedBlock
	var body []string
	for _, line := range strings.Split(text, "\n") {
		if trimmed := strings.TrimSpace(line); strings.HasPrefix(trimmed, "```") {
			if !in {
				cur, body = fencedBlock{heading: heading, info: strings.TrimPrefix(trimmed, "```")}, nil
			} else {
				cur.body = strings.Join(body, "\n") + "\n"
				out = append(out, cur)
			}
			in = !in
			continue
		}
		if in {
			body = append(body, line)
		} else if mdHeading.MatchString(line) {
			heading = line
		}
	}
	return out
}

// shSteps reads the commands of a section: every line of its sh blocks, a
// trailing backslash joining lines, "  # " starting a comment.
func shSteps(section string) []step {
	var steps []step
	for _, b := range fencedBlocks(section) {
		if b.info != "sh" {
			continue
		}
		pending := ""
		for _, line := range strings.Split(strings.TrimSuffix(b.body, "\n"), "\n") {
			if strings.HasSuffix(line, `\`) {
				pending += strings.TrimSuffix(line, `\`) + " "
				continue
			}
			line, pending = pending+line, ""
			cmd, comment := line, ""
			if i := strings.Index(line, "  # "); i >= 0 {
				cmd, comment = line[:i], line[i+4:]
			}
			cmd = strings.TrimSpace(cmd)
			if cmd == "" || strings.HasPrefix(cmd, "#") {
				continue
			}
			s := step{cmd: cmd, comment: comment}
			if strings.HasSuffix(cmd, "&") && !strings.HasSuffix(cmd, "&&") {
				s.background = true
			}
			if m := exitNote.FindStringSubmatch(comment); m != nil {
				s.exit, _ = strconv.Atoi(m[1])
			}
			steps = append(steps, s)
		}
	}
	return steps
}

// Every sh block of the README and the docs pages is run by a test, or
// named in notRunHere with what runs its commands instead.
func TestEveryDocsBlockIsRun(t *testing.T) {
	seen := map[string]bool{}
	for page, text := range docPages(t) {
		for _, b := range fencedBlocks(text) {
			if b.info != "sh" {
				continue
			}
			key := page + " " + b.heading
			seen[key] = true
			if _, ok := notRunHere[key]; ok {
				continue
			}
			run := false
			for _, ex := range docExamples {
				run = run || ex.page == page && ex.heading == b.heading
			}
			if !run {
				t.Errorf("%s, %q: an sh block no test runs; add its section to docExamples, or to notRunHere with what runs it", page, b.heading)
			}
		}
	}
	for key := range notRunHere {
		if !seen[key] {
			t.Errorf("notRunHere names %q, which has no sh block any more", key)
		}
	}
	for _, ex := range docExamples {
		if !seen[ex.page+" "+ex.heading] {
			t.Errorf("docExamples runs %s %q, which has no sh block", ex.page, ex.heading)
		}
	}
}

// The runnable examples of the pages, each in a directory of its own with
// bin/ beside it, against the built binaries and a real Redis, as
// TestReadmeFirstHour runs the walk-through.
func TestDocsExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs the pages' examples")
	}
	for _, tool := range []string{"bash", "make"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skip("no " + tool)
		}
	}
	pages := docPages(t)
	env := redistest.New(t)
	dir := t.TempDir()
	sh := startShell(t, dir, append(os.Environ(),
		fmt.Sprintf("REDIS_URL=redis://%s/%d", redistest.Addr(), redistest.DB()),
		"REFUNDQ_PREFIX="+env.Prefix, "REFUNDQ_QUEUE="+env.Queue,
		"PATH="+os.Getenv("PATH")+":/usr/local/go/bin"))
	n := 0
	do := func(cmd string, timeout time.Duration) (string, int) {
		n++
		return sh.run(t, n, cmd, timeout)
	}
	if out, code := do(fmt.Sprintf(`command make -s -C %q BINDIR="$PWD/bin" build`, repoRoot(t)), 5*time.Minute); code != 0 {
		t.Fatalf("make build: %d\n%s", code, out)
	}
	for i, ex := range docExamples {
		section, ok := sectionOf(pages[ex.page], ex.heading)
		if !ok {
			t.Fatalf("%s has no section %q", ex.page, ex.heading)
		}
		sub := filepath.Join(dir, fmt.Sprintf("example-%d", i))
		if err := os.MkdirAll(sub, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join(dir, "bin"), filepath.Join(sub, "bin")); err != nil {
			t.Fatal(err)
		}
		for name, info := range ex.files {
			body := ""
			for _, b := range fencedBlocks(section) {
				if b.info == info {
					body = b.body
				}
			}
			if body == "" {
				t.Fatalf("%s %q has no %s block for %s", ex.page, ex.heading, info, name)
			}
			if err := os.WriteFile(filepath.Join(sub, name), []byte(body), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if _, code := do(fmt.Sprintf("cd %q", sub), 5*time.Second); code != 0 {
			t.Fatal("cannot enter", sub)
		}
		steps := shSteps(section)
		if len(steps) == 0 {
			t.Fatalf("%s %q: no commands", ex.page, ex.heading)
		}
		for _, s := range steps {
			out, code := do(s.cmd, time.Minute)
			if code != s.exit {
				t.Fatalf("%s %q: %q exited %d, want %d\n%s\n--- the session so far\n%s", ex.page, ex.heading, s.cmd, code, s.exit, out, sh.log.String())
			}
			if s.background {
				awaitFiles(t, sub, s.cmd)
			}
		}
	}
	// Both bulk examples enqueue the row they show.
	if rec, err := store.New(env.Client, env.Prefix).Get(context.Background(), "rf_1001"); err != nil || rec.State != store.Queued {
		t.Errorf("rf_1001: %s (%v); the bulk examples enqueue it", rec.State, err)
	}
}

var (
	mdFence  = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")
	mdSpan   = regexp.MustCompile("`[^`\n]+`")
	ctlCall  = regexp.MustCompile(`(?:^|[\s/])refundctl((?: +[^ ]+)*)`)
	goRunCmd = regexp.MustCompile(`go run \./cmd/\S+(?: \S+)?`)
)

// commandTexts are the places a page shows a command: each line of its sh
// blocks (without the comment) and each code span of its prose and tables.
func commandTexts(text string) []string {
	var out []string
	for _, b := range fencedBlocks(text) {
		if b.info != "sh" {
			continue
		}
		for _, line := range strings.Split(b.body, "\n") {
			if i := strings.Index(line, "  # "); i >= 0 {
				line = line[:i]
			}
			if !strings.HasPrefix(strings.TrimSpace(line), "#") {
				out = append(out, line)
			}
		}
	}
	prose := mdFence.ReplaceAllString(text, "")
	for _, span := range mdSpan.FindAllString(prose, -1) {
		out = append(out, strings.Trim(span, "`"))
	}
	// A table headed "| command |" (docs/CLI.md's) names refundctl's
	// commands without the program's name: its first cells are commands too.
	commands := false
	for _, line := range strings.Split(prose, "\n") {
		switch {
		case !strings.HasPrefix(line, "|"):
			commands = false
		case strings.HasPrefix(line, "| command |"):
			commands = true
		case commands:
			if span := mdSpan.FindString(line); span != "" {
				out = append(out, "refundctl "+strings.Trim(span, "`"))
			}
		}
	}
	return out
}

// ctlWords splits what follows "refundctl" into words up to the end of the
// command (a pipe, a redirect, && or ;), with [optional] brackets dropped and
// alternatives (--json\|--csv) apart.
func ctlWords(rest string) []string {
	var out []string
	for _, w := range strings.Fields(rest) {
		if w == "|" || w == "&&" || w == ";" || w == "&" || strings.HasPrefix(w, ">") || strings.HasPrefix(w, "2>") {
			break
		}
		w = strings.Trim(w, "[]")
		for _, alt := range strings.Split(strings.ReplaceAll(w, `\|`, "|"), "|") {
			if alt != "" {
				out = append(out, alt)
			}
		}
	}
	return out
}

// hasFlag reports whether c takes the flag word (--name, --name=value, -x).
func hasFlag(c *cobra.Command, word string) bool {
	name, _, _ := strings.Cut(strings.TrimLeft(word, "-"), "=")
	if name == "help" || (name == "version" && !c.HasParent()) {
		return true
	}
	if !strings.HasPrefix(word, "--") {
		return c.Flags().ShorthandLookup(name) != nil || c.InheritedFlags().ShorthandLookup(name) != nil
	}
	return c.Flags().Lookup(name) != nil || c.InheritedFlags().Lookup(name) != nil
}

// Every refundctl command a page shows exists with every flag it gives it,
// and long-lived processes run from bin/: the pages cannot drift from the
// CLI, wherever a command moves.
func TestDocsNameRealCommandsAndFlags(t *testing.T) {
	root := newRoot(strings.NewReader(""), io.Discard, io.Discard)
	checked := 0
	pages := docPages(t)
	names := make([]string, 0, len(pages))
	for page := range pages {
		names = append(names, page)
	}
	sort.Strings(names)
	for _, page := range names {
		for _, text := range commandTexts(pages[page]) {
			for _, m := range goRunCmd.FindAllString(text, -1) {
				// The harnesses (chaos, bench) run to an end and report; a
				// worker, the API or the sandbox must get SIGTERM and show
				// its real exit status, which go run swallows.
				harness := strings.HasPrefix(m, "go run ./cmd/refund-chaos") || strings.HasPrefix(m, "go run ./cmd/refund-bench")
				if m != "go run ./cmd/refundctl demo" && !harness {
					t.Errorf("%s runs %q; long-lived processes run from bin/ (make build)", page, m)
				}
			}
			for _, m := range ctlCall.FindAllStringSubmatch(text, -1) {
				words := ctlWords(m[1])
				if len(words) > 0 && !strings.HasPrefix(words[0], "-") && strings.ToLower(words[0]) != words[0] {
					continue // a placeholder: refundctl COMMAND --help
				}
				c, args, err := root.Find(words)
				if err == nil && c == root && len(args) > 0 && !strings.HasPrefix(args[0], "-") {
					err = fmt.Errorf("no command %q", args[0]) // the root takes no arguments, so Find says nothing
				}
				if err != nil {
					t.Errorf("%s shows %q: %v", page, "refundctl"+m[1], err)
					continue
				}
				checked++
				for _, w := range words {
					if strings.HasPrefix(w, "-") && w != "-" && !hasFlag(c, w) {
						t.Errorf("%s shows %q: %s has no flag %s", page, "refundctl"+m[1], c.CommandPath(), w)
					}
				}
			}
		}
	}
	if checked < 30 {
		t.Fatalf("checked %d refundctl commands in the pages; the scan is not finding them", checked)
	}
}
