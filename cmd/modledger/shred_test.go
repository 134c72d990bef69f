package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
	"github.com/modledger/modledger/events/subscription"
	"github.com/modledger/modledger/internal/testenv"
)

// TestRedactionErasesThePersonalText is the privacy request from end to
// end: a case with a reason, an amended reason, a note with evidence,
// metadata and roles is redacted. Afterwards no reply, query, subscription
// or events tail shows its text, its key is gone from the key stream, and
// no file of the JetStream store holds the text or the key. Before the
// redaction the store holds the key but never the text, so the scan is
// seen to work. The other case's key, in the same key block, stays.
func TestRedactionErasesThePersonalText(t *testing.T) {
	l := startCLILedger(t)
	secrets := []string{
		"Xq7reason phone 555-0199",
		"Zr4amended home address",
		"Kp2note doxxing in DMs",
		"https://evidence.test/Ev9shot.png",
		"Wm3meta discord handle",
		"918273645501234567", // a role
	}
	opts := cliOpts{}
	l.ok(t, opts, "case", "open", "--type", "JAIL", "--user", "42", "--reason", secrets[0],
		"--metadata", "contact="+secrets[4], "--role", secrets[5])
	l.ok(t, opts, "case", "update", "1", "--reason", secrets[1])
	l.ok(t, opts, "case", "note", "1", secrets[2], "--evidence", secrets[3])
	l.ok(t, opts, "case", "open", "--type", "WARN", "--user", "43", "--reason", "another case keeps its text")

	// Every reader that shows the case, all at once.
	readers := func() map[string]string {
		out := map[string]string{}
		for _, args := range [][]string{
			{"case", "show", "1"}, {"case", "show", "1", "--json"},
			{"case", "history", "1"}, {"case", "history", "1", "--json"},
			{"user", "history", "42"}, {"user", "history", "42", "--json"},
			{"events", "tail", "--from-seq", "1", "--follow=false"},
			{"events", "tail", "--from-seq", "1", "--follow=false", "--json"},
		} {
			out[strings.Join(args, " ")] = l.ok(t, opts, args...)
		}
		out["subscription"] = subscribedEvents(t, l.nats)
		return out
	}
	// The read model has caught up with the note.
	testenv.Eventually(t, 20*time.Second, func() bool {
		return strings.Contains(l.ok(t, opts, "case", "show", "1", "--json"), "Kp2note")
	}, "the note never reached the read model")
	before := readers()
	for name, out := range before {
		if strings.HasPrefix(name, "user history 42") {
			continue // a list shows no reasons' history nor notes
		}
		if !strings.Contains(out, "Zr4amended") && !strings.Contains(out, "Xq7reason") {
			t.Fatalf("%s shows no text before the redaction:\n%s", name, out)
		}
	}

	js := l.nats.JetStream(t)
	key := caseKey(t, js, 1)
	keyBytes := storedKey(t, js, key)
	if keyBytes == nil {
		t.Fatal("the case's key is not in the key stream")
	}
	if found := l.nats.StoreContains(t, keyBytes); len(found) == 0 {
		t.Fatal("the key's bytes are nowhere in the store directory: the scan proves nothing")
	}
	// The other case's key is in the same block (one message holds 256
	// keys): erasing case 1's must leave it.
	otherKey := caseKey(t, js, 2)
	if shred.BlockID(otherKey) != shred.BlockID(key) {
		t.Fatalf("the two cases' keys %s and %s are in different blocks", key, otherKey)
	}
	otherBytes := storedKey(t, js, otherKey)
	for _, s := range secrets {
		if found := l.nats.StoreContains(t, []byte(s)); len(found) > 0 {
			t.Fatalf("%q is stored in plaintext in %v", s, found)
		}
	}

	redacted := l.ok(t, opts, "cases", "redact", "1", "--reason", "erasure request 2027-0113")
	if !strings.Contains(redacted, "Redacted 1 case") {
		t.Fatalf("redact: %s", redacted)
	}
	if storedKey(t, js, key) != nil {
		t.Fatal("the key is still in the key stream after the redaction")
	}
	testenv.Eventually(t, 20*time.Second, func() bool {
		return strings.Contains(l.ok(t, opts, "case", "show", "1", "--json"), `"redacted": true`)
	}, "the redaction never reached the read model")
	for name, out := range readers() {
		for _, s := range secrets {
			if strings.Contains(out, s) {
				t.Fatalf("%s shows %q after the redaction:\n%s", name, s, out)
			}
		}
	}
	if !strings.Contains(l.ok(t, opts, "case", "show", "2"), "another case keeps its text") {
		t.Fatal("the other case lost its text")
	}
	for _, s := range secrets {
		if found := l.nats.StoreContains(t, []byte(s)); len(found) > 0 {
			t.Fatalf("%q is stored in plaintext in %v", s, found)
		}
	}
	if found := l.nats.StoreContains(t, keyBytes); len(found) > 0 {
		t.Fatalf("the destroyed key's bytes are still on disk in %v", found)
	}
	if !bytes.Equal(storedKey(t, js, otherKey), otherBytes) || len(l.nats.StoreContains(t, otherBytes)) == 0 {
		t.Fatal("the other case's key, in the same block, is gone")
	}
}

// caseKey returns the key id of case n's opened event, read raw.
func caseKey(t *testing.T, js jetstream.JetStream, n uint32) uuid.UUID {
	t.Helper()
	s, err := js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	g, err := events.ParseSnowflake(testGuild)
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), events.Subjects{}.Case(g, n, events.NameCaseOpened))
	if err != nil {
		t.Fatal(err)
	}
	var e struct {
		KeyID  uuid.UUID `json:"key_id"`
		Sealed []byte    `json:"sealed"`
	}
	if err := json.Unmarshal(m.Data, &e); err != nil {
		t.Fatal(err)
	}
	if e.KeyID == uuid.Nil || len(e.Sealed) == 0 {
		t.Fatalf("the opened event is not sealed: %s", m.Data)
	}
	return e.KeyID
}

// storedKey returns the bytes of key id as the key stream stores them; nil
// when it is gone.
func storedKey(t *testing.T, js jetstream.JetStream, id uuid.UUID) []byte {
	t.Helper()
	s, err := js.Stream(t.Context(), shred.StreamName(command.StreamNameDefault))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(t.Context(), shred.Subject(events.DefaultPrefix, id))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return shred.KeyInBlock(m.Data, id)
}

// subscribedEvents reads every case event through a subscription from the
// beginning and returns them as JSON.
func subscribedEvents(t *testing.T, env *testenv.NATSEnv) string {
	t.Helper()
	js := env.JetStream(t)
	s, err := js.Stream(t.Context(), command.StreamNameDefault)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := info.State.LastSeq
	var (
		mu   sync.Mutex
		got  []events.Event
		last uint64
	)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	sub, err := subscription.Subscribe(ctx, js, subscription.Config{Start: subscription.StartBeginning(), Logger: testenv.Logger(t)},
		func(ctx context.Context, e events.Event) error {
			mu.Lock()
			defer mu.Unlock()
			got = append(got, e)
			last = max(last, e.Seq)
			return nil
		})
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := sub.Stop(context.Background()); err != nil {
			t.Errorf("stop subscription: %v", err)
		}
	}()
	testenv.Eventually(t, 10*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return last >= want || len(got) > 0 && want-last < 2 // the last message may be a claim
	}, "the subscription did not deliver the events")
	mu.Lock()
	defer mu.Unlock()
	b, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	// Payloads are not in the event's own JSON: add them.
	for _, e := range got {
		d, err := json.Marshal(e.Data)
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, d...)
	}
	return string(b)
}
