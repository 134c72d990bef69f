package events_test

import (
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/modledger/modledger/events"
)

// jsonBlock matches a fenced ```json block in Markdown.
var jsonBlock = regexp.MustCompile("(?s)```json\n(.*?)\n```")

// TestDocsExamplesDecode keeps docs/events.md in step with the code: every
// ```json block is an event that the codec decodes and writes back with the
// same fields and values, and every event has a section "### <name>" whose
// one example is an event of that name.
func TestDocsExamplesDecode(t *testing.T) {
	t.Parallel()

	doc, err := os.ReadFile("../docs/events.md")
	if err != nil {
		t.Fatalf("read the event reference: %v", err)
	}
	codec := newCodec(t)

	blocks := jsonBlock.FindAllSubmatch(doc, -1)
	if len(blocks) == 0 {
		t.Fatal("docs/events.md has no ```json examples")
	}
	for i, m := range blocks {
		example := m[1]
		e, err := codec.Decode(example)
		if err != nil {
			t.Fatalf("example %d does not decode: %v\n%s", i+1, err, example)
		}
		// Written back, the example has exactly the same fields and values:
		// no field the codec would drop, snowflakes as strings, times in UTC.
		b, err := codec.Encode(e)
		if err != nil {
			t.Fatalf("example %d (%s): Encode: %v", i+1, e.Event, err)
		}
		var want, got any
		if err := json.Unmarshal(example, &want); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("example %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("example %d (%s) is not what the codec writes:\n got %s\nwant %s", i+1, e.Event, b, example)
		}
		for name, id := range map[string]uuid.UUID{"event_id": e.EventID, "case_id": e.CaseID, "command_id": e.CommandID, "correlation_id": e.CorrelationID} {
			if id.Version() != 7 || id.Variant() != uuid.RFC4122 {
				t.Fatalf("example %d (%s): %s %s is not a UUIDv7", i+1, e.Event, name, id)
			}
		}
		for name, s := range map[string]events.Snowflake{"guild_id": e.GuildID, "actor_id": e.ActorID} {
			if err := s.Validate(); err != nil {
				t.Fatalf("example %d (%s): %s: %v", i+1, e.Event, name, err)
			}
		}
	}

	// One section per event, each with one example of that event.
	sections := map[string]string{}
	for _, s := range strings.Split(string(doc), "\n### ")[1:] {
		heading, body, _ := strings.Cut(s, "\n")
		sections[strings.TrimSpace(heading)] = body
	}
	for _, n := range events.Names() {
		body, ok := sections[string(n)]
		if !ok {
			t.Fatalf("docs/events.md has no section \"### %s\"", n)
		}
		ex := jsonBlock.FindAllStringSubmatch(body, -1)
		if len(ex) != 1 {
			t.Fatalf("section %s has %d examples, want 1", n, len(ex))
		}
		e, err := codec.Decode([]byte(ex[0][1]))
		if err != nil {
			t.Fatalf("section %s: %v", n, err)
		}
		if e.Event != n || e.Data.EventName() != n {
			t.Fatalf("section %s: example is a %s event", n, e.Event)
		}
	}
	// One per event, and the sealed example of "Sealed personal text"
	// (events/shred's tests open it).
	if len(blocks) != len(events.Names())+1 {
		t.Fatalf("docs/events.md has %d examples, want one per event (%d) and the sealed one", len(blocks), len(events.Names()))
	}
}
