package e2e

import (
	"context"
	"strings"
	"testing"

	"gantry/client"
	"gantry/gantrytest"
	"gantry/wire"
)

// TestCLIFollowsLANG: the real gantry binary against a real node, with
// LANG=zh_CN.UTF-8: a suspended account's refusal (account_suspended) and
// a wrong command line are one Chinese line each around the server's or
// cobra's words, with the usual exit codes; the same refusal under
// LANG=C.UTF-8 is the server's English message as it was.
func TestCLIFollowsLANG(t *testing.T) {
	t.Parallel()
	n := gantrytest.Start(t)
	ctx := context.Background()
	_, pw := n.CreateUser(t, "carol")
	token, err := client.New(n.URL, "").Login(ctx, "carol", pw, "cli")
	if err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := n.Client().SuspendUser(ctx, "carol", wire.SuspendRequest{Reason: "spam"}); err != nil {
		t.Fatalf("suspend: %v", err)
	}
	gantry := func(locale string, args ...string) (string, int) {
		t.Helper()
		_, stderr, code := n.GantryLocale(t, token, locale, args...)
		return strings.TrimRight(stderr, "\n"), code
	}

	line, code := gantry("zh_CN.UTF-8", "job", "ls")
	if code != 1 || !strings.HasPrefix(line, "gantry: 您的账号已被暂停（") || !strings.Contains(line, "the account carol is suspended: spam") || strings.Contains(line, "\n") {
		t.Errorf("zh_CN: gantry job ls: exit %d, %q; want exit 1 and one Chinese line with the server's message", code, line)
	}
	line, code = gantry("C.UTF-8", "job", "ls")
	if code != 1 || line != "gantry: the account carol is suspended: spam (see gantry inbox)" {
		t.Errorf("C: gantry job ls: exit %d, %q; want the server's message as it is", code, line)
	}
	line, code = gantry("zh_CN.UTF-8", "job", "wait")
	if code != 2 || line != "gantry job wait：需要 1 个参数，实际收到 0 个（参见 'gantry job wait --help'）" {
		t.Errorf("zh_CN: gantry job wait: exit %d, %q", code, line)
	}
}
