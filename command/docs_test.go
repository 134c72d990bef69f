package command_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/command"
)

// docsExample is one request of docs/commands.md with the reply it
// documents.
type docsExample struct {
	line    int    // line of the request marker, for messages
	section string // the "### " heading the example is under, "" if none
	subject string
	at      time.Time
	request []byte
	reply   []byte
	isError bool // the reply is an "Error reply:"
}

func (e docsExample) String() string {
	return fmt.Sprintf("docs/commands.md:%d (%s)", e.line, e.subject)
}

// docsMarker matches the marked examples: a request line, a reply line or an
// error reply line, a blank line and a ```json block. The conventions are
// described in an HTML comment at the top of docs/commands.md.
var docsMarker = regexp.MustCompile("(?m)^(?:Request to `([^`]+)` at (\\S+):|(Reply):|(Error reply):)\n\n```json\n((?s:.*?))\n```")

// docsVolatile are the reply keys whose values the ledger makes (ids and
// stream positions); an example shows realistic ones, and only their kind
// is compared.
var docsVolatile = map[string]bool{"case_id": true, "note_id": true, "seq": true, "version": true}

// docsParse returns the examples of doc, in order.
func docsParse(t *testing.T, doc string) []docsExample {
	t.Helper()
	// The heading above each position.
	type heading struct {
		pos  int
		name string
	}
	var headings []heading
	pos := 0
	for _, l := range strings.SplitAfter(doc, "\n") {
		switch {
		case strings.HasPrefix(l, "### "):
			headings = append(headings, heading{pos, strings.TrimSpace(strings.TrimPrefix(l, "### "))})
		case strings.HasPrefix(l, "## "), strings.HasPrefix(l, "# "):
			headings = append(headings, heading{pos, ""})
		}
		pos += len(l)
	}
	sectionAt := func(p int) string {
		name := ""
		for _, h := range headings {
			if h.pos > p {
				break
			}
			name = h.name
		}
		return name
	}

	var out []docsExample
	for _, m := range docsMarker.FindAllStringSubmatchIndex(doc, -1) {
		group := func(i int) string {
			if m[2*i] < 0 {
				return ""
			}
			return doc[m[2*i]:m[2*i+1]]
		}
		line := strings.Count(doc[:m[0]], "\n") + 1
		body := []byte(group(5))
		switch {
		case group(1) != "":
			at, err := time.Parse(time.RFC3339, group(2))
			if err != nil {
				t.Fatalf("docs/commands.md:%d: request time %q: %v", line, group(2), err)
			}
			out = append(out, docsExample{line: line, section: sectionAt(m[0]), subject: group(1), at: at, request: body})
		default:
			if len(out) == 0 || out[len(out)-1].reply != nil {
				t.Fatalf("docs/commands.md:%d: a reply without a request before it", line)
			}
			out[len(out)-1].reply = body
			out[len(out)-1].isError = group(4) != ""
		}
	}
	for _, e := range out {
		if e.reply == nil {
			t.Fatalf("%s: request without a reply", e)
		}
	}
	return out
}

// docsSetClock sets the service's clock.
func docsSetClock(c *testClock, at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}

// docsDecode decodes a JSON object, keeping numbers as written.
func docsDecode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, fmt.Errorf("trailing data")
	}
	return v, nil
}

// docsCompare reports the differences between a documented value and the
// real one: keys must be the same everywhere; values must be equal except
// for the volatile keys, whose documented ids are mapped to the real ones in
// ids (the same documented id must always stand for the same real one).
func docsCompare(path string, want, got any, ids map[string]string) []string {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: documented an object, got %v", path, got)}
		}
		var diffs []string
		for k := range w {
			if _, ok := g[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: documented, missing from the reply", path, k))
			}
		}
		for k := range g {
			if _, ok := w[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("%s.%s: in the reply (%v), not documented", path, k, g[k]))
			}
		}
		for k, wv := range w {
			gv, ok := g[k]
			if !ok {
				continue
			}
			if docsVolatile[k] {
				diffs = append(diffs, docsCompareVolatile(path+"."+k, wv, gv, ids)...)
				continue
			}
			diffs = append(diffs, docsCompare(path+"."+k, wv, gv, ids)...)
		}
		slices.Sort(diffs)
		return diffs
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return []string{fmt.Sprintf("%s: documented %d elements, got %v", path, len(w), got)}
		}
		var diffs []string
		for i := range w {
			diffs = append(diffs, docsCompare(fmt.Sprintf("%s[%d]", path, i), w[i], g[i], ids)...)
		}
		return diffs
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: documented %v, got %v", path, want, got)}
	}
	return nil
}

