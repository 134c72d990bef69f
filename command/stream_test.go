package command_test

import (
	"strings"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/internal/testenv"
)

// TestStreamIsImmutable proves invariant 4: the ledger's stream refuses to
// delete a message, to purge, and to be loosened, and EnsureStream refuses
// to run on a stream that allows either.
func TestStreamIsImmutable(t *testing.T) {
	b := setup(t)
	ctx := t.Context()
	r, err := b.client.CaseOpen(ctx, 1234, warnParams(42))
	if err != nil {
		t.Fatal(err)
	}
	s, err := b.js.Stream(ctx, command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMsg(ctx, r.Seq); err == nil {
		t.Error("deleting a case event succeeded")
	}
	if err := s.SecureDeleteMsg(ctx, r.Seq); err == nil {
		t.Error("erasing a case event succeeded")
	}
	if err := s.Purge(ctx); err == nil {
		t.Error("purging the stream succeeded")
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSubject("modledger.case.1234.>")); err == nil {
		t.Error("purging a guild's events succeeded")
	}
	cfg := s.CachedInfo().Config
	cfg.DenyPurge = false
	if _, err := b.js.UpdateStream(ctx, cfg); err == nil {
		t.Error("the stream could be changed to allow purges")
	}
	if m, err := s.GetMsg(ctx, r.Seq); err != nil || !strings.HasSuffix(m.Subject, ".opened") {
		t.Fatalf("the case event is gone: %v %v", m, err)
	}

	// A stream made by hand without the protections is not a ledger.
	env := testenv.NATS(t)
	js := env.JetStream(t)
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "LOOSE", Subjects: []string{"loose.case.>", "loose.claim.>"}, Storage: jetstream.FileStorage}); err != nil {
		t.Fatal(err)
	}
	_, err = command.EnsureStream(ctx, js, command.StreamConfig{Name: "LOOSE", Prefix: "loose"})
	if err == nil || !strings.Contains(err.Error(), "deny_delete and deny_purge") {
		t.Fatalf("EnsureStream on a stream that allows deletes: %v", err)
	}
}
