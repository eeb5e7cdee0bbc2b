package cli

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"

	"github.com/spf13/cobra"

	"gantry/client"
)

// The CLI's messages in English and Simplified Chinese. The language comes
// from the environment as for any Unix program (LC_ALL, else LC_MESSAGES,
// else LANG): zh_CN, zh_SG or zh_Hans in any encoding is Chinese, anything
// else English. What is translated: the help (each command's summary, the
// headings of the usage text) and the one-line errors of the common
// paths (a wrong command line, not signed in, the API's refusal codes),
// which keep the server's or cobra's own words inside the Chinese ones.
// English output is byte for byte what it was before there was a catalog.
//
// A message is looked up by key with tr("key", args...) (fmt verbs), or
// named with trKey("key") where the key is chosen at run time;
// messages_test.go fails on a key a catalog lacks, a key nobody uses, verbs
// that differ between the languages, and a command without a Chinese
// summary.

const (
	english = "en"
	chinese = "zh-CN"
)

// language is the language of the CLI's messages, from the environment.
func language() string {
	for _, v := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		if s := os.Getenv(v); s != "" {
			return languageOf(s)
		}
	}
	return english
}

// languageOf maps a POSIX locale name (zh_CN.UTF-8, zh_CN@x, en_US) to a
// catalog.
func languageOf(locale string) string {
	l := strings.ToLower(locale)
	if i := strings.IndexAny(l, ".@"); i >= 0 {
		l = l[:i]
	}
	l = strings.ReplaceAll(l, "-", "_")
	if l == "zh" || l == "zh_cn" || l == "zh_sg" || strings.HasPrefix(l, "zh_hans") {
		return chinese
	}
	return english
}

// tr formats the message key in the CLI's language.
func tr(key string, args ...any) string {
	s, ok := messages[language()][key]
	if !ok {
		s = messages[english][key]
	}
	return fmt.Sprintf(s, args...)
}

// trKey names a key chosen at run time (so the catalog test sees it used).
func trKey(key string) string { return key }

