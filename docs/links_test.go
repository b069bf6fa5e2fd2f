package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"unicode"
)

// pages are the Markdown pages a reader follows links through: the README
// and every page of docs/.
func pages(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	names, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range append(names, filepath.Join(root, "README.md")) {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, name)
		out[filepath.ToSlash(rel)] = string(b)
	}
	if len(out) < 10 {
		t.Fatalf("found %d pages; the README's reference is in docs/", len(out))
	}
	return out
}

var (
	fence     = regexp.MustCompile("(?ms)^\\s*```.*?^\\s*```")
	mdLink    = regexp.MustCompile(`!?\[[^\]]*\]\(([^)\s]+)\)`)
	htmlID    = regexp.MustCompile(`<a id="([^"]+)"></a>`)
	heading   = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *$`)
	codeSpans = regexp.MustCompile("`[^`\n]*`")
)

// anchors are the fragments GitHub gives a page: one per heading (its slug,
// numbered when repeated) and one per <a id>.
func anchors(text string) map[string]bool {
	text = fence.ReplaceAllString(text, "")
	out := map[string]bool{}
	seen := map[string]int{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		s := slug(m[1])
		if n := seen[s]; n > 0 {
			out[s+"-"+strconv.Itoa(n)] = true
		} else {
			out[s] = true
		}
		seen[s]++
	}
	for _, m := range htmlID.FindAllStringSubmatch(text, -1) {
		out[m[1]] = true
	}
	return out
}

// slug is GitHub's: lower case, punctuation dropped (hyphens and
// underscores kept), spaces to hyphens.
func slug(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(h) {
		switch {
		case r == ' ':
			b.WriteByte('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Every relative link of the README and the docs pages leads to a file of
// the repository, and every fragment to a heading or anchor of its page:
// pages moved out of the README must not leave links pointing at nothing.
func TestLinksResolve(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	all := pages(t, root)
	for page, text := range all {
		prose := fence.ReplaceAllString(text, "")
		prose = codeSpans.ReplaceAllString(prose, "")
		for _, m := range mdLink.FindAllStringSubmatch(prose, -1) {
			target := m[1]
			if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
				continue
			}
			file, frag, _ := strings.Cut(target, "#")
			dest := page
			if file != "" {
				dest = filepath.ToSlash(filepath.Join(filepath.Dir(page), file))
				if strings.HasPrefix(dest, "../") {
					t.Errorf("%s links %s, outside the repository", page, target)
					continue
				}
				if _, err := os.Stat(filepath.Join(root, dest)); err != nil {
					t.Errorf("%s links %s: no such file %s", page, target, dest)
					continue
				}
			}
			if frag == "" {
				continue
			}
			destText, ok := all[dest]
			if !ok {
				b, err := os.ReadFile(filepath.Join(root, dest))
				if err != nil {
					t.Errorf("%s links %s: %v", page, target, err)
					continue
				}
				destText = string(b)
			}
			if !anchors(destText)[frag] {
				t.Errorf("%s links %s: %s has no heading or anchor %q", page, target, dest, frag)
			}
		}
	}
}

// A problem's type is README.md's address with an anchor (kept from where the
// table was first published: clients compare the URI), and its row is in
// docs/API.md, so every type the API answers with has both the README's
// anchor and API.md's row (the URIs are in internal/api: problemBase + "name").
func TestProblemTypesHaveTheirRow(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	api, err := os.ReadFile(filepath.Join(root, "docs", "API.md"))
	if err != nil {
		t.Fatal(err)
	}
	ids := anchors(string(api))
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	front := anchors(string(readme))
	base := regexp.MustCompile(`problemBase\s*=\s*"([^"]+)"`)
	use := regexp.MustCompile(`problemBase \+ "([a-z-]+)"`)
	files, _ := filepath.Glob(filepath.Join(root, "internal", "api", "*.go"))
	found := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if m := base.FindSubmatch(b); m != nil && !strings.HasSuffix(string(m[1]), "/blob/main/README.md#problem-") {
			t.Errorf("problemBase is %s; the problem types keep the README's address clients already compare", m[1])
		}
		for _, m := range use.FindAllSubmatch(b, -1) {
			found++
			if !ids["problem-"+string(m[1])] {
				t.Errorf("%s answers the problem type problem-%s, which docs/API.md has no row (anchor) for", filepath.Base(f), m[1])
			}
			if !front["problem-"+string(m[1])] {
				t.Errorf("%s answers the problem type problem-%s, whose README anchor is missing: its URI would lead nowhere", filepath.Base(f), m[1])
			}
		}
	}
	if found < 5 {
		t.Fatalf("found %d problem types in internal/api; the scan is not reading them", found)
	}
}