func docsCompareVolatile(path string, want, got any, ids map[string]string) []string {
	switch w := want.(type) {
	case string:
		g, ok := got.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: documented a string, got %v", path, got)}
		}
		wid, err1 := uuid.Parse(w)
		gid, err2 := uuid.Parse(g)
		if err1 != nil || err2 != nil || wid.Version() != 7 || gid.Version() != 7 {
			return []string{fmt.Sprintf("%s: documented %q, got %q: want UUIDv7s", path, w, g)}
		}
		if prev, ok := ids[w]; ok && prev != g {
			return []string{fmt.Sprintf("%s: documented %s stands for %s earlier and for %s here", path, w, prev, g)}
		}
		for d, r := range ids {
			if r == g && d != w {
				return []string{fmt.Sprintf("%s: documented %s here and %s earlier for the same id %s", path, w, d, g)}
			}
		}
		ids[w] = g
	case json.Number:
		g, ok := got.(json.Number)
		if _, err := strconv.ParseUint(string(w), 10, 64); err != nil || !ok {
			return []string{fmt.Sprintf("%s: documented %v, got %v: want positive integers", path, want, got)}
		}
		if _, err := strconv.ParseUint(string(g), 10, 64); err != nil {
			return []string{fmt.Sprintf("%s: got %v: want a positive integer", path, got)}
		}
	default:
		return []string{fmt.Sprintf("%s: documented %v, which is not an id or a sequence", path, want)}
	}
	return nil
}

// docsSeqs returns a success reply's seq, checking that it is what the
// reply's cases say: the version of its one case, or the highest version of
// its cases.
func docsSeqs(t *testing.T, what string, reply map[string]any) uint64 {
	t.Helper()
	num := func(v any) uint64 {
		n, err := strconv.ParseUint(fmt.Sprint(v), 10, 64)
		if err != nil {
			t.Fatalf("%s: %v is not a sequence", what, v)
		}
		return n
	}
	if changed, ok := reply["changed"].([]any); ok {
		// A set command's reply: its own seq is where it resolved its
		// filter; the cases it changed carry theirs.
		var seq uint64
		for _, c := range changed {
			if v, ok := c.(map[string]any)["seq"]; ok {
				seq = max(seq, num(v))
			}
		}
		return seq
	}
	seq := num(reply["seq"])
	var versions []uint64
	if c, ok := reply["case"].(map[string]any); ok {
		versions = append(versions, num(c["version"]))
	}
	if cs, ok := reply["cases"].([]any); ok {
		for _, c := range cs {
			versions = append(versions, num(c.(map[string]any)["version"]))
		}
	}
	if len(versions) == 0 || slices.Max(versions) != seq {
		t.Fatalf("%s: seq %d, but the case versions are %v", what, seq, versions)
	}
	return seq
}

