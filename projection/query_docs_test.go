package projection

import (
	"bytes"
	"context"
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

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// queryDocsPath is the query reference whose examples the test runs.
const queryDocsPath = "../docs/queries.md"

// queryDocsStep is one command of the example guild's history (the section
// "The example guild" of docs/queries.md): it is sent to a real command
// service whose clock reads at. The documented ids and stream positions it
// makes stand for the real ones in the examples.
type queryDocsStep struct {
	at      string // RFC 3339
	subject string // <guild>.<command>, after modledger.cmd.
	body    string
	// seqs are the documented stream sequences of the events the command
	// appends, in order (one case), or of the versions of the cases it
	// opens (open_many and import).
	seqs []uint64
	// caseIDs are the documented ids of the cases it opens, in order.
	caseIDs []string
	// noteID is the documented id of the note it adds.
	noteID string
}

// The example guild's people.
const (
	qdGuild = "1128457362048573440"
	qdOther = "1051437985216925746"
)

// queryDocsFixture is the history the examples query: the examples of
// docs/commands.md (without the failed timeout and the redaction, which
// comes weeks later) and a few more cases, with the seqs and ids that page
// shows.
var queryDocsFixture = []queryDocsStep{
	{at: "2026-11-25T12:04:05Z", subject: qdGuild + ".open", seqs: []uint64{48213},
		caseIDs: []string{"01a21297-7308-7980-b643-54fdd926f979"},
		body: `{"command_id":"01a21297-72d6-7cc1-b93f-a483aa5ffdd4","type":"TEMPBAN","user_id":"934871256019738654",
			"moderator_id":"272937604339466240","reason":"spamming invite links in #general","expires_at":"2026-12-02T12:04:05Z",
			"user_roles":["1128459011873853470","1131920475628843049"],
			"metadata":{"channel_id":"1128460376495259688","messages_deleted":14},"source":"audit_log","external_id":"1310594711937486858"}`},
	{at: "2026-11-25T12:31:10Z", subject: qdGuild + ".open_many", seqs: []uint64{48260, 48261, 48262},
		caseIDs: []string{"01a212b0-3eb0-708a-93ce-5cb5210280a1", "01a212b0-3eb0-7768-bfc3-d32cf1886d15", "01a212b0-3eb0-79ac-9e8a-c5c182b0706f"},
		body: `{"command_id":"01a212b0-3e9c-74c9-a5c0-d78e8223484a","correlation_id":"01a212b0-3ea6-73ab-a8fc-9e17d86c7ca5",
			"actor_id":"1097204518803394560","cases":[
			{"type":"BAN","user_id":"1310577261547913236","moderator_id":"1097204518803394560","reason":"raid: joined through invite x7Kq2pZ and posted the same message","source":"automod"},
			{"type":"BAN","user_id":"1310577268128776192","moderator_id":"1097204518803394560","reason":"raid: joined through invite x7Kq2pZ and posted the same message","source":"automod"},
			{"type":"BAN","user_id":"1310577274017587250","moderator_id":"1097204518803394560","reason":"raid: joined through invite x7Kq2pZ and posted the same message","source":"automod"}]}`},
	{at: "2026-11-25T13:00:00Z", subject: qdOther + ".import", seqs: []uint64{48391, 48392},
		caseIDs: []string{"01a212ca-a480-72d5-ba1e-2ab12e1479aa", "01a212ca-a480-75d9-8fad-0b83a083960e"},
		body: `{"command_id":"01a212ca-a41c-72dd-8290-f124cc7c2632","actor_id":"1097204518803394560","cases":[
			{"case_number":1,"type":"WARN","user_id":"688247011372335124","moderator_id":"519287317862547466","reason":"slurs in #memes",
			 "created_at":"2024-09-14T18:22:03Z","imported_from":"tux"},
			{"case_number":3,"type":"TEMPBAN","user_id":"613425648685547541","moderator_id":"519287317862547466","reason":"raid participant",
			 "expires_at":"2025-05-17T21:04:55Z","created_at":"2025-05-10T21:04:55Z","expiry_processed":true,
			 "mod_log_message_id":"1370861502330998784","imported_from":"tux"}]}`},
	{at: "2026-11-26T09:00:12Z", subject: qdGuild + ".update", seqs: []uint64{51007, 51008, 51009},
		body: `{"command_id":"01a21715-7542-74ed-be04-7e414047314d","actor_id":"272937604339466240","case_number":1,
			"case_id":"01a21297-7308-7980-b643-54fdd926f979","reason":"spamming invite links in #general; alt of a banned account",
			"expires_at":"2026-12-09T12:04:05Z",
			"metadata":{"channel_id":"1128460376495259688","messages_deleted":14,"alt_of":"613425648685547541"}}`},
	{at: "2026-11-27T17:45:30Z", subject: qdGuild + ".close", seqs: []uint64{53870},
		body: `{"command_id":"01a21e1c-be2c-7eb4-b734-52229f338354","actor_id":"801124585264578560","case_number":1,"reason":"appeal accepted"}`},
	{at: "2026-11-27T18:02:08Z", subject: qdGuild + ".reopen", seqs: []uint64{53902},
		body: `{"command_id":"01a21e2b-f89c-76f0-9985-758427cc7faa","actor_id":"272937604339466240","case_number":1,
			"reason":"appeal was filed from an alt account"}`},
	{at: "2026-11-27T18:05:44Z", subject: qdGuild + ".add_note", seqs: []uint64{53911}, noteID: "01a21e2f-44c0-7b20-b635-e06fb36792b5",
		body: `{"command_id":"01a21e2f-445c-750c-9f6e-c437f5debcc4","actor_id":"801124585264578560","case_number":1,
			"text":"Same invite code as the raid on 2026-11-20.",
			"evidence_urls":["https://discord.com/channels/1128457362048573440/1128460376495259688/1310594702348124160"]}`},
	{at: "2026-11-27T18:05:45Z", subject: qdGuild + ".link_mod_log", seqs: []uint64{53912},
		body: `{"command_id":"01a21e2f-4844-795e-bb7b-7c2deefbeab3","actor_id":"1097204518803394560","case_number":1,
			"mod_log_message_id":"1310987346712305664","mod_log_channel_id":"1128461095570931752"}`},
	{at: "2026-12-01T16:20:31Z", subject: qdGuild + ".open", seqs: []uint64{61354},
		caseIDs: []string{"01a23268-6098-77bf-8fe0-6cb978799efe"},
		body: `{"command_id":"01a23268-6070-7d50-9340-3d288dd08eae","type":"WARN","user_id":"1046893857390514277",
			"moderator_id":"801124585264578560","reason":"slurs in #memes","user_roles":["1128459011873853470"]}`},
	{at: "2026-12-03T21:47:09Z", subject: qdGuild + ".open", seqs: []uint64{66720},
		caseIDs: []string{"01a23de0-2348-7cd1-a2c2-bd3f5c9c461e"},
		body: `{"command_id":"01a23de0-2325-74f3-86f7-e54e48f33781","type":"TIMEOUT","user_id":"1046893857390514277",
			"moderator_id":"801124585264578560","reason":"slurs in #memes again, after a warning","expires_at":"2026-12-10T21:47:09Z",
			"user_roles":["1128459011873853470"]}`},
	{at: "2026-12-05T10:12:44Z", subject: qdGuild + ".open", seqs: []uint64{70104},
		caseIDs: []string{"01a245b1-1960-7f1e-adf6-e382a9a73da4"},
		body: `{"command_id":"01a245b1-192c-7b7b-a88a-0d6d214c5315","type":"WARN","user_id":"1046893857390514277",
			"moderator_id":"272937604339466240","reason":"slurs in #memes","user_roles":["1128459011873853470"]}`},
	{at: "2026-12-05T10:15:02Z", subject: qdGuild + ".close", seqs: []uint64{70109},
		body: `{"command_id":"01a245b3-3454-7b28-9cc0-7f692a56e380","actor_id":"272937604339466240","case_number":7,
			"reason":"duplicate of case 5"}`},
	{at: "2026-12-06T19:30:00Z", subject: qdGuild + ".open", seqs: []uint64{72466},
		caseIDs: []string{"01a24cd5-a6c0-70ef-a391-a5c480e40849"},
		body: `{"command_id":"01a24cd5-a683-78bf-a4dd-e92dc58ba462","type":"TEMPBAN","user_id":"1239550847266668614",
			"moderator_id":"272937604339466240","reason":"ban evasion with an alt account","expires_at":"2026-12-08T19:30:00Z"}`},
	{at: "2026-12-07T08:00:00Z", subject: qdOther + ".open", seqs: []uint64{74012},
		caseIDs: []string{"01a24f84-4c00-7102-bd2d-67603ec82d85"},
		body: `{"command_id":"01a24f84-4bd4-7d82-a9e8-d51afa793fa2","type":"TEMPBAN","user_id":"613425648685547541",
			"moderator_id":"519287317862547466","reason":"raid participant, back after the last tempban","expires_at":"2026-12-09T08:00:00Z"}`},
	{at: "2026-12-09T12:04:07Z", subject: qdGuild + ".mark_expiry_processed", seqs: []uint64{79204},
		body: `{"command_id":"01a25ab0-8274-75cc-ba95-57be971c2d68","actor_id":"1097204518803394560","case_number":1}`},
	{at: "2026-12-09T22:41:18Z", subject: qdGuild + ".open", seqs: []uint64{79950},
		caseIDs: []string{"01a25cf7-deb0-7626-b974-74bf79eb93ad"},
		body: `{"command_id":"01a25cf7-de89-777a-958e-b68e1b29af12","type":"JAIL","user_id":"1302004875593138246",
			"moderator_id":"801124585264578560","reason":"posting screenshots of DMs",
			"user_roles":["1128459011873853470","1131920475628843049"],"metadata":{"channel_id":"1128460376495259688"}}`},
	{at: "2026-12-10T08:15:00Z", subject: qdGuild + ".delete", seqs: []uint64{80117},
		body: `{"command_id":"01a25f05-1b3c-7daf-9665-e8e670857d52","actor_id":"801124585264578560","case_number":3,
			"case_id":"01a212b0-3eb0-7768-bfc3-d32cf1886d15","reason":"member was caught in the raid ban by mistake"}`},
}

// queryDocsParams and queryDocsResults are each query's params and result
// types: a section's params table must list the params' JSON fields, and
// a reply must decode into the result strictly.
var (
	queryDocsParams = map[string]any{
		QueryCaseGet: CaseGetParams{}, QueryCaseGetByID: CaseGetByIDParams{}, QueryCaseExists: CaseExistsParams{},
		QueryCaseList: CaseListParams{}, QueryCaseCount: CaseCountParams{}, QueryCaseNumbers: CaseNumbersParams{}, QueryCaseHistory: CaseHistoryParams{},
		QueryCaseNotes: CaseNotesParams{}, QueryUserCases: UserCasesParams{}, QueryUserActiveCases: UserActiveCasesParams{},
		QueryUserLatestCase: UserLatestCaseParams{}, QueryUserCaseCount: UserCaseCountParams{},
		QueryUserRestriction: UserRestrictionParams{}, QueryUserRestrictions: UserRestrictionsParams{},
		QueryModeratorCases: ModeratorCasesParams{}, QueryTypeCases: TypeCasesParams{}, QueryGuildCases: GuildCasesParams{},
		QueryGuildCaseCount: GuildCaseCountParams{}, QueryGuildStatistics: GuildStatisticsParams{},
		QueryRecentCases: RecentCasesParams{}, QueryDueExpiries: DueExpiriesParams{},
	}
	queryDocsResults = map[string]func() any{
		QueryCaseGet: func() any { return &CaseGetResult{} }, QueryCaseGetByID: func() any { return &CaseGetResult{} },
		QueryCaseExists: func() any { return &CaseExistsResult{} }, QueryCaseList: func() any { return &CaseListResult{} },
		QueryCaseCount: func() any { return &CaseCountResult{} }, QueryCaseNumbers: func() any { return &CaseNumbersResult{} }, QueryCaseHistory: func() any { return &CaseHistoryResult{} },
		QueryCaseNotes: func() any { return &CaseNotesResult{} }, QueryUserCases: func() any { return &CaseListResult{} },
		QueryUserActiveCases: func() any { return &CaseListResult{} }, QueryUserLatestCase: func() any { return &UserLatestCaseResult{} },
		QueryUserCaseCount: func() any { return &CaseCountResult{} }, QueryUserRestriction: func() any { return &UserRestrictionResult{} },
		QueryUserRestrictions: func() any { return &UserRestrictionsResult{} }, QueryModeratorCases: func() any { return &CaseListResult{} },
		QueryTypeCases: func() any { return &CaseListResult{} }, QueryGuildCases: func() any { return &CaseListResult{} },
		QueryGuildCaseCount: func() any { return &CaseCountResult{} }, QueryGuildStatistics: func() any { return &GuildStatisticsResult{} },
		QueryRecentCases: func() any { return &CaseListResult{} }, QueryDueExpiries: func() any { return &CaseListResult{} },
	}
)

// queryDocsExample is one request of docs/queries.md with the reply it
// documents.
type queryDocsExample struct {
	line    int    // line of the request marker, for messages
	section string // the "### " heading the example is under, "" if none
	subject string
	at      time.Time
	request []byte
	reply   []byte
	isError bool // the reply is an "Error reply:"
}

func (e queryDocsExample) String() string {
	return fmt.Sprintf("docs/queries.md:%d (%s)", e.line, e.subject)
}

// query returns the last token of the example's subject.
func (e queryDocsExample) query() string { return e.subject[strings.LastIndexByte(e.subject, '.')+1:] }

// queryDocsMarker matches the marked examples, as in docs/commands.md: a
// request line, a reply line or an error reply line, a blank line and a
// ```json block. The conventions are in an HTML comment at the top of
// docs/queries.md.
var queryDocsMarker = regexp.MustCompile("(?m)^(?:Request to `([^`]+)` at (\\S+):|(Reply):|(Error reply):)\n\n```json\n((?s:.*?))\n```")

// queryDocsHeading is a heading of the page: its offset, its level (the
// number of #) and its text.
type queryDocsHeading struct {
	pos   int
	level int
	name  string
}

// queryDocsHeadings returns the headings of doc, outside code blocks.
func queryDocsHeadings(doc string) []queryDocsHeading {
	var hs []queryDocsHeading
	pos := 0
	inCode := false
	for _, l := range strings.SplitAfter(doc, "\n") {
		if strings.HasPrefix(l, "```") {
			inCode = !inCode
		}
		if !inCode && strings.HasPrefix(l, "#") {
			level := len(l) - len(strings.TrimLeft(l, "#"))
			hs = append(hs, queryDocsHeading{pos, level, strings.TrimSpace(l[level:])})
		}
		pos += len(l)
	}
	return hs
}

// queryDocsSection returns the text of the section whose heading is
// "<level #> name", up to the next heading of that level or above.
func queryDocsSection(doc string, level int, name string) (string, bool) {
	hs := queryDocsHeadings(doc)
	for i, h := range hs {
		if h.level != level || h.name != name {
			continue
		}
		end := len(doc)
		for _, n := range hs[i+1:] {
			if n.level <= level {
				end = n.pos
				break
			}
		}
		return doc[h.pos:end], true
	}
	return "", false
}

// queryDocsParse returns the examples of doc, in order.
func queryDocsParse(t *testing.T, doc string) []queryDocsExample {
	t.Helper()
	hs := queryDocsHeadings(doc)
	sectionAt := func(p int) string {
		name := ""
		for _, h := range hs {
			if h.pos > p {
				break
			}
			name = ""
			if h.level == 3 {
				name = h.name
			}
		}
		return name
	}
	var out []queryDocsExample
	for _, m := range queryDocsMarker.FindAllStringSubmatchIndex(doc, -1) {
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
				t.Fatalf("docs/queries.md:%d: request time %q: %v", line, group(2), err)
			}
			out = append(out, queryDocsExample{line: line, section: sectionAt(m[0]), subject: group(1), at: at, request: body})
		default:
			if len(out) == 0 || out[len(out)-1].reply != nil {
				t.Fatalf("docs/queries.md:%d: a reply without a request before it", line)
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

// queryDocsDecode decodes a JSON object, keeping numbers as written.
func queryDocsDecode(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("trailing data")
	}
	return v, nil
}

// queryDocsIDs maps what the examples show to what the ledger made.
type queryDocsIDs struct {
	ids      map[string]string // documented case or note id -> real one
	seqs     map[uint64]uint64 // documented stream sequence -> real one
	events   map[string]string // documented event id -> real one, as met
	lastDoc  uint64            // the highest documented sequence
	lastReal uint64            // and the real one it stands for
}

// realSeq returns the real sequence a documented min_seq stands for: a
// documented sequence of the example guild, or, above the last one, as far
// above the real last one.
func (m *queryDocsIDs) realSeq(doc uint64) (uint64, bool) {
	if r, ok := m.seqs[doc]; ok {
		return r, true
	}
	if doc > m.lastDoc {
		return m.lastReal + (doc - m.lastDoc), true
	}
	return 0, false
}

var queryDocsMinSeq = regexp.MustCompile(`"min_seq":\s*(\d+)`)

// request returns an example's request body with the documented ids and
// sequences replaced by the real ones.
func (m *queryDocsIDs) request(t *testing.T, e queryDocsExample) []byte {
	t.Helper()
	body := string(e.request)
	for doc, real := range m.ids {
		body = strings.ReplaceAll(body, strconv.Quote(doc), strconv.Quote(real))
	}
	var bad error
	body = queryDocsMinSeq.ReplaceAllStringFunc(body, func(s string) string {
		n, err := strconv.ParseUint(queryDocsMinSeq.FindStringSubmatch(s)[1], 10, 64)
		if err != nil {
			bad = err
			return s
		}
		r, ok := m.realSeq(n)
		if !ok {
			bad = fmt.Errorf("min_seq %d is not a sequence of the example guild (see the fixture in query_docs_test.go)", n)
			return s
		}
		return `"min_seq": ` + strconv.FormatUint(r, 10)
	})
	if bad != nil {
		t.Fatalf("%s: %v", e, bad)
	}
	return []byte(body)
}

// queryDocsPinned are the reply keys whose documented values stand for ids
// the fixture made; queryDocsSeqKeys those that hold stream sequences.
var (
	queryDocsPinned  = map[string]bool{"case_id": true, "note_id": true}
	queryDocsSeqKeys = map[string]bool{"seq": true, "version": true}
)

// compare reports the differences between a documented value and the real
// one: keys must be the same everywhere, and values equal, where the
// documented ids and sequences stand for the real ones and event ids (which
// the ledger makes) need only be UUIDv7s, the same documented one always
// for the same real one.
func (m *queryDocsIDs) compare(path string, want, got any) []string {
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
			p := path + "." + k
			switch {
			case queryDocsPinned[k]:
				if ws, ok := wv.(string); !ok || m.ids[ws] == "" {
					diffs = append(diffs, fmt.Sprintf("%s: documented %v, which is no id of the example guild", p, wv))
				} else if gv != m.ids[ws] {
					diffs = append(diffs, fmt.Sprintf("%s: documented %s, which stands for %s; got %v", p, ws, m.ids[ws], gv))
				}
			case queryDocsSeqKeys[k]:
				wn, err := strconv.ParseUint(fmt.Sprint(wv), 10, 64)
				if r, ok := m.seqs[wn]; err != nil || !ok {
					diffs = append(diffs, fmt.Sprintf("%s: documented %v, which is no sequence of the example guild", p, wv))
				} else if fmt.Sprint(gv) != strconv.FormatUint(r, 10) {
					diffs = append(diffs, fmt.Sprintf("%s: documented %d, which stands for %d; got %v", p, wn, r, gv))
				}
			case k == "event_id":
				diffs = append(diffs, m.compareEventID(p, wv, gv)...)
			default:
				diffs = append(diffs, m.compare(p, wv, gv)...)
			}
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
			diffs = append(diffs, m.compare(fmt.Sprintf("%s[%d]", path, i), w[i], g[i])...)
		}
		return diffs
	}
	if !reflect.DeepEqual(want, got) {
		return []string{fmt.Sprintf("%s: documented %v, got %v", path, want, got)}
	}
	return nil
}

