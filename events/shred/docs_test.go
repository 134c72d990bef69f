package shred_test

import (
	"encoding/hex"
	"os"
	"regexp"
	"testing"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// TestDocsSealedExampleOpens keeps the sealed example of docs/events.md
// (the test vector for readers in other languages) true: with the key the
// page gives, it opens to the reason the page says.
func TestDocsSealedExampleOpens(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../../docs/events.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)Its key, `([0-9a-f-]{36})`, is\n`([0-9a-f]{64})` \\(hex\\), and `sealed` opens to\n`\\{\"reason\":\"([^\"]+)\"\\}`.*?```json\n(.*?)\n```").FindSubmatch(doc)
	if m == nil {
		t.Fatal("docs/events.md has no sealed example with its key")
	}
	raw, err := hex.DecodeString(string(m[2]))
	if err != nil {
		t.Fatal(err)
	}
	k, err := shred.NewKey(uuid.MustParse(string(m[1])), raw)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	e, err := codec.Decode(m[4])
	if err != nil {
		t.Fatal(err)
	}
	if e.KeyID != k.ID || len(e.Sealed) == 0 {
		t.Fatalf("the example is not sealed with key %s: %+v", k.ID, e)
	}
	if err := shred.Open(&e, k); err != nil {
		t.Fatal(err)
	}
	if got := e.Data.(events.CaseReasonAmended).Reason; got != string(m[3]) {
		t.Fatalf("the example opens to %q, the page says %q", got, m[3])
	}
}
