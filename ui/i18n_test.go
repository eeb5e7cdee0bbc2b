package ui

import (
	"encoding/json"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The console's string catalogs (assets/i18n/LANG.json) against the
// modules that look strings up: i18n.js explains the rules this test holds
// the code to (a key appears literally in t('…'), tp('…') or tk('…')).

// catalogLanguages are the catalogs the console ships, English first (the
// fallback); i18n.js's LANGUAGES lists the same.
var catalogLanguages = []string{"en", "zh-CN"}

// sameInEveryLanguage are the keys whose Chinese text is rightly the same
// as the English one; any other identical text is an untranslated copy.
var sameInEveryLanguage = map[string]string{
	"nodes.col.cpu": "a column headed CPU is headed CPU in Chinese too",
}

// pluralForms are the CLDR plural categories Intl.PluralRules answers.
var pluralForms = map[string]bool{"zero": true, "one": true, "two": true, "few": true, "many": true, "other": true}

// requiredForms are the forms each language's plural entries must give:
// English says "1 task" and "2 tasks"; Chinese has one form.
var requiredForms = map[string][]string{"en": {"one", "other"}, "zh-CN": {"other"}}

// entry is one catalog text: a string, or plural forms by category.
type entry struct {
	forms map[string]string // "" for a plain string
}

func (e *entry) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		e.forms = map[string]string{"": s}
		return nil
	}
	var m map[string]string
	if err := json.Unmarshal(b, &m); err != nil {
		return fmt.Errorf("want a string or an object of plural forms: %w", err)
	}
	for k := range m {
		if !pluralForms[k] {
			return fmt.Errorf("%q is not a plural category (%v)", k, mapsKeys(pluralForms))
		}
	}
	e.forms = m
	return nil
}

func (e entry) plural() bool { _, plain := e.forms[""]; return !plain }

var placeholderRE = regexp.MustCompile(`\{(\w+)\}`)

// placeholders is the set of {name}s of every form of e.
func (e entry) placeholders() []string {
	set := map[string]bool{}
	for _, s := range e.forms {
		for _, m := range placeholderRE.FindAllStringSubmatch(s, -1) {
			set[m[1]] = true
		}
	}
	return mapsKeys(set)
}

// text is the form to compare across languages: the string, or "other".
func (e entry) text() string {
	if s, ok := e.forms[""]; ok {
		return s
	}
	return e.forms["other"]
}

func loadCatalog(t *testing.T, lang string) map[string]entry {
	t.Helper()
	b, err := fs.ReadFile(assets, "assets/i18n/"+lang+".json")
	if err != nil {
		t.Fatalf("catalog %s: %v", lang, err)
	}
	var c map[string]entry
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("catalog %s is not a valid catalog: %v", lang, err)
	}
	return c
}

// lookup is one call that names a key literally.
type lookup struct {
	key    string
	fn     string   // t, tp or tk
	params []string // the keys of the params object
	known  bool     // params are known: none, or an object literal
	where  string   // file:line
}

