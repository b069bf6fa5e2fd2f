package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/refundq/refundq/internal/durability"
	"github.com/refundq/refundq/internal/rediscfg"
	"github.com/refundq/refundq/internal/redisproc"
	"github.com/refundq/refundq/internal/store"
)

// repoRoot is the module's root, two levels above this package.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func readme(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// walkthroughEnv is this process's environment as a newcomer's shell has
// it: without the Redis check's overrides, which make unit sets for every
// test, and without a REDIS_URL, which the walk-through sources itself.
func walkthroughEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		switch k, _, _ := strings.Cut(kv, "="); k {
		case durability.SkipEnv, durability.AcceptLossEnv, "REDIS_URL", "REFUNDQ_PREFIX", "REFUNDQ_QUEUE":
		default:
			env = append(env, kv)
		}
	}
	return env
}

// step is one command of the README's walk-through.
type step struct {
	cmd        string // as written, without its comment
	comment    string
	background bool // ends in &: a long-lived process
	exit       int  // the exit status the comment announces ("exit 1"), else 0
}

var exitNote = regexp.MustCompile(`\bexit (\d)\b`)

// firstHour reads the commands of the README's "The first hour" section:
// every line of its sh blocks, a trailing backslash joining lines.
func firstHour(t *testing.T, text string) []step {
	t.Helper()
	section, ok := sectionOf(text, "## The first hour")
	if !ok {
		t.Fatal(`README.md has no "## The first hour" section`)
	}
	return shSteps(section)
}

// shell is one bash session fed the walk-through a command at a time.
type shell struct {
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
	log   strings.Builder
}

func startShell(t *testing.T, dir string, env []string) *shell {
	t.Helper()
	c := exec.Command("bash", "--noprofile", "--norc")
	c.Dir, c.Env = dir, env
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	pr, pw := io.Pipe()
	c.Stdout, c.Stderr = pw, pw
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	sh := &shell{cmd: c, in: in, lines: make(chan string, 1000)}
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64*1024), 4<<20)
		for sc.Scan() {
			sh.lines <- sc.Text()
		}
		close(sh.lines)
	}()
	t.Cleanup(func() {
		// Whatever the walk-through left running (it stops its own jobs
		// when it passes) goes with the session's process group.
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		pw.Close()
		c.Wait()
	})
	return sh
}

// run sends one command and returns its output and exit status.
func (sh *shell) run(t *testing.T, n int, command string, timeout time.Duration) (string, int) {
	t.Helper()
	marker := fmt.Sprintf("__step_%d_done__", n)
	if _, err := fmt.Fprintf(sh.in, "%s\necho \"%s $?\"\n", command, marker); err != nil {
		t.Fatalf("shell gone: %v", err)
	}
	var out strings.Builder
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-sh.lines:
			if !ok {
				t.Fatalf("the shell ended during %q:\n%s", command, out.String())
			}
			if rest, ok := strings.CutPrefix(line, marker+" "); ok {
				code, _ := strconv.Atoi(rest)
				sh.log.WriteString("$ " + command + "\n" + out.String())
				return out.String(), code
			}
			out.WriteString(line + "\n")
		case <-deadline:
			t.Fatalf("%q did not finish in %s:\n%s", command, timeout, out.String())
		}
	}
}

var redirect = regexp.MustCompile(`(?:2?>|--env-file)\s*(\S+)`)