func (m *queryDocsIDs) compareEventID(path string, want, got any) []string {
	w, _ := want.(string)
	g, _ := got.(string)
	wid, err1 := uuid.Parse(w)
	gid, err2 := uuid.Parse(g)
	if err1 != nil || err2 != nil || wid.Version() != 7 || gid.Version() != 7 {
		return []string{fmt.Sprintf("%s: documented %v, got %v: want UUIDv7s", path, want, got)}
	}
	if prev, ok := m.events[w]; ok && prev != g {
		return []string{fmt.Sprintf("%s: documented %s stands for %s earlier and for %s here", path, w, prev, g)}
	}
	for d, r := range m.events {
		if r == g && d != w {
			return []string{fmt.Sprintf("%s: documented %s here and %s earlier for the same event %s", path, w, d, g)}
		}
	}
	m.events[w] = g
	return nil
}

// documented returns a real reply with the ids and sequences of the
// example guild written as the examples write them, indented: what the
// example should show, to paste into the page when it drifted.
func (m *queryDocsIDs) documented(reply []byte) string {
	s := string(reply)
	for d, r := range m.ids {
		s = strings.ReplaceAll(s, strconv.Quote(r), strconv.Quote(d))
	}
	realSeqs := map[uint64]uint64{}
	for d, r := range m.seqs {
		realSeqs[r] = d
	}
	s = queryDocsSeqValue.ReplaceAllStringFunc(s, func(v string) string {
		key, num, _ := strings.Cut(v, ":")
		n, _ := strconv.ParseUint(num, 10, 64)
		if d, ok := realSeqs[n]; ok {
			return key + ":" + strconv.FormatUint(d, 10)
		}
		return v
	})
	var out bytes.Buffer
	if json.Indent(&out, []byte(s), "", "  ") != nil {
		return s
	}
	return out.String()
}

