package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCorruptSavedLoginIsReported: a saved login that does not parse is
// reported in one line naming the file and what to do, never ignored.
func TestCorruptSavedLoginIsReported(t *testing.T) {
	home := t.TempDir()
	t.Setenv("XDG_CONFIG_HOME", home)
	t.Setenv("HOME", home)
	t.Setenv("GANTRY_TOKEN", "")
	t.Setenv("GANTRY_DATA", t.TempDir())
	p := configPath()
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(`{"addr": "http://x", "token": `), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := newClient()
	if err == nil || !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), "gantry login") {
		t.Fatalf("newClient with a corrupt saved login: %v", err)
	}
	if err := os.WriteFile(p, []byte(`{"addr": "http://x:1", "token": "gtk_1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := newClient()
	if err != nil || c.Addr != "http://x:1" || c.Token != "gtk_1" {
		t.Fatalf("newClient with a good saved login: %+v %v", c, err)
	}
}