var messages = map[string]map[string]string{
	english: {
		"usage.line":               "%s: %s (see '%s --help')",
		"usage.missing_subcommand": "missing subcommand: one of %s",
		"usage.unknown_command":    "unknown command %q",

		// cobra's and pflag's own words, as they print them.
		"cobra.unknown_command":     "unknown command %q for %q",
		"cobra.suggestions":         "Did you mean this? %s",
		"cobra.unknown_flag":        "unknown flag: %s",
		"cobra.unknown_shorthand":   "unknown shorthand flag: '%s' in %s",
		"cobra.flag_needs_argument": "flag needs an argument: %s",
		"cobra.invalid_argument":    "invalid argument %q for %q flag: %s",
		"cobra.accepts":             "accepts %s arg(s), received %s",
		"cobra.requires_at_least":   "requires at least %s arg(s), only received %s",
		"cobra.accepts_at_most":     "accepts at most %s arg(s), received %s",
		"cobra.accepts_between":     "accepts between %s and %s arg(s), received %s",
		"cobra.required_flags":      "required flag(s) %s not set",
		"help.usage":                "Usage:",
		"help.aliases":              "Aliases:",
		"help.examples":             "Examples:",
		"help.commands":             "Available Commands:",
		"help.additional_commands":  "Additional Commands:",
		"help.flags":                "Flags:",
		"help.global_flags":         "Global Flags:",
		"help.topics":               "Additional help topics:",
		"help.more":                 "Use \"%s [command] --help\" for more information about a command.",
		"help.flag":                 "help for %s",
		"help.command":              "Help about any command",
		"auth.not_logged_in":        "not logged in: run 'gantry login' or set GANTRY_TOKEN",
		"login.prompt":              "Password: ",
		"login.done":                "Logged in to %s as %s (saved in %s)",
		"trust.ask": "The server at %s presents a certificate from a CA this machine does not trust.\n" +
			"The CA's SHA-256 fingerprint:\n  %s\n" +
			"Check it with an admin (on a node: openssl x509 -noout -fingerprint -sha256 -in DATA/tls/ca.pem).\n" +
			"Trust this CA for %s from now on? [y/N] ",
		"trust.pinned":                 "Pinned the CA with the SHA-256 fingerprint %s: later commands trust only it for %s",
		"trust.declined":               "the server's CA was not trusted and nothing was saved: check its fingerprint with an admin, then log in again",
		"trust.unattended":             "the server at %s has a CA this machine does not trust (SHA-256 %s): check that fingerprint with an admin, then run 'gantry login --addr %s --ca-fingerprint %s' (or give the CA with --ca-file FILE)",
		"trust.fingerprint_mismatch":   "refused: the CA of %s has the SHA-256 fingerprint %s, not %s as --ca-fingerprint says; someone may be intercepting the connection: check the fingerprint with an admin",
		"trust.file_fingerprint":       "--ca-file %s holds a CA with the SHA-256 fingerprint %s, not %s as --ca-fingerprint says",
		"trust.file_refused":           "refused: the certificate of %s is not one the CA in --ca-file %s issued (%s)",
		"trust.pin_changed":            "refused: %s no longer presents a certificate from the CA pinned at the last login (it offers a CA with the SHA-256 fingerprint %s); if an admin replaced the cluster's CA, check that fingerprint with them and run 'gantry login --addr %s --ca-fingerprint SHA256' again; otherwise someone may be intercepting the connection",
		"trust.no_ca":                  "%s does not serve its CA at /api/v1/cluster/ca (%s): give the server's CA with --ca-file FILE",
		"trust.not_cluster_ca":         "the certificate of %s is not one the cluster CA issued for this address (%s): give the CA that issued it with --ca-file FILE, or use an address the certificate names",
		"trust.wrong_host":             "the certificate of %s does not name this address (%s): use an address it names, such as the node's advertised address",
		"trust.pin_refused":            "refused: %s presents a certificate the CA pinned at login did not issue; if an admin replaced the cluster's CA, check its new SHA-256 fingerprint with them and run 'gantry login --addr %s --ca-fingerprint SHA256' again; otherwise someone may be intercepting the connection",
		"trust.untrusted":              "the certificate of %s is from a CA this machine does not trust: run 'gantry login --addr %s' to check and pin its CA",
		"refusal.unauthorized":         "%s",
		"refusal.forbidden":            "%s",
		"refusal.licence_not_accepted": "%s",
		"refusal.access_pending":       "%s",
		"refusal.access_rejected":      "%s",
		"refusal.account_suspended":    "%s",
		"refusal.terms_not_accepted":   "%s",
		"refusal.taken_down":           "%s",
		"refusal.quota_exceeded":       "%s",
		"refusal.rate_limited":         "%s",
	},
	chinese: {
		"usage.line":               "%s：%s（参见 '%s --help'）",
		"usage.missing_subcommand": "缺少子命令，可选：%s",
		"usage.unknown_command":    "未知命令 %q",

		"cobra.unknown_command":     "未知命令 %q（%q 没有这个子命令）",
		"cobra.suggestions":         "您是否想输入：%s",
		"cobra.unknown_flag":        "未知选项：%s",
		"cobra.unknown_shorthand":   "未知短选项 '%s'（在 %s 中）",
		"cobra.flag_needs_argument": "选项缺少参数：%s",
		"cobra.invalid_argument":    "参数 %q 不是选项 %q 的有效值：%s",
		"cobra.accepts":             "需要 %s 个参数，实际收到 %s 个",
		"cobra.requires_at_least":   "至少需要 %s 个参数，只收到 %s 个",
		"cobra.accepts_at_most":     "最多接受 %s 个参数，实际收到 %s 个",
		"cobra.accepts_between":     "需要 %s 到 %s 个参数，实际收到 %s 个",
		"cobra.required_flags":      "缺少必需的选项 %s",
		"help.usage":                "用法：",
		"help.aliases":              "别名：",
		"help.examples":             "示例：",
		"help.commands":             "可用命令：",
		"help.additional_commands":  "其他命令：",
		"help.flags":                "选项：",
		"help.global_flags":         "全局选项：",
		"help.topics":               "其他帮助主题：",
		"help.more":                 "运行 \"%s [command] --help\" 查看命令的详细说明。",
		"help.flag":                 "显示 %s 的帮助",
		"help.command":              "显示任意命令的帮助",
		"auth.not_logged_in":        "尚未登录：请运行 'gantry login' 或设置 GANTRY_TOKEN",
		"login.prompt":              "密码：",
		"login.done":                "已登录 %s，用户 %s（保存在 %s）",
		"trust.ask": "%s 的服务器出示的证书来自本机不信任的 CA。\n" +
			"该 CA 的 SHA-256 指纹：\n  %s\n" +
			"请与管理员核对（在节点上：openssl x509 -noout -fingerprint -sha256 -in DATA/tls/ca.pem）。\n" +
			"今后信任此 CA 访问 %s 吗？[y/N] ",
		"trust.pinned":                 "已固定 SHA-256 指纹为 %s 的 CA：之后的命令访问 %s 时只信任它",
		"trust.declined":               "未信任服务器的 CA，未保存任何内容：请与管理员核对指纹后重新登录",
		"trust.unattended":             "%s 的服务器使用本机不信任的 CA（SHA-256 %s）：请与管理员核对该指纹，然后运行 'gantry login --addr %s --ca-fingerprint %s'（或用 --ca-file FILE 指定 CA）",
		"trust.fingerprint_mismatch":   "已拒绝：%s 的 CA 的 SHA-256 指纹是 %s，而不是 --ca-fingerprint 给出的 %s；连接可能被人拦截：请与管理员核对指纹",
		"trust.file_fingerprint":       "--ca-file %s 中 CA 的 SHA-256 指纹是 %s，而不是 --ca-fingerprint 给出的 %s",
		"trust.file_refused":           "已拒绝：%s 的证书不是 --ca-file %s 中的 CA 签发的（%s）",
		"trust.pin_changed":            "已拒绝：%s 出示的证书已不是上次登录时固定的 CA 签发的（它提供的 CA 的 SHA-256 指纹为 %s）；如果管理员更换了集群 CA，请与其核对该指纹并重新运行 'gantry login --addr %s --ca-fingerprint SHA256'；否则连接可能被人拦截",
		"trust.no_ca":                  "%s 未在 /api/v1/cluster/ca 提供其 CA（%s）：请用 --ca-file FILE 指定服务器的 CA",
		"trust.not_cluster_ca":         "%s 的证书不是集群 CA 为该地址签发的（%s）：请用 --ca-file FILE 指定签发它的 CA，或使用证书中列出的地址",
		"trust.wrong_host":             "%s 的证书不包含此地址（%s）：请使用证书中列出的地址，例如节点的通告地址",
		"trust.pin_refused":            "已拒绝：%s 出示的证书不是登录时固定的 CA 签发的；如果管理员更换了集群 CA，请与其核对新的 SHA-256 指纹并重新运行 'gantry login --addr %s --ca-fingerprint SHA256'；否则连接可能被人拦截",
		"trust.untrusted":              "%s 的证书来自本机不信任的 CA：请运行 'gantry login --addr %s' 核对并固定其 CA",
		"refusal.unauthorized":         "未登录或令牌已失效，请运行 'gantry login' 或设置 GANTRY_TOKEN（%s）",
		"refusal.forbidden":            "您无权执行此操作（%s）",
		"refusal.licence_not_accepted": "您尚未接受该镜像的许可，请先接受许可（%s）",
		"refusal.access_pending":       "您的访问申请正在等待发布者审核（%s）",
		"refusal.access_rejected":      "发布者拒绝了您的访问申请（%s）",
		"refusal.account_suspended":    "您的账号已被暂停（%s）",
		"refusal.terms_not_accepted":   "请先阅读并同意服务条款（%s）",
		"refusal.taken_down":           "该镜像已被下架（%s）",
		"refusal.quota_exceeded":       "已超出您的配额（%s）",
		"refusal.rate_limited":         "请求过于频繁，请稍后再试（%s）",
	},
}

