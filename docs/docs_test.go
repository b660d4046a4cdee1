package docs

import (
	"bufio"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode"
)

// TestLinks checks every link in docs/*.md that points into the
// repository: the file or directory exists, a heading anchor exists on the
// linked page, and link text such as `machine.New` or `Machine.Run` names
// a declaration of the linked Go file (see doc.go for the convention).
func TestLinks(t *testing.T) {
	pages, err := filepath.Glob("*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no Markdown pages in docs/ (%v)", err)
	}
	checked := 0
	for _, page := range pages {
		links, err := readLinks(page)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range links {
			if err := check(page, l); err != nil {
				t.Errorf("%s:%d: [%s](%s): %v", page, l.line, l.text, l.target, err)
			}
			checked++
		}
	}
	t.Logf("%d links checked in %d pages", checked, len(pages))
}

// link is one Markdown link or image: [text](target).
type link struct {
	line         int
	text, target string
}

// inlineLink matches [text](target) and ![alt](target); a title after
// the target ("...") is not used in these pages.
var inlineLink = regexp.MustCompile(`!?\[([^\]]*)\]\(([^)\s]+)\)`)

// readLinks returns the links of a page, outside fenced code blocks.
func readLinks(page string) ([]link, error) {
	f, err := os.Open(page)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var links []link
	fenced := false
	s := bufio.NewScanner(f)
	for n := 1; s.Scan(); n++ {
		line := s.Text()
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
			continue
		}
		if fenced {
			continue
		}
		for _, m := range inlineLink.FindAllStringSubmatch(line, -1) {
			links = append(links, link{line: n, text: m[1], target: m[2]})
		}
	}
	return links, s.Err()
}

// declName matches link text naming a declaration: `pkg.Name` or
// `Type.Method`.
var declName = regexp.MustCompile("^`([A-Za-z_][A-Za-z0-9_]*)\\.([A-Za-z_][A-Za-z0-9_]*)`$")

// check verifies one link of page.
func check(page string, l link) error {
	if strings.Contains(l.target, "://") || strings.HasPrefix(l.target, "mailto:") {
		return nil // outside the repository
	}
	path, anchor, _ := strings.Cut(l.target, "#")
	if path == "" {
		path = page // an anchor on this page
	}
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("no such file or directory %s", path)
	}
	if anchor != "" && strings.HasSuffix(path, ".md") {
		headings, err := readHeadings(path)
		if err != nil {
			return err
		}
		if !headings[anchor] {
			return fmt.Errorf("%s has no heading with anchor #%s", path, anchor)
		}
	}
	m := declName.FindStringSubmatch(l.text)
	if m == nil || !strings.HasSuffix(path, ".go") || strings.Trim(l.text, "`") == filepath.Base(path) {
		return nil
	}
	return checkDecl(path, m[1], m[2])
}

// checkDecl reports whether the Go file at path declares qual.name:
// with qual the file's package, a top-level function, type, constant or
// variable; otherwise a method name on type qual.
func checkDecl(path, qual, name string) error {
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		return err
	}
	top, methods := declarations(f)
	if qual == f.Name.Name {
		if !top[name] {
			return fmt.Errorf("%s (package %s) declares no %s", path, qual, name)
		}
		return nil
	}
	if !methods[qual+"."+name] {
		return fmt.Errorf("%s declares no method %s on type %s (and is not package %s)", path, name, qual, qual)
	}
	return nil
}

// declarations returns the names a file declares at top level, and its
// methods as "Type.Method".
func declarations(f *ast.File) (top, methods map[string]bool) {
	top, methods = map[string]bool{}, map[string]bool{}
	for _, d := range f.Decls {
		switch d := d.(type) {
		case *ast.FuncDecl:
			if d.Recv == nil || len(d.Recv.List) == 0 {
				top[d.Name.Name] = true
			} else {
				methods[receiverType(d.Recv.List[0].Type)+"."+d.Name.Name] = true
			}
		case *ast.GenDecl:
			for _, s := range d.Specs {
				switch s := s.(type) {
				case *ast.TypeSpec:
					top[s.Name.Name] = true
				case *ast.ValueSpec:
					for _, n := range s.Names {
						top[n.Name] = true
					}
				}
			}
		}
	}
	return top, methods
}

// receiverType names a method's receiver type: T for T, *T, T[P] or *T[P].
func receiverType(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.StarExpr:
		return receiverType(e.X)
	case *ast.IndexExpr:
		return receiverType(e.X)
	case *ast.IndexListExpr:
		return receiverType(e.X)
	case *ast.Ident:
		return e.Name
	}
	return ""
}

// readHeadings returns the anchors GitHub gives the headings of a page.
func readHeadings(page string) (map[string]bool, error) {
	b, err := os.ReadFile(page)
	if err != nil {
		return nil, err
	}
	anchors := map[string]bool{}
	seen := map[string]int{}
	fenced := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			fenced = !fenced
		}
		if fenced || !strings.HasPrefix(line, "#") {
			continue
		}
		a := slug(strings.TrimLeft(line, "#"))
		if n := seen[a]; n > 0 {
			anchors[fmt.Sprintf("%s-%d", a, n)] = true
		} else {
			anchors[a] = true
		}
		seen[a]++
	}
	return anchors, nil
}

// slug turns a heading into its anchor as GitHub does: lower case, spaces
// to hyphens, punctuation other than hyphens and underscores dropped.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(heading)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	for heading, want := range map[string]string{
		" 8. The run loop":                 "8-the-run-loop",
		" Running on a PVM host (kvm-pvm)": "running-on-a-pvm-host-kvm-pvm",
		" `--stats`: where time goes":      "--stats-where-time-goes",
	} {
		if got := slug(heading); got != want {
			t.Errorf("slug(%q) = %q, want %q", heading, got, want)
		}
	}
}

// TestCheckFindsBrokenLinks makes sure the checker fails where it must.
func TestCheckFindsBrokenLinks(t *testing.T) {
	for _, c := range []struct {
		text, target string
		ok           bool
	}{
		{"`machine.New`", "../vmm/machine/machine.go", true},
		{"`Machine.Run`", "../vmm/machine/run.go", true},
		{"`config.Config`", "../vmm/config/config.go", true},
		{"`kvm.APIVersion`", "../vmm/kvm/system.go", true},
		{"`caps.go`", "../vmm/kvm/caps.go", true},
		{"the run loop", "booting.md#8-the-run-loop", true},
		{"`machine.Nope`", "../vmm/machine/machine.go", false},
		{"`Machine.Run`", "../vmm/machine/machine.go", false},
		{"`kvm.Open`", "../vmm/machine/machine.go", false},
		{"a file", "../no/such/file.go", false},
		{"the run loop", "booting.md#no-such-heading", false},
	} {
		err := check("booting.md", link{text: c.text, target: c.target})
		if (err == nil) != c.ok {
			t.Errorf("[%s](%s): got %v, want ok=%v", c.text, c.target, err, c.ok)
		}
	}
}
