package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// keyUse is one place the code names a message key.
type keyUse struct {
	key   string
	args  int // arguments after the key; -1 for trKey or a spread
	where string
}

// keyUses reads the package's code (not its tests) for tr("key", ...) and
// trKey("key").
func keyUses(t *testing.T) []keyUse {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var uses []keyUse
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(file, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok || len(call.Args) == 0 {
				return true
			}
			fn, ok := call.Fun.(*ast.Ident)
			if !ok || (fn.Name != "tr" && fn.Name != "trKey") {
				return true
			}
			where := fset.Position(call.Pos()).String()
			lit, ok := call.Args[0].(*ast.BasicLit)
			if !ok || lit.Kind != token.STRING {
				if fn.Name == "trKey" {
					t.Errorf("%s: trKey needs a literal key", where)
				}
				return true // tr(key, ...) with a key from trKey
			}
			key, _ := strconv.Unquote(lit.Value)
			args := len(call.Args) - 1
			if fn.Name == "trKey" || call.Ellipsis.IsValid() {
				args = -1
			}
			uses = append(uses, keyUse{key: key, args: args, where: where})
			return true
		})
	}
	return uses
}

var verbRE = regexp.MustCompile(`%(?:\[(\d+)\])?[-+# 0]*\d*(?:\.\d+)?([a-zA-Z%])`)

// verbs maps each argument index a format uses to its verb.
func verbs(format string) map[int]string {
	out := map[int]string{}
	next := 1
	for _, m := range verbRE.FindAllStringSubmatch(format, -1) {
		if m[2] == "%" {
			continue
		}
		if m[1] != "" {
			next, _ = strconv.Atoi(m[1])
		}
		out[next] = m[2]
		next++
	}
	return out
}

func TestMessageCatalogs(t *testing.T) {
	uses := keyUses(t)
	if len(uses) < 20 {
		t.Fatalf("found %d uses of message keys: the scan is broken", len(uses))
	}
	used := map[string]keyUse{}
	for _, u := range uses {
		used[u.key] = u
	}
	for _, lang := range []string{english, chinese} {
		cat := messages[lang]
		for key, u := range used {
			if _, ok := cat[key]; !ok {
				t.Errorf("%s: %q (used at %s) is missing from the %s catalog", lang, key, u.where, lang)
			}
		}
		for key := range cat {
			if _, ok := used[key]; !ok {
				t.Errorf("%s: %q is in the catalog but no code names it with tr or trKey", lang, key)
			}
		}
	}
	for key, en := range messages[english] {
		zh, ok := messages[chinese][key]
		if !ok {
			continue
		}
		if a, b := verbs(en), verbs(zh); fmt.Sprint(a) != fmt.Sprint(b) {
			t.Errorf("%q: English formats %v (%q), Chinese %v (%q)", key, a, en, b, zh)
		}
		if zh == en && regexp.MustCompile(`[A-Za-z]{2}`).MatchString(en) {
			t.Errorf("%q: the Chinese text is the English one (%q)", key, en)
		}
	}
	for _, u := range uses {
		if u.args < 0 {
			continue
		}
		if n := len(verbs(messages[english][u.key])); n != u.args {
			t.Errorf("%s: tr(%q) passes %d arguments, its text takes %d", u.where, u.key, u.args, n)
		}
	}
}

// chineseEnv makes the test's environment ask for Chinese messages.
func chineseEnv(t *testing.T) {
	t.Setenv("LC_ALL", "")
	t.Setenv("LC_MESSAGES", "")
	t.Setenv("LANG", "zh_CN.UTF-8")
}

// TestEveryCommandHasAChineseSummary walks the command tree: every command
// has a Chinese summary (and a Chinese long text where it has a long one),
// and the catalogs name no command the tree lacks.
func TestEveryCommandHasAChineseSummary(t *testing.T) {
	english := map[string]*cobra.Command{}
	var walk func(c *cobra.Command, into map[string]*cobra.Command)
	walk = func(c *cobra.Command, into map[string]*cobra.Command) {
		if c.IsAvailableCommand() || !c.HasParent() {
			into[c.CommandPath()] = c
		}
		for _, s := range c.Commands() {
			walk(s, into)
		}
	}
	t.Setenv("LANG", "C.UTF-8")
	t.Setenv("LC_ALL", "")
	walk(newRoot(nil), english)
	chineseEnv(t)
	local := map[string]*cobra.Command{}
	walk(newRoot(nil), local)

	for path, c := range local {
		if c.Name() == "help" && c.HasParent() {
			continue // cobra's, said with tr("help.command")
		}
		zh, ok := summariesZH[path]
		if !ok {
			t.Errorf("%q has no Chinese summary in summariesZH (its English one: %q)", path, c.Short)
			continue
		}
		if c.Short != zh {
			t.Errorf("%q: the summary shown in Chinese is %q, want %q", path, c.Short, zh)
		}
		if en, ok := english[path]; ok && en.Long != "" {
			if _, ok := longsZH[path]; !ok {
				t.Errorf("%q has a long description but none in longsZH", path)
			}
		}
	}
	for path := range summariesZH {
		if _, ok := local[path]; !ok {
			t.Errorf("summariesZH has %q, which is no command", path)
		}
	}
	for path := range longsZH {
		if c, ok := english[path]; !ok || c.Long == "" {
			t.Errorf("longsZH has %q, which is no command with a long description", path)
		}
	}
}