// refusals are the API codes (INTERFACE.md) whose errors the CLI says in
// its language, around the server's message.
var refusals = map[string]string{
	"unauthorized":         trKey("refusal.unauthorized"),
	"forbidden":            trKey("refusal.forbidden"),
	"licence_not_accepted": trKey("refusal.licence_not_accepted"),
	"access_pending":       trKey("refusal.access_pending"),
	"access_rejected":      trKey("refusal.access_rejected"),
	"account_suspended":    trKey("refusal.account_suspended"),
	"terms_not_accepted":   trKey("refusal.terms_not_accepted"),
	"taken_down":           trKey("refusal.taken_down"),
	"quota_exceeded":       trKey("refusal.quota_exceeded"),
	"rate_limited":         trKey("refusal.rate_limited"),
}

// errorText is err as the CLI's one line says it: a refusal with a known
// code in the CLI's language, the server's words kept inside.
func errorText(err error) string {
	var cert *client.CertError
	if errors.As(err, &cert) {
		return certErrorText(cert) // trust.go
	}
	if language() == english {
		return err.Error()
	}
	var ce *client.Error
	if errors.As(err, &ce) {
		if key, ok := refusals[ce.Code]; ok {
			return tr(key, err.Error())
		}
	}
	return err.Error()
}

// cobraErrors are the errors cobra and pflag make of a wrong command line,
// each with the message that says it (the submatches are its arguments).
var cobraErrors = []struct {
	re  *regexp.Regexp
	key string
}{
	{regexp.MustCompile(`^unknown command "(.*)" for "(.*?)"$`), trKey("cobra.unknown_command")},
	{regexp.MustCompile(`^unknown flag: (.*)$`), trKey("cobra.unknown_flag")},
	{regexp.MustCompile(`^unknown shorthand flag: '(.)' in (.*)$`), trKey("cobra.unknown_shorthand")},
	{regexp.MustCompile(`^flag needs an argument: (.*)$`), trKey("cobra.flag_needs_argument")},
	{regexp.MustCompile(`^invalid argument "(.*)" for "(.*?)" flag: (.*)$`), trKey("cobra.invalid_argument")},
	{regexp.MustCompile(`^accepts (\d+) arg\(s\), received (\d+)$`), trKey("cobra.accepts")},
	{regexp.MustCompile(`^requires at least (\d+) arg\(s\), only received (\d+)$`), trKey("cobra.requires_at_least")},
	{regexp.MustCompile(`^accepts at most (\d+) arg\(s\), received (\d+)$`), trKey("cobra.accepts_at_most")},
	{regexp.MustCompile(`^accepts between (\d+) and (\d+) arg\(s\), received (\d+)$`), trKey("cobra.accepts_between")},
	{regexp.MustCompile(`^required flag\(s\) (.*) not set$`), trKey("cobra.required_flags")},
}