// scanLookups reads every module of the console for t('key', {…}),
// tp('key', {…}) and tk('key').
func scanLookups(t *testing.T) []lookup {
	t.Helper()
	var out []lookup
	err := fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || path.Ext(p) != ".js" {
			return err
		}
		src, err := fs.ReadFile(assets, p)
		if err != nil {
			return err
		}
		toks, err := tokenize(string(src))
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out = append(out, lookups(path.Base(p), toks)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCatalogsMatchTheCode(t *testing.T) {
	used := scanLookups(t)
	if len(used) < 100 {
		t.Fatalf("found only %d lookups in the console's modules: the scanner is broken", len(used))
	}
	usedKeys := map[string][]lookup{}
	for _, u := range used {
		usedKeys[u.key] = append(usedKeys[u.key], u)
	}
	cats := map[string]map[string]entry{}
	for _, lang := range catalogLanguages {
		cats[lang] = loadCatalog(t, lang)
	}

	t.Run("every catalog the console ships is one i18n.js offers", func(t *testing.T) {
		files, err := fs.Glob(assets, "assets/i18n/*.json")
		if err != nil {
			t.Fatal(err)
		}
		var langs []string
		for _, f := range files {
			langs = append(langs, strings.TrimSuffix(path.Base(f), ".json"))
		}
		js, _ := fs.ReadFile(assets, "assets/i18n.js")
		offered := regexp.MustCompile(`\['([A-Za-z-]+)', '[^']+'\]`).FindAllStringSubmatch(string(js), -1)
		var inJS []string
		for _, m := range offered {
			inJS = append(inJS, m[1])
		}
		want := slices.Sorted(slices.Values(catalogLanguages))
		if !slices.Equal(slices.Sorted(slices.Values(langs)), want) || !slices.Equal(slices.Sorted(slices.Values(inJS)), want) {
			t.Errorf("catalog files %v, LANGUAGES in i18n.js %v, this test %v: they must be the same", langs, inJS, catalogLanguages)
		}
	})

	for _, lang := range catalogLanguages {
		cat := cats[lang]
		t.Run(lang+" has every key the code looks up", func(t *testing.T) {
			for _, k := range mapsKeys(usedKeys) {
				if _, ok := cat[k]; !ok {
					t.Errorf("%s: %q (used at %s) is missing from i18n/%s.json", lang, k, usedKeys[k][0].where, lang)
				}
			}
		})
		t.Run(lang+" has no key nobody uses", func(t *testing.T) {
			for _, k := range mapsKeys(cat) {
				if _, ok := usedKeys[k]; !ok {
					t.Errorf("%s: %q is in i18n/%s.json but no module looks it up with t('%s'), tp('%s') or tk('%s')", lang, k, lang, k, k, k)
				}
			}
		})
		t.Run(lang+"'s plural entries give the forms the language needs", func(t *testing.T) {
			for _, k := range mapsKeys(cat) {
				e := cat[k]
				if !e.plural() {
					continue
				}
				for _, f := range requiredForms[lang] {
					if _, ok := e.forms[f]; !ok {
						t.Errorf("%s: %q is plural but has no %q form", lang, k, f)
					}
				}
			}
		})
	}

	en := cats["en"]
	for _, lang := range catalogLanguages[1:] {
		cat := cats[lang]
		t.Run(lang+" has the placeholders English has", func(t *testing.T) {
			for _, k := range mapsKeys(en) {
				tr, ok := cat[k]
				if !ok {
					continue // reported above
				}
				if a, b := en[k].placeholders(), tr.placeholders(); !slices.Equal(a, b) {
					t.Errorf("%q: English has placeholders %v, %s %v", k, a, lang, b)
				}
			}
		})
		t.Run(lang+" translates every text", func(t *testing.T) {
			for _, k := range mapsKeys(en) {
				tr, ok := cat[k]
				if !ok || sameInEveryLanguage[k] != "" {
					continue
				}
				if tr.text() == en[k].text() && regexp.MustCompile(`[A-Za-z]{2}`).MatchString(en[k].text()) {
					t.Errorf("%q: the %s text is the English one, %q (translate it, or list the key in sameInEveryLanguage with why)", k, lang, tr.text())
				}
			}
		})
	}

	t.Run("every call passes the placeholders its text needs", func(t *testing.T) {
		for _, u := range used {
			e, ok := en[u.key]
			if !ok || u.fn == "tk" || !u.known {
				continue
			}
			for _, ph := range e.placeholders() {
				if len(u.params) == 0 {
					t.Errorf("%s: %s('%s') passes no params, the text needs {%s}", u.where, u.fn, u.key, ph)
				} else if !slices.Contains(u.params, ph) {
					t.Errorf("%s: %s('%s', {%s}) lacks {%s}", u.where, u.fn, u.key, strings.Join(u.params, ", "), ph)
				}
			}
		}
	})
}

// TestScannerFindsLookups pins down what the scanner reads: keys in
// calls, inside template literals, after a spread; not in comments, not
// a method named t, and the params object's keys.
func TestScannerFindsLookups(t *testing.T) {
	src := "// t('in.comment')\n/* tk('in.block') */\n" +
		"const a = t('plain', {n: 1, name, v: x ? y : z});\n" +
		"const b = `${t('in.template', {s: `${q}`})} and ${obj.t('method')}`;\n" +
		"h('p', {}, ...tp('after.spread', {link: h('a', {}, 'x')}));\n" +
		"const re = /t\\('in.regex'\\)/g; const c = n / 2; t('after.division');\n" +
		"const k = {queued: tk('marked')}; t(dynamic);\n"
	toks, err := tokenize(src)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, l := range lookups("x.js", toks) {
		got = append(got, fmt.Sprintf("%s %s %v %v", l.fn, l.key, l.known, l.params))
	}
	want := []string{
		"t plain true [n name v]",
		"t in.template true [s]",
		"tp after.spread true [link]",
		"t after.division true []",
		"tk marked true []",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lookups:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// ---- a small JavaScript tokenizer: enough to find calls ---------------------

type tokKind int

const (
	tokIdent tokKind = iota
	tokString
	tokPunct
)

type token struct {
	kind tokKind
	text string // identifier, punctuation, or the string's value
	line int
}

// tokenize splits JavaScript source into identifiers, string literals and
// punctuation, dropping comments, numbers and regular expression literals.
// A template literal is a string token only when it has no ${…}; its
// expressions are tokenized in place.
func tokenize(src string) ([]token, error) {
	var toks []token
	line := 1
	i := 0
	// braces counts open { per template expression nesting level, so the }
	// that ends a ${…} resumes the template.
	var templates []int
	regexAllowed := func() bool {
		if len(toks) == 0 {
			return true
		}
		last := toks[len(toks)-1]
		switch last.kind {
		case tokString:
			return false
		case tokIdent:
			return last.text == "return" || last.text == "typeof" || last.text == "case" || last.text == "in" || last.text == "of"
		}
		return !strings.Contains(")]}", last.text)
	}
	readTemplate := func() error {
		// i is just past a backtick or a } that ends an expression.
		var b strings.Builder
		for i < len(src) {
			c := src[i]
			switch {
			case c == '\\' && i+1 < len(src):
				b.WriteByte(src[i+1])
				i += 2
			case c == '`':
				i++
				toks = append(toks, token{tokString, b.String(), line})
				return nil
			case c == '$' && i+1 < len(src) && src[i+1] == '{':
				i += 2
				toks = append(toks, token{tokPunct, "${", line})
				templates = append(templates, 0)
				return nil
			default:
				if c == '\n' {
					line++
				}
				b.WriteByte(c)
				i++
			}
		}
		return fmt.Errorf("line %d: unterminated template literal", line)
	}
	for i < len(src) {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case strings.HasPrefix(src[i:], "//"):
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "/*"):
			end := strings.Index(src[i+2:], "*/")
			if end < 0 {
				return nil, fmt.Errorf("line %d: unterminated comment", line)
			}
			line += strings.Count(src[i:i+2+end], "\n")
			i += end + 4
		case c == '\'' || c == '"':
			var b strings.Builder
			j := i + 1
			for ; j < len(src) && src[j] != c; j++ {
				if src[j] == '\n' {
					return nil, fmt.Errorf("line %d: unterminated string", line)
				}
				if src[j] == '\\' && j+1 < len(src) {
					j++
				}
				b.WriteByte(src[j])
			}
			if j >= len(src) {
				return nil, fmt.Errorf("line %d: unterminated string", line)
			}
			toks = append(toks, token{tokString, b.String(), line})
			i = j + 1
		case c == '`':
			i++
			if err := readTemplate(); err != nil {
				return nil, err
			}
		case c == '/' && regexAllowed():
			j, inClass := i+1, false
			for ; j < len(src); j++ {
				if src[j] == '\\' {
					j++
					continue
				}
				if src[j] == '\n' {
					return nil, fmt.Errorf("line %d: unterminated regular expression", line)
				}
				if src[j] == '[' {
					inClass = true
				} else if src[j] == ']' {
					inClass = false
				} else if src[j] == '/' && !inClass {
					break
				}
			}
			i = j + 1
			for i < len(src) && isIdent(src[i]) {
				i++ // flags
			}
			toks = append(toks, token{tokPunct, "/re/", line})
		case isIdent(c) && !(c >= '0' && c <= '9'):
			j := i
			for j < len(src) && isIdent(src[j]) {
				j++
			}
			toks = append(toks, token{tokIdent, src[i:j], line})
			i = j
		case c >= '0' && c <= '9':
			for i < len(src) && (isIdent(src[i]) || src[i] == '.') {
				i++
			}
			toks = append(toks, token{tokPunct, "0", line})
		case strings.HasPrefix(src[i:], "..."):
			toks = append(toks, token{tokPunct, "...", line})
			i += 3
		case c == '{':
			if n := len(templates); n > 0 {
				templates[n-1]++
			}
			toks = append(toks, token{tokPunct, "{", line})
			i++
		case c == '}':
			if n := len(templates); n > 0 {
				if templates[n-1] == 0 {
					templates = templates[:n-1]
					toks = append(toks, token{tokPunct, "}$", line})
					i++
					if err := readTemplate(); err != nil {
						return nil, err
					}
					continue
				}
				templates[n-1]--
			}
			toks = append(toks, token{tokPunct, "}", line})
			i++
		default:
			toks = append(toks, token{tokPunct, string(c), line})
			i++
		}
	}
	return toks, nil
}

func isIdent(c byte) bool {
	return c == '_' || c == '$' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// lookups finds the calls t('k'…), tp('k'…), tk('k') that are not a
// property's method (x.t(…)), with the keys of a literal params object.
func lookups(file string, toks []token) []lookup {
	var out []lookup
	for i := 0; i+2 < len(toks); i++ {
		fn := toks[i]
		if fn.kind != tokIdent || (fn.text != "t" && fn.text != "tp" && fn.text != "tk") {
			continue
		}
		if i > 0 && toks[i-1].kind == tokPunct && toks[i-1].text == "." {
			continue
		}
		if toks[i+1].text != "(" || toks[i+2].kind != tokString {
			continue
		}
		l := lookup{key: toks[i+2].text, fn: fn.text, where: fmt.Sprintf("%s:%d", file, fn.line)}
		switch {
		case i+3 < len(toks) && toks[i+3].text == ")":
			l.params, l.known = []string{}, true
		case i+4 < len(toks) && toks[i+3].text == "," && toks[i+4].text == "{":
			l.params, l.known = objectKeys(toks[i+4:]), true
		}
		out = append(out, l)
	}
	return out
}

// objectKeys reads the top-level keys of the object literal toks starts with.
func objectKeys(toks []token) []string {
	keys := []string{}
	depth := 0
	for i, tk := range toks {
		switch tk.text {
		case "{", "(", "[", "${":
			depth++
			continue
		case "}", ")", "]", "}$":
			depth--
			if depth == 0 {
				return keys
			}
			continue
		}
		if depth != 1 || tk.kind != tokIdent || i+1 >= len(toks) {
			continue
		}
		prev := toks[i-1].text
		next := toks[i+1].text
		if (prev == "{" || prev == ",") && (next == ":" || next == "," || next == "}") {
			keys = append(keys, tk.text)
		}
	}
	return keys
}

func mapsKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