var queryDocsSeqValue = regexp.MustCompile(`"(?:seq|version)":\d+`)

// queryDocsRequest sends a request, and sends it again while the service's
// subscriptions have not reached the server yet (no responders).
func queryDocsRequest(t *testing.T, nc *nats.Conn, subject string, body []byte) *nats.Msg {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		msg, err := nc.Request(subject, body, 30*time.Second)
		if errors.Is(err, nats.ErrNoResponders) && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if err != nil {
			t.Fatalf("request to %s: %v", subject, err)
		}
		return msg
	}
}

// queryDocsBuildFixture sends the fixture's commands and returns what the
// documented ids and sequences stand for.
func queryDocsBuildFixture(t *testing.T, b *ledgerBundle, nc *nats.Conn) *queryDocsIDs {
	t.Helper()
	m := &queryDocsIDs{ids: map[string]string{}, seqs: map[uint64]uint64{}, events: map[string]string{}}
	pin := func(step int, doc, real string) {
		if prev, ok := m.ids[doc]; ok && prev != real {
			t.Fatalf("fixture step %d: documented id %s stands for %s and %s", step, doc, prev, real)
		}
		m.ids[doc] = real
	}
	var lastAt time.Time
	for i, s := range queryDocsFixture {
		at, err := time.Parse(time.RFC3339, s.at)
		if err != nil || at.Before(lastAt) {
			t.Fatalf("fixture step %d: time %q (%v) before the step above", i, s.at, err)
		}
		lastAt = at
		b.clock.mu.Lock()
		b.clock.now = at
		b.clock.mu.Unlock()
		body := s.body
		for doc, real := range m.ids {
			body = strings.ReplaceAll(body, strconv.Quote(doc), strconv.Quote(real))
		}
		msg := queryDocsRequest(t, nc, "modledger.cmd."+s.subject, []byte(body))
		if code := msg.Header.Get(micro.ErrorCodeHeader); code != "" {
			t.Fatalf("fixture step %d (%s): error %s %s", i, s.subject, code, msg.Data)
		}
		var res struct {
			command.Result
			Cases []*aggregate.Case `json:"cases"`
		}
		if err := json.Unmarshal(msg.Data, &res); err != nil {
			t.Fatalf("fixture step %d: reply %s: %v", i, msg.Data, err)
		}
		var real []uint64
		var opened []*aggregate.Case
		if res.Cases != nil {
			for _, c := range res.Cases {
				real = append(real, c.Version)
			}
			opened = res.Cases
		} else {
			// The case's events are its last ones; a claim the command
			// also wrote is not a case event.
			for k := range res.Appended {
				real = append(real, res.Case.Version-uint64(res.Appended)+1+uint64(k))
			}
			if len(s.caseIDs) > 0 {
				opened = []*aggregate.Case{res.Case}
			}
		}
		if len(real) != len(s.seqs) || len(opened) != len(s.caseIDs) {
			t.Fatalf("fixture step %d: %d events and %d new cases, documented %d and %d", i, len(real), len(opened), len(s.seqs), len(s.caseIDs))
		}
		for k, d := range s.seqs {
			if d <= m.lastDoc || real[k] <= m.lastReal {
				t.Fatalf("fixture step %d: documented seq %d (real %d) is not above the one before (%d, real %d)", i, d, real[k], m.lastDoc, m.lastReal)
			}
			m.seqs[d], m.lastDoc, m.lastReal = real[k], d, real[k]
		}
		for k, id := range s.caseIDs {
			pin(i, id, opened[k].CaseID.String())
		}
		if s.noteID != "" {
			pin(i, s.noteID, res.Case.Notes[len(res.Case.Notes)-1].NoteID.String())
		}
	}
	return m
}

