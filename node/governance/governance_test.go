package governance

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"gantry/gantrytest"
	"gantry/store"
)

// TestRunRestoresRestoresCounteredContentOnTime: the leader's loop leaves
// a countered notice's content down while the waiting period lasts and
// restores it, as "gantry", once the period passed.
func TestRunRestoresRestoresCounteredContentOnTime(t *testing.T) {
	st, err := store.Open(t.TempDir(), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	d := store.NewDirect(st)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	adm := store.Meta{Actor: "admin", Admin: true}
	_, err = store.CmdRegLinkBlob.Propose(ctx, d, store.RegLinkBlob{Repo: "alice/tool", Owner: "alice", Digest: "sha256:c0", Size: 10})
	must(err)
	_, err = store.CmdRegPutManifest.Propose(ctx, d, store.RegPutManifest{Owner: "alice", Tags: []string{"1"}, Manifest: store.RegManifest{Repo: "alice/tool",
		Digest: "sha256:m1", MediaType: "application/vnd.oci.image.manifest.v1+json", Content: []byte("{}"), Blobs: []string{"sha256:c0"}}})
	must(err)
	_, err = store.CmdPublishRepo.Propose(ctx, d, store.PublishRepo{Actor: "alice", LicenceText: "MIT text",
		Publication: store.Publication{Repo: "alice/tool", Licence: store.LicenceRef{Expression: "MIT", Digest: "sha256:v1"}, Use: store.UseResearch, Access: store.AccessOpen}})
	must(err)
	_, err = store.CmdNoticeSettings.Propose(ctx, d, store.SetNoticeSettings{Meta: adm, Settings: store.NoticeSettings{Wait: time.Hour}})
	must(err)
	n, err := store.CmdFileNotice.Propose(ctx, d, store.FileNotice{Meta: store.Meta{Actor: "bob"}, Repos: []string{"alice/tool"}, Form: store.NoticeForm{
		RightsHolder: store.Party{Name: "Acme", Kind: "organisation", IDDocument: "R1", Address: "1 Main St", Email: "a@acme.example"},
		Works:        []string{"Render"}, Proof: []store.Upload{{Name: "p", Data: []byte("p")}}, Content: []string{"alice/tool"}, Reasons: "copied",
		Evidence: []store.Upload{{Name: "e", Data: []byte("e")}}, Lang: "en", Statement: store.NoticeStatement.EN, Signature: "Ann"}})
	must(err)
	_, err = store.CmdDecideNotice.Propose(ctx, d, store.DecideNotice{Meta: adm, ID: n.ID, Decision: store.DecideTakedown, Reason: "copied"})
	must(err)
	n, err = store.CmdFileCounter.Propose(ctx, d, store.FileCounter{Meta: store.Meta{Actor: "alice"}, ID: n.ID, Form: store.CounterForm{
		Party: store.Party{Name: "Alice", Kind: "person", IDDocument: "P1", Address: "2 Side St", Phone: "1"}, Reasons: "mine",
		Evidence: []store.Upload{{Name: "h", Data: []byte("h")}}, Lang: "en", Statement: store.CounterStatement.EN, Signature: "Alice"}})
	must(err)

	clock := gantrytest.NewClock(n.RestoreAfter.Add(-time.Minute))
	g := New(Config{Store: st, Proposer: d, Logger: slog.New(slog.DiscardHandler), Now: clock.Now})
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); g.RunRestores(rctx) }()
	defer func() { cancel(); <-done }()

	// Two passes of the loop while the period lasts leave it down.
	deadline := time.Now().Add(2*restoreEvery + restoreEvery/2)
	for time.Now().Before(deadline) {
		if got, _ := st.Notice(n.ID); got.State != store.NoticeCountered {
			t.Fatalf("restored before the waiting period passed: %s", got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
	clock.Advance(time.Minute)
	deadline = time.Now().Add(10 * restoreEvery)
	for {
		got, err := st.Notice(n.ID)
		must(err)
		if got.State == store.NoticeRestored {
			if got.Resolution.By != "gantry" {
				t.Fatalf("restored by %q", got.Resolution.By)
			}
			if _, err := st.Takedown("alice/tool"); store.ErrorCode(err) != store.ENotFound {
				t.Fatalf("the image is still down: %v", err)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not restored %s after the waiting period passed: %s", 10*restoreEvery, got.State)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