// TestUsageHeadingsAreCobras: the English headings localUsageTemplate
// replaces are in cobra's usage template, so a cobra whose words changed
// fails here instead of printing English headings in Chinese help.
func TestUsageHeadingsAreCobras(t *testing.T) {
	tmpl := (&cobra.Command{Use: "x"}).UsageTemplate()
	for _, k := range usageHeadings {
		if !strings.Contains(tmpl, messages[english][k]) {
			t.Errorf("cobra's usage template has no %q (%s)", messages[english][k], k)
		}
	}
	if more := fmt.Sprintf(messages[english]["help.more"], "{{.CommandPath}}"); !strings.Contains(tmpl, more) {
		t.Errorf("cobra's usage template has no %q", more)
	}
}

func TestLanguageFromTheEnvironment(t *testing.T) {
	for _, c := range []struct {
		lcAll, lcMessages, lang string
		want                    string
	}{
		{"", "", "zh_CN.UTF-8", chinese},
		{"", "", "zh_CN", chinese},
		{"", "", "zh_CN.GB18030", chinese},
		{"", "", "zh_SG.UTF-8", chinese},
		{"", "", "zh_Hans_CN.UTF-8", chinese},
		{"", "", "zh", chinese},
		{"", "", "zh_TW.UTF-8", english}, // Traditional: no catalog
		{"", "", "en_US.UTF-8", english},
		{"", "", "C.UTF-8", english},
		{"", "", "", english},
		{"", "zh_CN.UTF-8", "en_US.UTF-8", chinese},  // LC_MESSAGES before LANG
		{"C", "zh_CN.UTF-8", "zh_CN.UTF-8", english}, // LC_ALL before both
		{"zh_CN.UTF-8", "", "C", chinese},
	} {
		t.Run(fmt.Sprintf("LC_ALL=%s LC_MESSAGES=%s LANG=%s", c.lcAll, c.lcMessages, c.lang), func(t *testing.T) {
			t.Setenv("LC_ALL", c.lcAll)
			t.Setenv("LC_MESSAGES", c.lcMessages)
			t.Setenv("LANG", c.lang)
			if got := language(); got != c.want {
				t.Errorf("language() = %s, want %s", got, c.want)
			}
		})
	}
}

