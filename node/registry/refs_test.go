package registry

import (
	"context"
	"testing"

	"gantry/store"
)

func TestIsLocalFollowsDockersHostRule(t *testing.T) {
	cases := map[string]bool{
		"gantry/toolbox":              true,
		"busybox":                     true,
		"alice/tool:1.0":              true,
		"alice/team/tool@sha256:abcd": true,
		"registry.invalid/nope:1":     false,
		"127.0.0.1:7070/alice/tool":   false,
		"localhost/alice/tool":        false,
		"ghcr.io/x/y:2":               false,
	}
	for ref, want := range cases {
		if got := IsLocal(ref); got != want {
			t.Errorf("IsLocal(%q) = %v, want %v", ref, got, want)
		}
	}
}

func TestParseReference(t *testing.T) {
	const d = "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	cases := []struct {
		in      string
		want    Reference
		wantErr bool
	}{
		{in: "gantry/toolbox", want: Reference{Repo: "gantry/toolbox", Tag: "latest"}},
		{in: "alice/tool:1.0", want: Reference{Repo: "alice/tool", Tag: "1.0"}},
		{in: "alice/tool@" + d, want: Reference{Repo: "alice/tool", Digest: d}},
		{in: "alice/tool:1.0@" + d, want: Reference{Repo: "alice/tool", Tag: "1.0", Digest: d}},
		{in: "Alice/Tool", wantErr: true},
		{in: "alice/../etc:1", wantErr: true},
		{in: "alice/tool:", wantErr: true},
		{in: "alice/tool@sha256:short", wantErr: true},
	}
	for _, tc := range cases {
		got, err := ParseReference(tc.in)
		if (err != nil) != tc.wantErr || (!tc.wantErr && got != tc.want) {
			t.Errorf("ParseReference(%q) = %+v, %v; want %+v (error %v)", tc.in, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestResolveHidesOthersPrivateImages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	d, _ := e.pushImage("alice", "alice/tool", "1.0", []byte("layer"))
	for _, tc := range []struct {
		user, ref string
		admin     bool
		code      string
	}{
		{"alice", "alice/tool:1.0", false, ""},
		{"alice", "alice/tool@" + d.String(), false, ""},
		{"root", "alice/tool:1.0", true, ""},
		{NodeUser, "alice/tool:1.0", false, ""},
		{"bob", "alice/tool:1.0", false, store.ENotFound},
		{"bob", "alice/nothing:1.0", false, store.ENotFound},
		{"alice", "alice/tool:2.0", false, store.ENotFound},
		{"alice", "alice/Tool", false, store.EInvalid},
	} {
		repo, got, err := e.reg.Resolve(ctx, tc.user, tc.admin, tc.ref)
		if store.ErrorCode(err) != tc.code && !(tc.code == "" && err == nil) {
			t.Errorf("%s resolving %s: %v; want code %q", tc.user, tc.ref, err, tc.code)
			continue
		}
		if tc.code == "" && (repo != "alice/tool" || got != d.String()) {
			t.Errorf("%s resolving %s = %s@%s; want alice/tool@%s", tc.user, tc.ref, repo, got, d)
		}
		if tc.code == store.ENotFound && store.ErrorMessage(err) != "image: "+tc.ref+" not found" {
			t.Errorf("%s resolving %s: message %q reveals more than not found", tc.user, tc.ref, store.ErrorMessage(err))
		}
	}
}

func TestDeleteTagOnlyForTheOwner(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.pushImage("alice", "alice/tool", "1.0", []byte("layer"))
	if err := e.reg.DeleteTag(ctx, "bob", false, "alice/tool", "1.0"); store.ErrorCode(err) != store.ENotFound {
		t.Fatalf("bob deleting alice's tag: %v; want not found", err)
	}
	if err := e.reg.DeleteTag(ctx, "alice", false, "alice/tool", "1.0"); err != nil {
		t.Fatalf("alice deleting her tag: %v", err)
	}
	if _, _, err := e.reg.Resolve(ctx, "alice", false, "alice/tool:1.0"); store.ErrorCode(err) != store.ENotFound {
		t.Fatalf("the deleted tag still resolves: %v", err)
	}
	if err := e.reg.DeleteTag(ctx, "alice", false, "alice/tool", "1.0"); store.ErrorCode(err) != store.ENotFound {
		t.Fatalf("deleting it again: %v; want not found", err)
	}
}
