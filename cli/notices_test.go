package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gantry/wire"
)

// TestReadFormAttachesFiles: a form's attachments that name a file (in
// the form's directory, or an absolute path; an agent's too) are sent
// with its bytes, name and media type; a misspelt field or a missing file
// is refused before anything is sent.
func TestReadFormAttachesFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("deed.pdf", "%PDF deed")
	abs := write("poa.txt", "power of attorney")
	form := write("notice.json", `{"rights_holder": {"name": "Acme", "kind": "organisation"},
		"agent": {"name": "Lee", "kind": "person", "scope": "takedowns", "authorisation": [{"file": "`+abs+`"}]},
		"works": ["Render"], "proof": [{"file": "deed.pdf"}], "evidence": [{"name": "inline.txt", "data": "aGk="}],
		"content": ["alice/tool:1"], "reasons": "copied", "lang": "en", "statement": "S", "signature": "Ann"}`)
	var f wire.NoticeForm
	if err := readForm(form, &f); err != nil {
		t.Fatal(err)
	}
	if p := f.Proof[0]; p.Name != "deed.pdf" || p.MediaType != "application/pdf" || string(p.Data) != "%PDF deed" {
		t.Fatalf("proof %+v", p)
	}
	if a := f.Agent.Authorisation[0]; a.Name != "poa.txt" || !strings.HasPrefix(a.MediaType, "text/plain") || string(a.Data) != "power of attorney" {
		t.Fatalf("authorisation %+v", a)
	}
	if e := f.Evidence[0]; e.Name != "inline.txt" || string(e.Data) != "hi" {
		t.Fatalf("evidence %+v", e)
	}
	for name, text := range map[string]string{
		"misspelt.json": `{"rights_holdr": {}}`,
		"missing.json":  `{"proof": [{"file": "nowhere.pdf"}]}`,
		"counter.json":  `{"party": {"name": "Alice"}, "works": ["a counter-notice claims no works"]}`,
	} {
		var c wire.CounterForm
		if err := readForm(write(name, text), &c); err == nil {
			t.Errorf("%s was read: %s", name, text)
		}
	}
}