// awaitFiles waits until every file a background command writes to is
// there and not empty, as a person waits for a process to come up.
func awaitFiles(t *testing.T, dir, command string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, m := range redirect.FindAllStringSubmatch(command, -1) {
		path := filepath.Join(dir, m[1])
		for {
			if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%q wrote nothing to %s in 30 s", command, m[1])
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// The README's first hour, run line by line as written, in one bash
// session: make build, then the built binaries against the dev Redis the
// walk-through starts and the sandbox, with none of the Redis check's
// overrides in the environment (make unit sets them for every other test).
// It cannot drift from the CLI (findings 3 and 9 of issue 11).
func TestReadmeFirstHour(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binaries and runs the walk-through")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	if _, err := exec.LookPath("make"); err != nil {
		t.Skip("no make")
	}
	if _, err := redisproc.Binary(); err != nil {
		t.Skip(err) // the walk-through starts its own Redis
	}
	steps := firstHour(t, readme(t))
	if len(steps) < 15 {
		t.Fatalf("the walk-through has %d commands", len(steps))
	}
	dir := t.TempDir()
	vars := append(walkthroughEnv(),
		"REFUNDQ_DEV_REDIS_LISTEN=127.0.0.1:0", // any free port; redis.env has it
		"REFUNDQ_SANDBOX_LISTEN=127.0.0.1:0",   // any free port; the env file has it
		"PATH="+os.Getenv("PATH")+":/usr/local/go/bin")
	sh := startShell(t, dir, vars)
	// The README runs from the repository's root; here make builds into this
	// test's own directory, so the binaries are these sources'.
	if _, code := sh.run(t, 0, fmt.Sprintf(`make() { command make -s -C %q BINDIR="$PWD/bin" "$@"; }`, repoRoot(t)), time.Second*5); code != 0 {
		t.Fatal("cannot define make")
	}
	sawGuesses := false
	for i, s := range steps {
		timeout := 60 * time.Second
		if strings.HasPrefix(s.cmd, "make ") {
			timeout = 5 * time.Minute
		}
		isGuesses := strings.HasPrefix(s.cmd, "bin/refundctl guesses")
		if isGuesses {
			// The walk-through waits for some of its refunds only; a
			// person reaches this line later. Every refund final first, so
			// each answer that could confirm or refute a guess is in.
			awaitAllFinal(t, devStore(t, dir))
		}
		out, code := sh.run(t, i+1, s.cmd, timeout)
		if code != s.exit {
			t.Fatalf("README step %d: %q exited %d, want %d\n%s\n--- the session so far\n%s", i+1, s.cmd, code, s.exit, out, sh.log.String())
		}
		if s.background {
			awaitFiles(t, dir, s.cmd)
		}
		if isGuesses {
			sawGuesses = true
			checkGuesses(t, out)
		}
	}
	if !sawGuesses {
		t.Errorf("the walk-through no longer runs bin/refundctl guesses: nothing shows that the sandbox's answers refute none of refundq's guesses")
	}

	// Nothing the walk-through sourced lifted the Redis check.
	if out, _ := sh.run(t, len(steps)+1, `echo "[$`+durability.SkipEnv+`][$`+durability.AcceptLossEnv+`]"`, 5*time.Second); strings.TrimSpace(out) != "[][]" {
		t.Errorf("the walk-through's shell has the Redis check's overrides set: %s", out)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "worker.log")); bytes.Contains(b, []byte(durability.SkipEnv)) || bytes.Contains(b, []byte(durability.AcceptLossEnv)) {
		t.Errorf("the worker ran with the Redis check lifted:\n%s", b)
	}

	// What the comments say became of each refund, read from what the dev
	// Redis kept on disk: the walk-through stopped it.
	kept, err := redisproc.Start(filepath.Join(dir, ".dev-redis"), redisproc.Shipped)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kept.Stop)
	rdb := kept.Client()
	t.Cleanup(func() { rdb.Close() })
	st := store.New(rdb, "refundq:")
	ctx := context.Background()
	for id, want := range map[string]store.State{
		"rf_1": store.Succeeded, "rf_2": store.Succeeded, "rf_3": store.Succeeded,
		"rf_10": store.Succeeded, "rf_11": store.Succeeded, "rf_12": store.Succeeded, "rf_13": store.Failed,
	} {
		rec, err := st.Get(ctx, id)
		if err != nil || rec.State != want {
			t.Errorf("%s: %s (%v); the README says %s", id, rec.State, err, want)
		}
	}
	hist, _ := st.History(ctx, "rf_2")
	sawPending := false
	for _, e := range hist {
		sawPending = sawPending || e.State == store.Pending
	}
	if !sawPending {
		t.Errorf("rf_2 was never pending: %+v", hist)
	}
	if _, err := st.Get(ctx, "rf_14"); err == nil {
		t.Errorf("rf_14, the bad row, was enqueued")
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "sandbox.txt")); !strings.Contains(string(b), "txn-fat-1001") {
		t.Errorf("sandbox.txt does not show Fatora's transaction id:\n%s", b)
	}
}

// devStore reads the walk-through's refunds from its dev Redis while it
// runs, at the address the walk-through's redis.env holds.
func devStore(t *testing.T, dir string) *store.Store {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "redis.env"))
	if err != nil {
		t.Fatal(err)
	}
	_, url, ok := strings.Cut(strings.TrimSpace(string(b)), "export REDIS_URL=")
	if !ok {
		t.Fatalf("redis.env holds no REDIS_URL: %q", b)
	}
	cfg, err := rediscfg.Parse(url)
	if err != nil {
		t.Fatal(err)
	}
	rdb := cfg.NewClient()
	t.Cleanup(func() { rdb.Close() })
	return store.New(rdb, "refundq:")
}