// queryDocsFields returns the JSON names of a params type's fields,
// without min_seq, which every query takes.
func queryDocsFields(t reflect.Type) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, queryDocsFields(f.Type)...)
			continue
		}
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name != "" && name != "-" && name != "min_seq" {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// queryDocsTable returns the rows (cells, trimmed) of the tables in text
// whose header's first cell is first.
func queryDocsTable(text, first string) [][]string {
	var rows [][]string
	in := false
	for _, l := range strings.Split(text, "\n") {
		if !strings.HasPrefix(l, "|") {
			in = false
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(l), "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		switch {
		case !in && cells[0] == first:
			in = true
		case in && strings.HasPrefix(cells[0], "---"):
		case in:
			rows = append(rows, cells)
		}
	}
	return rows
}

var queryDocsCode = regexp.MustCompile("`([^`]+)`")

// TestQueryDocsExamples keeps docs/queries.md in step with the query
// service: it builds the example guild through a real command service and
// projector, sends every request example, in order, to a real query service
// whose clock is set to the example's time, and compares each reply with
// the documented one. Every query has its section, whose params table lists
// the query's fields, and the table of the example guild is its cases.
func TestQueryDocsExamples(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(queryDocsPath)
	if err != nil {
		t.Fatalf("read the query reference: %v", err)
	}
	doc := string(raw)
	examples := queryDocsParse(t, doc)
	if len(examples) == 0 {
		t.Fatal("docs/queries.md has no marked examples")
	}

	b := setupLedger(t)
	b.startProjector(t)
	nc := b.env.Conn(t)
	ids := queryDocsBuildFixture(t, b, nc)
	b.waitCaughtUp(t, 30*time.Second)

	qclock := &testClock{now: examples[0].at}
	q, err := NewQueries(b.pool, SchemaDefault, &QueriesOpts{Now: qclock.Now, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	svc, err := NewQueryService(QueryServiceConfig{Conn: b.env.Conn(t), Queries: q, Store: b.store, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })

	// Every endpoint the running service reports has a section with one
	// successful example of that query and a params table of its fields.
	msg := queryDocsRequest(t, nc, "$SRV.INFO."+QueryServiceName, nil)
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatalf("service info: %v", err)
	}
	endpoints := map[string]bool{}
	for _, ep := range info.Endpoints {
		endpoints[ep.Name] = true
		var found []queryDocsExample
		for _, e := range examples {
			if e.section == ep.Name {
				found = append(found, e)
			}
		}
		if len(found) != 1 {
			t.Fatalf("docs/queries.md: section \"### %s\" has %d examples, want 1", ep.Name, len(found))
		}
		if found[0].query() != ep.Name || found[0].isError {
			t.Fatalf("%s: the example of %s must be a successful %s query", found[0], ep.Name, ep.Name)
		}
		params, ok := queryDocsParams[ep.Name]
		if !ok || queryDocsResults[ep.Name] == nil {
			t.Fatalf("query %s: add its params and result types to queryDocsParams and queryDocsResults", ep.Name)
		}
		section, _ := queryDocsSection(doc, 3, ep.Name)
		var listed []string
		for _, row := range queryDocsTable(section, "field") {
			for _, m := range queryDocsCode.FindAllStringSubmatch(row[0], -1) {
				listed = append(listed, m[1])
			}
		}
		slices.Sort(listed)
		if want := queryDocsFields(reflect.TypeOf(params)); !slices.Equal(listed, want) {
			t.Errorf("docs/queries.md: the params table of %s lists %v; the query's fields are %v", ep.Name, listed, want)
		}
	}
	if len(endpoints) != len(queryDocsParams) {
		t.Fatalf("the service has %d endpoints, the test knows %d queries", len(endpoints), len(queryDocsParams))
	}
	for _, e := range examples {
		if e.section != "" && !endpoints[e.section] {
			t.Fatalf("%s: under \"### %s\", which is not a query", e, e.section)
		}
		if !endpoints[e.query()] {
			t.Fatalf("%s: %s is not a query", e, e.query())
		}
	}

	// The table of the example guild is its cases.
	section, ok := queryDocsSection(doc, 2, "The example guild")
	if !ok {
		t.Fatal(`docs/queries.md has no section "## The example guild"`)
	}
	rows := queryDocsTable(section, "guild")
	opened := 0
	for _, s := range queryDocsFixture {
		opened += len(s.caseIDs)
	}
	if len(rows) != opened {
		t.Errorf("docs/queries.md: the example guild's table has %d cases, the fixture opens %d", len(rows), opened)
	}
	for _, row := range rows {
		if len(row) != 7 {
			t.Fatalf("docs/queries.md: example guild row %v: want 7 cells", row)
		}
		g, err1 := events.ParseSnowflake(row[0])
		n, err2 := strconv.ParseUint(row[1], 10, 32)
		if err1 != nil || err2 != nil {
			t.Fatalf("docs/queries.md: example guild row %v", row)
		}
		res, err := q.CaseGet(t.Context(), g, CaseGetParams{CaseNumber: uint32(n), IncludeDeleted: true})
		if err != nil {
			t.Fatalf("example guild row %v: %v", row, err)
		}
		c := res.Case
		state := string(c.Status)
		if c.Deleted {
			state = "deleted"
		}
		got := []string{row[0], row[1], c.Type, c.UserID.String(), c.ModeratorID.String(), c.CreatedAt.Format(time.RFC3339)}
		if !slices.Equal(row[:6], got) || !strings.HasPrefix(row[6], state) {
			t.Errorf("docs/queries.md: example guild row %v; the case is %v, %s", row, got, state)
		}
	}

	// The examples, in order.
	var clock time.Time
	for _, e := range examples {
		if e.at.Before(clock) {
			t.Fatalf("%s: sent at %s, before the example above it (%s)", e, e.at, clock)
		}
		clock = e.at
		qclock.mu.Lock()
		qclock.now = e.at
		qclock.mu.Unlock()
		msg := queryDocsRequest(t, nc, e.subject, ids.request(t, e))
		got, err := queryDocsDecode(msg.Data)
		if err != nil {
			t.Fatalf("%s: reply %q: %v", e, msg.Data, err)
		}
		want, err := queryDocsDecode(e.reply)
		if err != nil {
			t.Fatalf("%s: documented reply: %v", e, err)
		}
		status := msg.Header.Get(micro.ErrorCodeHeader)

		if e.isError {
			var we, ge struct{ Error *QueryError }
			if err := json.Unmarshal(e.reply, &we); err != nil || we.Error == nil {
				t.Fatalf("%s: documented error reply does not decode: %v", e, err)
			}
			if err := json.Unmarshal(msg.Data, &ge); err != nil || ge.Error == nil {
				t.Errorf("%s: not an error reply: %s %s", e, status, msg.Data)
				continue
			}
			if status != strconv.Itoa(we.Error.Code.Status()) || msg.Header.Get(micro.ErrorHeader) != ge.Error.Message {
				t.Errorf("%s: headers %v, want status %d and the message %q", e, msg.Header, we.Error.Code.Status(), ge.Error.Message)
			}
			// The message of unavailable holds the projection's position
			// and the wait: only its words are compared.
			if we.Error.Code == CodeUnavailable {
				digits := regexp.MustCompile(`\d+`)
				for _, m := range []map[string]any{want, got} {
					if inner, ok := m["error"].(map[string]any); ok {
						inner["message"] = digits.ReplaceAllString(fmt.Sprint(inner["message"]), "N")
					}
				}
			}
		} else {
			if status != "" {
				t.Errorf("%s: error reply %s %s", e, status, msg.Data)
				continue
			}
			// The reply decodes into the query's result type, field by field.
			dec := json.NewDecoder(bytes.NewReader(msg.Data))
			dec.DisallowUnknownFields()
			if res := queryDocsResults[e.query()](); dec.Decode(res) != nil {
				t.Errorf("%s: reply does not decode into %T: %s", e, res, msg.Data)
			}
		}
		if diffs := ids.compare("reply", want, got); len(diffs) > 0 {
			t.Errorf("%s: the reply is not the documented one:\n%s\nthe reply, with the documented ids:\n%s",
				e, strings.Join(diffs, "\n"), ids.documented(msg.Data))
		}
	}
}