// docsRequest sends a request, and sends it again while the service's
// subscriptions have not reached the server yet (no responders).
func docsRequest(t *testing.T, b *testBundle, subject string, body []byte) (*nats.Msg, error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := b.nc.Request(subject, body, 30*time.Second)
		if !errors.Is(err, nats.ErrNoResponders) || time.Now().After(deadline) {
			return msg, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestDocsCommandExamples keeps docs/commands.md in step with the service:
// every request example is sent, in order, to a real command service whose
// clock is set to the example's time, and the reply must be the documented
// one (ids and stream positions aside). Every endpoint has its section.
func TestDocsCommandExamples(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../docs/commands.md")
	if err != nil {
		t.Fatalf("read the command reference: %v", err)
	}
	examples := docsParse(t, string(raw))
	if len(examples) == 0 {
		t.Fatal("docs/commands.md has no marked examples")
	}
	b := setup(t)

	// Every endpoint the running service reports has a section with one
	// successful example of that command, and every section is an endpoint.
	msg, err := docsRequest(t, b, "$SRV.INFO."+command.ServiceName, nil)
	if err != nil {
		t.Fatalf("service info: %v", err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("service info: %v", err)
	}
	endpoints := map[string]bool{}
	for _, ep := range info.Endpoints {
		endpoints[ep.Name] = true
		var found []docsExample
		for _, e := range examples {
			if e.section == ep.Name {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			t.Fatalf("docs/commands.md: section \"### %s\" has %d examples, want 1", ep.Name, len(found))
		}
		if !strings.HasSuffix(found[0].subject, "."+ep.Name) || found[0].isError {
			t.Fatalf("%s: the example of %s must be a successful %s command", found[0], ep.Name, ep.Name)
		}
	}
	if len(endpoints) != 17 {
		t.Fatalf("the service has %d endpoints, want 17", len(endpoints))
	}
	for _, e := range examples {
		if e.section != "" && !endpoints[e.section] {
			t.Fatalf("%s: under \"### %s\", which is not a command", e, e.section)
		}
	}

	// Command ids are UUIDv7s and distinct: the service would replay a
	// repeated one.
	seen := map[uuid.UUID]string{}
	for _, e := range examples {
		var meta command.Meta
		if err := json.Unmarshal(e.request, &meta); err != nil {
			t.Fatalf("%s: request: %v", e, err)
		}
		// The expire command's id is derived (a UUIDv5), every other one
		// is a UUIDv7.
		if want := uuid.Version(7); e.section == "expire" {
			if meta.CommandID.Version() != 5 {
				t.Fatalf("%s: command_id %s is not a UUIDv5", e, meta.CommandID)
			}
		} else if meta.CommandID.Version() != want {
			t.Fatalf("%s: command_id %s is not a UUIDv7", e, meta.CommandID)
		}
		if prev, dup := seen[meta.CommandID]; dup {
			t.Fatalf("%s: command_id %s is also used at %s", e, meta.CommandID, prev)
		}
		seen[meta.CommandID] = e.String()
	}

	ids := map[string]string{} // documented id -> real id
	var clock time.Time
	var docSeq uint64
	for _, e := range examples {
		if e.at.Before(clock) {
			t.Fatalf("%s: sent at %s, before the example above it (%s)", e, e.at, clock)
		}
		clock = e.at
		docsSetClock(b.clock, e.at)
		body := string(e.request)
		for doc, real := range ids {
			body = strings.ReplaceAll(body, strconv.Quote(doc), strconv.Quote(real))
		}
		msg, err := docsRequest(t, b, e.subject, []byte(body))
		if err != nil {
			t.Fatalf("%s: request: %v", e, err)
		}
		got, err := docsDecode(msg.Data)
		if err != nil {
			t.Fatalf("%s: reply %q: %v", e, msg.Data, err)
		}
		want, err := docsDecode(e.reply)
		if err != nil {
			t.Fatalf("%s: documented reply: %v", e, err)
		}
		status := msg.Header.Get("Nats-Service-Error-Code")

		if e.isError {
			var we struct{ Error *command.Error }
			if err := json.Unmarshal(e.reply, &we); err != nil || we.Error == nil {
				t.Fatalf("%s: documented error reply does not decode: %v", e, err)
			}
			if status != strconv.Itoa(we.Error.Code.Status()) || msg.Header.Get("Nats-Service-Error") != we.Error.Message {
				t.Fatalf("%s: headers %v, want status %d and the message %q", e, msg.Header, we.Error.Code.Status(), we.Error.Message)
			}
			if diffs := docsCompare("reply", want, got, ids); len(diffs) > 0 {
				t.Fatalf("%s: the reply is not the documented one:\n%s\ngot %s", e, strings.Join(diffs, "\n"), msg.Data)
			}
			continue
		}

		if status != "" {
			t.Fatalf("%s: error reply %s %s", e, status, msg.Data)
		}
		// The reply decodes into the client's result types, field by field.
		dec := json.NewDecoder(bytes.NewReader(msg.Data))
		dec.DisallowUnknownFields()
		var res any = &command.Result{}
		if _, many := got["cases"]; many {
			res = &command.ManyResult{}
		}
		if _, set := got["matched"]; set {
			res = &command.SetResult{}
		}
		if err := dec.Decode(res); err != nil {
			t.Fatalf("%s: reply does not decode into %T: %v", e, res, err)
		}
		if diffs := docsCompare("reply", want, got, ids); len(diffs) > 0 {
			t.Fatalf("%s: the reply is not the documented one:\n%s\ngot %s", e, strings.Join(diffs, "\n"), msg.Data)
		}
		// The documented and the real reply each have a consistent seq, and
		// the documented ones grow as the stream would.
		docsSeqs(t, e.String()+" (real reply)", got)
		s := docsSeqs(t, e.String()+" (documented reply)", want)
		if _, set := want["matched"]; set && s == 0 {
			continue // a set command that appended nothing
		}
		if s <= docSeq {
			t.Fatalf("%s: documented seq %d is not above the previous example's %d", e, s, docSeq)
		}
		docSeq = s
	}
}