var suggestionsRE = regexp.MustCompile(`^(.*?)\s+Did you mean this\?\s+(.*)$`)

// cobraText is one line of a command-line error cobra or pflag made, in
// the CLI's language; one it does not know stays as cobra said it.
func cobraText(err error) string {
	s := oneLine(err.Error())
	if language() == english {
		return s
	}
	suggest := ""
	if m := suggestionsRE.FindStringSubmatch(s); m != nil {
		s, suggest = m[1], m[2]
	}
	for _, e := range cobraErrors {
		if m := e.re.FindStringSubmatch(s); m != nil {
			args := make([]any, len(m)-1)
			for i, a := range m[1:] {
				args[i] = a
			}
			s = tr(e.key, args...)
			break
		}
	}
	if suggest != "" {
		s += "；" + tr("cobra.suggestions", suggest)
	}
	return s
}

// localize puts the help of the command tree into the CLI's language: each
// command's summary (summariesZH), its long text where it has one
// (longsZH), the usage text's headings and the help flag and command.
func localize(root *cobra.Command) {
	if language() == english {
		return
	}
	root.SetUsageTemplate(localUsageTemplate(root.UsageTemplate()))
	root.InitDefaultHelpCmd()
	root.InitDefaultCompletionCmd()
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if s, ok := summariesZH[c.CommandPath()]; ok {
			c.Short = s
		}
		if l, ok := longsZH[c.CommandPath()]; ok {
			c.Long = l
		}
		if c.Name() == "help" && c.HasParent() {
			c.Short = tr("help.command")
		}
		c.InitDefaultHelpFlag()
		if f := c.Flags().Lookup("help"); f != nil {
			f.Usage = tr("help.flag", c.Name())
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
}

// usageHeadings are the English words of cobra's usage template that
// localUsageTemplate replaces ("Global Flags:" before "Flags:", which it
// contains).
var usageHeadings = []string{
	trKey("help.usage"), trKey("help.aliases"), trKey("help.examples"), trKey("help.commands"), trKey("help.additional_commands"),
	trKey("help.global_flags"), trKey("help.flags"), trKey("help.topics"),
}

// localUsageTemplate is cobra's usage template with its headings in the
// CLI's language.
func localUsageTemplate(tmpl string) string {
	var pairs []string
	for _, k := range usageHeadings {
		pairs = append(pairs, messages[english][k], tr(k))
	}
	const path = "{{.CommandPath}}"
	pairs = append(pairs, fmt.Sprintf(messages[english]["help.more"], path), tr("help.more", path))
	return strings.NewReplacer(pairs...).Replace(tmpl)
}