// TestCLIInChinese runs command lines with LANG=zh_CN.UTF-8: the help, a
// wrong command line, a command run signed out and a refusal of each
// kind INTERFACE.md names come out in Chinese, one line each with the
// exit codes of the English CLI, the server's own words kept.
func TestCLIInChinese(t *testing.T) {
	chineseEnv(t)
	run1 := func(t *testing.T, args ...string) (int, string, string) {
		t.Helper()
		var out, errb bytes.Buffer
		code := run(context.Background(), args, func(context.Context, ServerConfig) error {
			t.Fatal("the server must not start")
			return nil
		}, &out, &errb)
		return code, out.String(), errb.String()
	}
	oneLineErr := func(t *testing.T, stderr string) string {
		t.Helper()
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if len(lines) != 1 {
			t.Fatalf("stderr has %d lines, want one: %q", len(lines), stderr)
		}
		return lines[0]
	}

	t.Run("help shows Chinese headings and summaries", func(t *testing.T) {
		code, out, _ := run1(t, "job", "--help")
		for _, want := range []string{"列出、查看、跟踪和取消作业", "用法：", "可用命令：", "列出作业，最新的在前", "全局选项：", "显示 job 的帮助", `运行 "gantry job [command] --help" 查看命令的详细说明。`} {
			if !strings.Contains(out, want) {
				t.Errorf("gantry job --help lacks %q:\n%s", want, out)
			}
		}
		for _, english := range []string{"Usage:", "Available Commands:", "Flags:", "List jobs"} {
			if strings.Contains(out, english) {
				t.Errorf("gantry job --help still says %q:\n%s", english, out)
			}
		}
		if code != 0 {
			t.Errorf("exit %d", code)
		}
	})

	t.Setenv("GANTRY_TOKEN", "gtk_test")
	t.Setenv("GANTRY_ADDR", "http://127.0.0.1:1")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"job", "nosuch"}, `gantry job：未知命令 "nosuch"（参见 'gantry job --help'）`},
		{[]string{"nosuch"}, `gantry：未知命令 "nosuch"（参见 'gantry --help'）`},
		{[]string{"job"}, `gantry job：缺少子命令，可选：`},
		{[]string{"job", "show"}, `gantry job show：需要 1 个参数，实际收到 0 个（参见 'gantry job show --help'）`},
		{[]string{"job", "ls", "--no-such-flag"}, `gantry job ls：未知选项：--no-such-flag（参见 'gantry job ls --help'）`},
		{[]string{"job", "logs", "x", "--task"}, `gantry job logs：选项缺少参数：--task（参见 'gantry job logs --help'）`},
		{[]string{"job", "logs", "x", "--task", "two"}, `gantry job logs：参数 "two" 不是选项 "--task" 的有效值：`},
		{[]string{"job", "cancel"}, `gantry job cancel：至少需要 1 个参数，只收到 0 个`},
	} {
		t.Run("usage error: gantry "+strings.Join(c.args, " "), func(t *testing.T) {
			code, _, stderr := run1(t, c.args...)
			if line := oneLineErr(t, stderr); code != 2 || !strings.HasPrefix(line, c.want) {
				t.Errorf("exit %d, %q; want exit 2 and %q", code, line, c.want)
			}
		})
	}

	t.Run("signed out", func(t *testing.T) {
		t.Setenv("GANTRY_TOKEN", "")
		t.Setenv("GANTRY_DATA", t.TempDir())
		t.Setenv("XDG_CONFIG_HOME", t.TempDir())
		t.Setenv("HOME", t.TempDir())
		code, _, stderr := run1(t, "job", "ls")
		want := "gantry: 尚未登录：请运行 'gantry login' 或设置 GANTRY_TOKEN"
		if line := oneLineErr(t, stderr); code != 1 || line != want {
			t.Errorf("exit %d, %q; want exit 1 and %q", code, line, want)
		}
	})

	// A server that refuses with each code, as the API does (docs/api.md).
	for _, c := range []struct {
		code   string
		status int
		msg    string
		want   string
	}{
		{"licence_not_accepted", 403, "accept the licence of alice/tool (MIT) first: gantry image accept alice/tool", "您尚未接受该镜像的许可，请先接受许可（"},
		{"quota_exceeded", 403, "the job asks for 64 CPU, more than your quota of 8 CPU", "已超出您的配额（"},
		{"taken_down", 451, "alice/tool was taken down (decision T1): infringes", "该镜像已被下架（"},
		{"account_suspended", 403, "the account carol is suspended: spam (see gantry inbox)", "您的账号已被暂停（"},
		{"access_pending", 403, "your request for alice/model waits for alice", "您的访问申请正在等待发布者审核（"},
		{"unauthorized", 401, "invalid or expired token", "未登录或令牌已失效"},
	} {
		t.Run("refusal "+c.code, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(c.status)
				_ = json.NewEncoder(w).Encode(map[string]string{"error": c.msg, "code": c.code})
			}))
			defer srv.Close()
			t.Setenv("GANTRY_ADDR", srv.URL)
			code, _, stderr := run1(t, "job", "ls")
			line := oneLineErr(t, stderr)
			if code != 1 || !strings.HasPrefix(line, "gantry: "+c.want) || !strings.Contains(line, c.msg) {
				t.Errorf("exit %d, %q; want exit 1, %q and the server's message %q", code, line, c.want, c.msg)
			}
		})
	}

	t.Run("in English the same refusal is the server's message as before", func(t *testing.T) {
		t.Setenv("LANG", "en_US.UTF-8")
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(451)
			_ = json.NewEncoder(w).Encode(map[string]string{"error": "alice/tool was taken down (decision T1): infringes", "code": "taken_down"})
		}))
		defer srv.Close()
		t.Setenv("GANTRY_ADDR", srv.URL)
		_, _, stderr := run1(t, "job", "ls")
		if line := oneLineErr(t, stderr); line != "gantry: alice/tool was taken down (decision T1): infringes" {
			t.Errorf("%q", line)
		}
	})
}
