package shred

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/modledger/modledger/events"
)

// TestParsePersonalMatchesEncodingJSON: what appendJSON writes,
// parsePersonal reads as encoding/json does, or leaves to it.
func TestParsePersonalMatchesEncodingJSON(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(7, 8))
	texts := []string{"", "plain", `"quoted"`, `back\\slash`, "tab\there", "line\u2028sep", "🔨 ban", "\x01ctl", "<b>&amp;</b>", "bad \xff"}
	pick := func() string { return texts[r.IntN(len(texts))] }
	fast := 0
	for range 3000 {
		p := personal{Reason: pick(), Text: pick()}
		for range r.IntN(3) {
			p.EvidenceURLs = append(p.EvidenceURLs, "https://x.test/"+pick())
		}
		for range r.IntN(3) {
			p.UserRoles = append(p.UserRoles, events.Snowflake(1+r.Int64N(1<<62)))
		}
		switch r.IntN(4) {
		case 1:
			m, _ := json.Marshal(pick())
			p.Metadata = json.RawMessage(`{"a":` + string(m) + `,"n":[1,{"b":"}"}]}`)
		case 2:
			p.Metadata = json.RawMessage(`{"esc":"a\"}b\\"}`)
		}
		b, err := p.appendJSON(nil)
		if err != nil {
			t.Fatal(err)
		}
		var want personal
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		got, ok := parsePersonal(b)
		if !ok {
			continue
		}
		fast++
		if len(got.Metadata) == 0 {
			got.Metadata = nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("%s:\nparsed  %#v\njson    %#v", b, got, want)
		}
	}
	if fast < 200 {
		t.Fatalf("only %d of 3000 took the fast path", fast)
	}
	for _, bad := range []string{`{`, `{}x`, `{"reason":1}`, `{"other":"x"}`, `{"user_roles":["01"]}`, `{"user_roles":[1]}`,
		`{"metadata":[1]}`, `{"reason":"a" ,"text":"b"}`, `{"evidence_urls":["a",]}`} {
		if _, ok := parsePersonal([]byte(bad)); ok {
			t.Fatalf("%s parsed", bad)
		}
	}
	if p, ok := parsePersonal([]byte(`{}`)); !ok || !reflect.DeepEqual(p, personal{}) {
		t.Fatalf("{} parsed as %#v, %t", p, ok)
	}
	if p, ok := parsePersonal([]byte(`{"reason":"r","metadata":{"k":"v"},"user_roles":["5"]}`)); !ok || p.Reason != "r" || string(p.Metadata) != `{"k":"v"}` || p.UserRoles[0] != 5 {
		t.Fatalf("parsed as %#v, %t", p, ok)
	}
}

func TestParsePersonalTypicalOpenAllocs(t *testing.T) { // not parallel: AllocsPerRun
	p := personal{Reason: "spamming invite links in #general", UserRoles: []events.Snowflake{1128459011873853470},
		Metadata: json.RawMessage(`{"channel_id":"1128460376495259688"}`)}
	b, err := p.appendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := parsePersonal(b); !ok {
		t.Fatalf("%s takes the slow path", b)
	}
	// The reason and the roles.
	if got := testing.AllocsPerRun(100, func() { parsePersonal(b) }); got > 2 {
		t.Fatalf("parsePersonal: %v allocations, want at most 2", got)
	}
}