// awaitAllFinal waits until every refund in the store is final.
func awaitAllFinal(t *testing.T, st *store.Store) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		recs, err := st.List(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		var open []string
		for _, r := range recs {
			if !r.State.Final() {
				open = append(open, r.RefundID+" "+string(r.State))
			}
		}
		if len(open) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("refunds not final after 60 s: %s", strings.Join(open, ", "))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

var guessLine = regexp.MustCompile(`(?m)^  (\S+)  (CONFIRMED|REFUTED|UNCONFIRMED)$`)

// checkGuesses reads refundctl guesses after the walk-through: the sandbox
// stands in for the providers, so its answers must refute none of the
// adapters' guesses (a refuted one keeps look-ups unknown and sends lost
// answers to needs_review), and those the walk-through's refunds can show
// are confirmed: Moyasar PG's by rf_1, ecomCharge's by rf_12, Fatora's
// (completed) by rf_10.
func checkGuesses(t *testing.T, out string) {
	t.Helper()
	verdict := map[string]string{}
	var wrong []string
	for _, m := range guessLine.FindAllStringSubmatch(out, -1) {
		verdict[m[1]] = m[2]
		if m[2] == "REFUTED" {
			wrong = append(wrong, m[1]+" refuted")
		}
	}
	for _, g := range []string{"moyasarpg.refund_id", "ecomcharge.tracking_id", "ecomcharge.tracking_lookup", "fatora.verify_refund_status"} {
		if verdict[g] != "CONFIRMED" {
			wrong = append(wrong, fmt.Sprintf("%s %q, want CONFIRMED", g, verdict[g]))
		}
	}
	if len(wrong) > 0 {
		t.Errorf("after the walk-through: %s\n%s", strings.Join(wrong, "; "), out)
	}
}

// The README names no path outside the repository and no flag refundctl
// does not have; long-lived processes run as binaries, go run is kept for
// the demo alone (finding 9).
func TestReadmeStaysInsideTheRepository(t *testing.T) {
	text := readme(t)
	if strings.Contains(text, "../") {
		t.Errorf("README.md points outside the repository (../)")
	}
	if strings.Contains(text, "refundctl --check-config") {
		t.Errorf("README.md gives --check-config to refundctl itself; it is a flag of enqueue and bulk")
	}
	for _, m := range regexp.MustCompile(`go run \./cmd/\S+(?: \S+)?`).FindAllString(text, -1) {
		if m != "go run ./cmd/refundctl demo" {
			t.Errorf("README.md runs %q; long-lived processes run from bin/ (make build)", m)
		}
	}
	// Every refundctl command the README names exists.
	root := newRoot(strings.NewReader(""), io.Discard, io.Discard)
	for _, m := range regexp.MustCompile("refundctl ([a-z]+(?:-[a-z]+)*)").FindAllStringSubmatch(text, -1) {
		if c, _, err := root.Find([]string{m[1]}); err != nil || c == root {
			t.Errorf("README.md names refundctl %s, which does not exist", m[1])
		}
	}
}

// go.mod lists as direct every module the code imports, and nothing it
// does not (finding 11); CI runs the same check (make tidy-check).
func TestGoModIsTidy(t *testing.T) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
		if _, err := os.Stat(goBin); err != nil {
			t.Skip("no go command")
		}
	}
	c := exec.Command(goBin, "mod", "tidy", "-diff")
	c.Dir = repoRoot(t)
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("go mod tidy -diff: %v (run go mod tidy and commit the result)\n%s", err, out)
	}
}

// The paragraph that says what `make build` makes (README.md, or a page
// in docs/) names every command in cmd/: go build ./cmd/... builds them
// all, and a list that names fewer told readers of three where six come.
func TestMakeBuildNamesEveryCommand(t *testing.T) {
	root := repoRoot(t)
	dirs, err := os.ReadDir(filepath.Join(root, "cmd"))
	if err != nil {
		t.Fatal(err)
	}
	pages, _ := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	var para string
	for _, p := range append([]string{filepath.Join(root, "README.md")}, pages...) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, pa := range strings.Split(string(b), "\n\n") {
			if strings.HasPrefix(pa, "`make build` ") {
				para = pa
			}
		}
	}
	if para == "" {
		t.Fatal("no paragraph starting with `make build` says what it makes (README.md, docs/*.md)")
	}
	for _, d := range dirs {
		if d.IsDir() && !strings.Contains(para, "`"+d.Name()+"`") {
			t.Errorf("the `make build` paragraph does not name %s, which make build builds:\n%s", d.Name(), para)
		}
	}
}
