package projection_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// The query fixture: two guilds, three days of cases. Numbers, users,
// moderators and times are spelled out so that every expected answer below
// can be checked by hand.
const (
	qGuild      events.Snowflake = 100
	qOtherGuild events.Snowflake = 200
	qEmptyGuild events.Snowflake = 300

	qAlice events.Snowflake = 1 // cases 1 BAN, 2 WARN, 5 UNBAN, 11 SNIPPETBAN
	qBob   events.Snowflake = 2 // cases 3 TEMPBAN (processed), 6 TIMEOUT, 7 WARN (deleted)
	qCarol events.Snowflake = 3 // cases 4 KICK (redacted), 8 NOTE (closed), 9 JAIL, 12 TEMPBAN
	qDave  events.Snowflake = 4 // case 10 TEMPBAN (due)
	qErin  events.Snowflake = 5 // guild 200: case 1 TEMPBAN (due)

	qMod9 events.Snowflake = 9 // cases 1, 2, 5, 6, 8, 11, 12
	qMod8 events.Snowflake = 8 // cases 3, 4, 9, 10 (and 7, deleted)

	qRole11 events.Snowflake = 11
	qRole12 events.Snowflake = 12
	qRole13 events.Snowflake = 13
)

var (
	qDay1 = time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	qDay2 = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	qDay3 = time.Date(2026, 11, 3, 1, 0, 0, 0, time.UTC)
	// qNow is the queries' clock: after every event.
	qNow = time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
)

func qTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

func qPtr[T any](v T) *T { return &v }

// buildQueryFixture appends the fixture's events to l.
func buildQueryFixture(t testing.TB, l *eventLog) {
	t.Helper()
	f := func(typ string, user, mod events.Snowflake, reason string) events.CaseFields {
		return events.CaseFields{Type: typ, UserID: user, ModeratorID: mod, Reason: reason}
	}
	open := func(g events.Snowflake, fields events.CaseFields, want uint32) {
		t.Helper()
		if n := l.open(g, fields); n != want {
			t.Fatalf("fixture: opened case %d, want %d", n, want)
		}
	}
	// Day 1, from 12:00:00, a second per command.
	l.now = qDay1
	c1 := f(aggregate.TypeBan, qAlice, qMod9, "raid spam links")
	c1.UserRoles = []events.Snowflake{qRole11, qRole12}
	c1.Metadata = json.RawMessage(`{"channel":"general","tags":["raid","spam"]}`)
	open(qGuild, c1, 1)
	c2 := f(aggregate.TypeWarn, qAlice, qMod9, "rude language in general")
	c2.UserRoles = []events.Snowflake{qRole11}
	open(qGuild, c2, 2)
	c3 := f(aggregate.TypeTempban, qBob, qMod8, "spam again")
	c3.ExpiresAt = qPtr(qTime("2026-11-03T00:00:00Z"))
	c3.UserRoles = []events.Snowflake{qRole12}
	c3.Metadata = json.RawMessage(`{"tags": ["spam"]}`)
	open(qGuild, c3, 3)
	c4 := f(aggregate.TypeKick, qCarol, qMod8, "alt account")
	c4.UserRoles = []events.Snowflake{qRole12, qRole13}
	open(qGuild, c4, 4)
	o1 := f(aggregate.TypeTempban, qErin, qMod9, "raid")
	o1.ExpiresAt = qPtr(qTime("2026-11-02T06:00:00Z"))
	open(qOtherGuild, o1, 1)

	// Day 2, from 09:00:00.
	l.now = qDay2
	open(qGuild, f(aggregate.TypeUnban, qAlice, qMod9, "appeal accepted"), 5)
	c6 := f(aggregate.TypeTimeout, qBob, qMod9, "flooding")
	c6.ExpiresAt = qPtr(qTime("2026-11-02T10:00:00Z"))
	open(qGuild, c6, 6)
	open(qGuild, f(aggregate.TypeWarn, qBob, qMod8, "spam links"), 7)
	l.do(qGuild, 7, qMod9, aggregate.DeleteCase{Reason: "wrong user"})
	open(qGuild, f(aggregate.TypeNote, qCarol, qMod9, "watch this user"), 8)
	l.do(qGuild, 8, qMod9, aggregate.CloseCase{Reason: "resolved"})
	c9 := f(aggregate.TypeJail, qCarol, qMod8, "raid")
	c9.UserRoles = []events.Snowflake{qRole11, qRole13}
	open(qGuild, c9, 9)
	c10 := f(aggregate.TypeTempban, qDave, qMod8, "raid")
	c10.ExpiresAt = qPtr(qTime("2026-11-02T12:00:00Z"))
	open(qGuild, c10, 10)

	// Day 3, from 01:00:00.
	l.now = qDay3
	l.do(qGuild, 3, qMod8, aggregate.MarkExpiryProcessed{})
	l.do(qGuild, 1, qMod9, aggregate.AddNote{NoteID: uuid.Must(uuid.NewV7()), Text: "evidence",
		EvidenceURLs: []string{"https://example.com/1.png"}})
	l.do(qGuild, 1, qMod8, aggregate.AddNote{NoteID: uuid.Must(uuid.NewV7()), Text: "second look"})
	l.do(qGuild, 2, qMod9, aggregate.UpdateCase{Reason: qPtr("rude language, repeated")})
	c11 := f(aggregate.TypeSnippetban, qAlice, qMod9, "")
	c11.ExpiresAt = qPtr(qTime("2026-11-10T00:00:00Z"))
	open(qGuild, c11, 11)
	l.do(qGuild, 4, qMod8, aggregate.AddNote{NoteID: uuid.Must(uuid.NewV7()), Text: "private info here",
		EvidenceURLs: []string{"https://example.com/private.png"}})
	l.do(qGuild, 4, qMod9, aggregate.RedactCase{Reason: "privacy request"})
	c12 := f(aggregate.TypeTempban, qCarol, qMod9, "raid alt")
	c12.ExpiresAt = qPtr(qTime("2026-11-05T00:00:00Z"))
	open(qGuild, c12, 12)
	open(qOtherGuild, f(aggregate.TypeBan, qAlice, qMod9, "raid elsewhere"), 2)
}

type queryBundle struct {
	pool    *pgxpool.Pool
	store   *projection.Store
	proj    *projection.CasesProjection
	queries *projection.Queries
	log     *eventLog
}

// setupQueries builds a database with the fixture applied through
// Store.ApplyBatch and returns queries on it whose clock reads qNow.
func setupQueries(t testing.TB, opts *projection.QueriesOpts) *queryBundle {
	t.Helper()
	b := &queryBundle{pool: testenv.PostgresPool(t), proj: projection.NewCasesProjection(nil), log: newEventLog(t)}
	var err error
	if b.store, err = projection.NewStore(b.pool, projection.SchemaDefault); err != nil {
		t.Fatal(err)
	}
	if err := b.store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := b.store.Activate(t.Context(), b.proj); err != nil {
		t.Fatal(err)
	}
	buildQueryFixture(t, b.log)
	b.apply(t)
	if opts == nil {
		opts = &projection.QueriesOpts{}
	}
	if opts.Now == nil {
		opts.Now = func() time.Time { return qNow }
	}
	if opts.Logger == nil {
		opts.Logger = testenv.Logger(t)
	}
	if b.queries, err = projection.NewQueries(b.pool, projection.SchemaDefault, opts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.queries.Close)
	return b
}

// apply applies every event of the log not applied yet.
func (b *queryBundle) apply(t testing.TB) {
	t.Helper()
	if _, _, err := b.store.ApplyBatch(t.Context(), b.proj, b.log.evs); err != nil {
		t.Fatal(err)
	}
}

// folded returns the fold of a case's events: what every query must show.
func (b *queryBundle) folded(g events.Snowflake, n uint32) aggregate.Case {
	return *b.log.cases[[2]uint64{uint64(g), uint64(n)}].Clone()
}

func caseNumbers(cs []aggregate.Case) []uint32 {
	out := []uint32{}
	for _, c := range cs {
		out = append(out, c.CaseNumber)
	}
	return out
}

// sameJSON reports whether a and b encode to the same JSON value (object
// keys in any order): jsonb does not keep metadata's spelling.
func sameJSON(t testing.TB, a, b any) bool {
	t.Helper()
	var va, vb any
	for _, p := range []struct {
		in  any
		out *any
	}{{a, &va}, {b, &vb}} {
		raw, err := json.Marshal(p.in)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(raw, p.out); err != nil {
			t.Fatal(err)
		}
	}
	return reflect.DeepEqual(va, vb)
}

func requireSameJSON(t testing.TB, got, want any) {
	t.Helper()
	if !sameJSON(t, got, want) {
		g, _ := json.MarshalIndent(got, "", "  ")
		w, _ := json.MarshalIndent(want, "", "  ")
		t.Fatalf("got\n%s\nwant\n%s", g, w)
	}
}

// checkPage checks a list page's case numbers, total and whether it has a
// next page.
func checkPage(t testing.TB, res *projection.CaseListResult, err error, want []uint32, total int64, more bool) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	if got := caseNumbers(res.Cases); !slices.Equal(got, want) {
		t.Fatalf("cases %v, want %v", got, want)
	}
	if res.Total != total {
		t.Fatalf("total %d, want %d", res.Total, total)
	}
	if (res.NextCursor != "") != more {
		t.Fatalf("next cursor %q, want one: %v", res.NextCursor, more)
	}
}

func requireInvalid(t testing.TB, err error, field string) {
	t.Helper()
	var ve *aggregate.ValidationError
	if !errors.As(err, &ve) || !errors.Is(err, projection.ErrInvalidArgument) {
		t.Fatalf("error %v, want a validation error", err)
	}
	if ve.Field != field {
		t.Fatalf("error %v names field %q, want %q", err, ve.Field, field)
	}
}

func TestQueries(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()

	t.Run("CaseGet", func(t *testing.T) {
		t.Parallel()
		for _, n := range []uint32{1, 2, 3, 4, 6, 8, 11, 12} {
			res, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: n})
			if err != nil {
				t.Fatal(err)
			}
			requireSameJSON(t, res.Case, b.folded(qGuild, n))
		}
		res, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 1})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Case.Notes) != 2 || res.Case.Notes[0].Text != "evidence" || res.Case.Notes[1].Text != "second look" ||
			!slices.Equal(res.Case.Notes[0].EvidenceURLs, []string{"https://example.com/1.png"}) {
			t.Fatalf("notes of case 1: %+v", res.Case.Notes)
		}
		res, err = q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 2})
		if err != nil {
			t.Fatal(err)
		}
		if h := res.Case.ReasonHistory; len(h) != 2 || h[0].Reason != "rude language in general" || h[1].Reason != "rude language, repeated" {
			t.Fatalf("reason history of case 2: %+v", h)
		}
		// The other guild's case 1 is another case.
		other, err := q.CaseGet(ctx, qOtherGuild, projection.CaseGetParams{CaseNumber: 1})
		if err != nil || other.Case.UserID != qErin || other.Case.CaseID == res.Case.CaseID {
			t.Fatalf("guild 200 case 1: %+v %v", other, err)
		}
	})

	t.Run("CaseGetNotFoundAndDeleted", func(t *testing.T) {
		t.Parallel()
		_, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 99})
		if !errors.Is(err, projection.ErrNotFound) || errors.Is(err, aggregate.ErrCaseDeleted) {
			t.Fatalf("case 99: %v", err)
		}
		_, err = q.CaseGet(ctx, qEmptyGuild, projection.CaseGetParams{CaseNumber: 1})
		if !errors.Is(err, projection.ErrNotFound) {
			t.Fatalf("empty guild: %v", err)
		}
		// A deleted case is not found, and says why.
		_, err = q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 7})
		if !errors.Is(err, projection.ErrNotFound) || !errors.Is(err, aggregate.ErrCaseDeleted) {
			t.Fatalf("deleted case 7: %v", err)
		}
		res, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 7, IncludeDeleted: true})
		if err != nil || !res.Case.Deleted {
			t.Fatalf("deleted case 7 with include_deleted: %+v %v", res, err)
		}
		requireSameJSON(t, res.Case, b.folded(qGuild, 7))
	})

	t.Run("CaseGetByID", func(t *testing.T) {
		t.Parallel()
		want := b.folded(qGuild, 1)
		res, err := q.CaseGetByID(ctx, qGuild, projection.CaseGetByIDParams{CaseID: want.CaseID})
		if err != nil {
			t.Fatal(err)
		}
		requireSameJSON(t, res.Case, want)
		// Another guild cannot read it by id.
		if _, err := q.CaseGetByID(ctx, qOtherGuild, projection.CaseGetByIDParams{CaseID: want.CaseID}); !errors.Is(err, projection.ErrNotFound) {
			t.Fatalf("case of guild 100 read from guild 200: %v", err)
		}
		deleted := b.folded(qGuild, 7)
		if _, err := q.CaseGetByID(ctx, qGuild, projection.CaseGetByIDParams{CaseID: deleted.CaseID}); !errors.Is(err, aggregate.ErrCaseDeleted) {
			t.Fatalf("deleted case by id: %v", err)
		}
		if _, err := q.CaseGetByID(ctx, qGuild, projection.CaseGetByIDParams{CaseID: uuid.Must(uuid.NewV7())}); !errors.Is(err, projection.ErrNotFound) {
			t.Fatalf("unknown id: %v", err)
		}
	})

	t.Run("CaseExists", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			name string
			g    events.Snowflake
			p    projection.CaseExistsParams
			want bool
		}{
			{"number", qGuild, projection.CaseExistsParams{CaseNumber: 12}, true},
			{"missing number", qGuild, projection.CaseExistsParams{CaseNumber: 13}, false},
			{"deleted", qGuild, projection.CaseExistsParams{CaseNumber: 7}, false},
			{"deleted included", qGuild, projection.CaseExistsParams{CaseNumber: 7, IncludeDeleted: true}, true},
			{"id", qGuild, projection.CaseExistsParams{CaseID: b.folded(qGuild, 3).CaseID}, true},
			{"id of another guild", qOtherGuild, projection.CaseExistsParams{CaseID: b.folded(qGuild, 3).CaseID}, false},
			{"deleted id", qGuild, projection.CaseExistsParams{CaseID: b.folded(qGuild, 7).CaseID}, false},
		} {
			res, err := q.CaseExists(ctx, tt.g, tt.p)
			if err != nil || res.Exists != tt.want {
				t.Fatalf("%s: %+v %v, want %v", tt.name, res, err, tt.want)
			}
		}
		_, err := q.CaseExists(ctx, qGuild, projection.CaseExistsParams{CaseNumber: 1, CaseID: uuid.Must(uuid.NewV7())})
		requireInvalid(t, err, "case_number")
	})

	t.Run("Lists", func(t *testing.T) {
		t.Parallel()
		tests := []struct {
			name  string
			run   func() (*projection.CaseListResult, error)
			want  []uint32
			total int64
		}{
			{"guild", func() (*projection.CaseListResult, error) {
				return q.GuildCases(ctx, qGuild, projection.GuildCasesParams{})
			}, []uint32{12, 11, 10, 9, 8, 6, 5, 4, 3, 2, 1}, 11},
			{"other guild", func() (*projection.CaseListResult, error) {
				return q.GuildCases(ctx, qOtherGuild, projection.GuildCasesParams{})
			}, []uint32{2, 1}, 2},
			{"empty guild", func() (*projection.CaseListResult, error) {
				return q.GuildCases(ctx, qEmptyGuild, projection.GuildCasesParams{})
			}, []uint32{}, 0},
			{"user alice", func() (*projection.CaseListResult, error) {
				return q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice})
			}, []uint32{11, 5, 2, 1}, 4},
			{"user bob without the deleted case", func() (*projection.CaseListResult, error) {
				return q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qBob})
			}, []uint32{6, 3}, 2},
			{"user without cases", func() (*projection.CaseListResult, error) {
				return q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: 77})
			}, []uint32{}, 0},
			{"active cases of carol", func() (*projection.CaseListResult, error) {
				return q.UserActiveCases(ctx, qGuild, projection.UserActiveCasesParams{UserID: qCarol})
			}, []uint32{12, 9, 4}, 3},
			{"moderator 8", func() (*projection.CaseListResult, error) {
				return q.ModeratorCases(ctx, qGuild, projection.ModeratorCasesParams{ModeratorID: qMod8})
			}, []uint32{10, 9, 4, 3}, 4},
			{"moderator 9", func() (*projection.CaseListResult, error) {
				return q.ModeratorCases(ctx, qGuild, projection.ModeratorCasesParams{ModeratorID: qMod9})
			}, []uint32{12, 11, 8, 6, 5, 2, 1}, 7},
			{"tempbans", func() (*projection.CaseListResult, error) {
				return q.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: aggregate.TypeTempban})
			}, []uint32{12, 10, 3}, 3},
			{"warns without the deleted one", func() (*projection.CaseListResult, error) {
				return q.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: aggregate.TypeWarn})
			}, []uint32{2}, 1},
			{"recent default 24 hours", func() (*projection.CaseListResult, error) {
				return q.RecentCases(ctx, qGuild, projection.RecentCasesParams{})
			}, []uint32{12, 11, 10, 9, 8, 6, 5}, 7},
			{"recent 2 hours", func() (*projection.CaseListResult, error) {
				return q.RecentCases(ctx, qGuild, projection.RecentCasesParams{Hours: 2})
			}, []uint32{12, 11}, 2},
			{"recent oldest first", func() (*projection.CaseListResult, error) {
				return q.RecentCases(ctx, qGuild, projection.RecentCasesParams{Hours: 2, PageParams: projection.PageParams{Order: projection.SortAsc}})
			}, []uint32{11, 12}, 2},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				res, err := tt.run()
				checkPage(t, res, err, tt.want, tt.total, false)
			})
		}
	})

	t.Run("ListCasesEqualTheFold", func(t *testing.T) {
		t.Parallel()
		res, err := q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: projection.CaseFilter{IncludeDeleted: true}})
		checkPage(t, res, err, []uint32{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 12, false)
		for _, c := range res.Cases {
			want := b.folded(qGuild, c.CaseNumber)
			want.Notes = nil // lists carry no notes, only their count
			requireSameJSON(t, c, want)
		}
	})

	t.Run("UserLatestCase", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			user events.Snowflake
			want uint32
		}{{qAlice, 11}, {qBob, 6}, {qCarol, 12}, {77, 0}} {
			res, err := q.UserLatestCase(ctx, qGuild, projection.UserLatestCaseParams{UserID: tt.user})
			if err != nil {
				t.Fatal(err)
			}
			if tt.want == 0 {
				if res.Case != nil {
					t.Fatalf("user %d: latest case %d, want none", tt.user, res.Case.CaseNumber)
				}
				continue
			}
			if res.Case == nil || res.Case.CaseNumber != tt.want {
				t.Fatalf("user %d: latest case %+v, want %d", tt.user, res.Case, tt.want)
			}
			requireSameJSON(t, res.Case, b.folded(qGuild, tt.want))
		}
	})
}

func TestQueriesPagination(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	all := []uint32{12, 11, 10, 9, 8, 6, 5, 4, 3, 2, 1}

	// walk pages through the guild's cases with limit and order, and
	// returns the pages' case numbers.
	walk := func(t *testing.T, limit int, order projection.SortOrder) [][]uint32 {
		var pages [][]uint32
		cursor := ""
		for {
			res, err := q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: limit, Cursor: cursor, Order: order}})
			if err != nil {
				t.Fatal(err)
			}
			if res.Total != 11 {
				t.Fatalf("total %d on page %d", res.Total, len(pages)+1)
			}
			pages = append(pages, caseNumbers(res.Cases))
			if res.NextCursor == "" {
				return pages
			}
			if len(res.Cases) != limit {
				t.Fatalf("page %d has %d cases and a next cursor", len(pages), len(res.Cases))
			}
			cursor = res.NextCursor
		}
	}

	for _, tt := range []struct {
		name  string
		limit int
		order projection.SortOrder
		want  [][]uint32
	}{
		{"limit 1", 1, "", [][]uint32{{12}, {11}, {10}, {9}, {8}, {6}, {5}, {4}, {3}, {2}, {1}}},
		{"limit 5", 5, projection.SortDesc, [][]uint32{{12, 11, 10, 9, 8}, {6, 5, 4, 3, 2}, {1}}},
		{"exact page size", 11, "", [][]uint32{all}},
		{"bigger page", 1000, "", [][]uint32{all}},
		{"default limit", 0, "", [][]uint32{all}},
		{"ascending", 5, projection.SortAsc, [][]uint32{{1, 2, 3, 4, 5}, {6, 8, 9, 10, 11}, {12}}},
		{"ascending exact", 11, projection.SortAsc, [][]uint32{{1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 12}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := walk(t, tt.limit, tt.order); !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("pages %v, want %v", got, tt.want)
			}
		})
	}

	t.Run("LastPageOfAFilter", func(t *testing.T) {
		t.Parallel()
		// Two pages of two for alice's four cases; the second is the
		// last, though full: it has no next cursor.
		p1, err := q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 2}})
		checkPage(t, p1, err, []uint32{11, 5}, 4, true)
		p2, err := q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 2, Cursor: p1.NextCursor}})
		checkPage(t, p2, err, []uint32{2, 1}, 4, false)
		p3, err := q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 3, Cursor: p1.NextCursor}})
		checkPage(t, p3, err, []uint32{2, 1}, 4, false)
	})

	t.Run("NewCasesDoNotShiftPages", func(t *testing.T) {
		t.Parallel()
		// A cursor holds a case number, not an offset: a case opened
		// between two pages neither repeats nor skips one. (Read-only
		// here: the cursor of case 9 continues with 8.)
		p1, err := q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: 4}})
		checkPage(t, p1, err, []uint32{12, 11, 10, 9}, 11, true)
		p2, err := q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: 2, Cursor: p1.NextCursor}})
		checkPage(t, p2, err, []uint32{8, 6}, 11, true)
	})

	t.Run("BadPages", func(t *testing.T) {
		t.Parallel()
		_, err := q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: projection.ListLimitMax + 1}})
		requireInvalid(t, err, "limit")
		_, err = q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: -1}})
		requireInvalid(t, err, "limit")
		_, err = q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Order: "up"}})
		requireInvalid(t, err, "order")
		_, err = q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Cursor: "not a cursor!"}})
		requireInvalid(t, err, "cursor")
		p1, err := q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: 1}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Cursor: p1.NextCursor, Order: projection.SortAsc}})
		requireInvalid(t, err, "cursor")
		_, err = q.DueExpiries(ctx, qGuild, projection.DueExpiriesParams{Cursor: p1.NextCursor})
		requireInvalid(t, err, "cursor")
	})
}

func TestQueriesFilters(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	for _, tt := range []struct {
		name string
		f    projection.CaseFilter
		want []uint32
	}{
		{"no filter", projection.CaseFilter{}, []uint32{12, 11, 10, 9, 8, 6, 5, 4, 3, 2, 1}},
		{"include deleted", projection.CaseFilter{IncludeDeleted: true}, []uint32{12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1}},
		{"closed", projection.CaseFilter{Status: aggregate.StatusClosed}, []uint32{8}},
		{"search one word", projection.CaseFilter{Search: "raid"}, []uint32{12, 10, 9, 1}},
		{"search is case-insensitive", projection.CaseFilter{Search: "RAID Spam"}, []uint32{1}},
		{"search two words", projection.CaseFilter{Search: "spam"}, []uint32{3, 1}},
		{"search includes deleted on request", projection.CaseFilter{Search: "spam", IncludeDeleted: true}, []uint32{7, 3, 1}},
		{"search excluding a word", projection.CaseFilter{Search: "raid -alt"}, []uint32{10, 9, 1}},
		{"search a phrase", projection.CaseFilter{Search: `"spam links"`}, []uint32{1}},
		{"search or", projection.CaseFilter{Search: "flooding or appeal"}, []uint32{6, 5}},
		{"search misses redacted text", projection.CaseFilter{Search: "alt"}, []uint32{12}},
		{"search only punctuation", projection.CaseFilter{Search: "!!!"}, []uint32{}},
		{"metadata tag", projection.CaseFilter{Metadata: json.RawMessage(`{"tags": ["spam"]}`)}, []uint32{3, 1}},
		{"metadata two tags", projection.CaseFilter{Metadata: json.RawMessage(`{"tags": ["spam", "raid"]}`)}, []uint32{1}},
		{"metadata key", projection.CaseFilter{Metadata: json.RawMessage(`{"channel":"general"}`)}, []uint32{1}},
		{"metadata no match", projection.CaseFilter{Metadata: json.RawMessage(`{"channel":"other"}`)}, []uint32{}},
		{"metadata empty object matches all", projection.CaseFilter{Metadata: json.RawMessage(`{}`), UserID: qBob}, []uint32{6, 3}},
		{"role 12 (redacted case 4 lost its roles)", projection.CaseFilter{UserRoles: []events.Snowflake{qRole12}}, []uint32{3, 1}},
		{"role 11", projection.CaseFilter{UserRoles: []events.Snowflake{qRole11}}, []uint32{9, 2, 1}},
		{"roles 11 and 13", projection.CaseFilter{UserRoles: []events.Snowflake{qRole11, qRole13}}, []uint32{9}},
		{"has expiry", projection.CaseFilter{HasExpiry: qPtr(true)}, []uint32{12, 11, 10, 6, 3}},
		{"no expiry", projection.CaseFilter{HasExpiry: qPtr(false)}, []uint32{9, 8, 5, 4, 2, 1}},
		{"expires before", projection.CaseFilter{ExpiresBefore: qTime("2026-11-03T00:00:01Z")}, []uint32{10, 6, 3}},
		{"expiring, unprocessed", projection.CaseFilter{HasExpiry: qPtr(true), ExpiryProcessed: qPtr(false)}, []uint32{12, 11, 10, 6}},
		{"expiry processed", projection.CaseFilter{ExpiryProcessed: qPtr(true)}, []uint32{3}},
		{"created on day 2", projection.CaseFilter{CreatedAfter: qTime("2026-11-02T00:00:00Z"), CreatedBefore: qTime("2026-11-03T00:00:00Z")}, []uint32{10, 9, 8, 6, 5}},
		{"created from the first second of day 2", projection.CaseFilter{CreatedAfter: qDay2, CreatedBefore: qDay2.Add(time.Second)}, []uint32{5}},
		{"user, types and status", projection.CaseFilter{UserID: qAlice, Types: []string{aggregate.TypeBan, aggregate.TypeWarn}, Status: aggregate.StatusActive}, []uint32{2, 1}},
		{"moderator and created range", projection.CaseFilter{ModeratorID: qMod8, CreatedAfter: qTime("2026-11-02T00:00:00Z")}, []uint32{10, 9}},
		{"user and search", projection.CaseFilter{UserID: qCarol, Search: "raid"}, []uint32{12, 9}},
		{"type and role and metadata", projection.CaseFilter{Types: []string{aggregate.TypeTempban}, UserRoles: []events.Snowflake{qRole12}, Metadata: json.RawMessage(`{"tags":["spam"]}`)}, []uint32{3}},
		{"user without cases", projection.CaseFilter{UserID: 77}, []uint32{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: tt.f})
			checkPage(t, res, err, tt.want, int64(len(tt.want)), false)
			// The count of the same filter agrees with the list.
			cnt, err := q.CaseCount(ctx, qGuild, projection.CaseCountParams{CaseFilter: tt.f})
			if err != nil || cnt.Total != int64(len(tt.want)) {
				t.Fatalf("count %+v %v, want %d", cnt, err, len(tt.want))
			}
			// So do the numbers the set commands resolve, lowest first,
			// at the read model's checkpoint, bounded by limit and number.
			nums, err := q.CaseNumbers(ctx, qGuild, projection.CaseNumbersParams{CaseFilter: tt.f})
			asc := slices.Clone(tt.want)
			slices.Reverse(asc)
			if err != nil || !slices.Equal(nums.CaseNumbers, asc) || nums.More || nums.Seq == 0 {
				t.Fatalf("case numbers %+v %v, want %v", nums, err, asc)
			}
			if len(asc) > 1 {
				nums, err = q.CaseNumbers(ctx, qGuild, projection.CaseNumbersParams{CaseFilter: tt.f, Limit: 1})
				if err != nil || !slices.Equal(nums.CaseNumbers, asc[:1]) || !nums.More {
					t.Fatalf("case numbers limit 1: %+v %v", nums, err)
				}
				nums, err = q.CaseNumbers(ctx, qGuild, projection.CaseNumbersParams{CaseFilter: tt.f, MaxCaseNumber: asc[0]})
				if err != nil || !slices.Equal(nums.CaseNumbers, asc[:1]) || nums.More {
					t.Fatalf("case numbers up to %d: %+v %v", asc[0], nums, err)
				}
			}
			// And a filtered list pages like any other.
			if len(tt.want) > 1 {
				p1, err := q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: tt.f, PageParams: projection.PageParams{Limit: 1}})
				checkPage(t, p1, err, tt.want[:1], int64(len(tt.want)), true)
				p2, err := q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: tt.f, PageParams: projection.PageParams{Limit: len(tt.want), Cursor: p1.NextCursor}})
				checkPage(t, p2, err, tt.want[1:], int64(len(tt.want)), false)
			}
		})
	}

	t.Run("Invalid", func(t *testing.T) {
		t.Parallel()
		for _, tt := range []struct {
			f     projection.CaseFilter
			field string
		}{
			{projection.CaseFilter{Types: []string{"BANANA"}}, "types[0]"},
			{projection.CaseFilter{Types: []string{aggregate.TypeBan, ""}}, "types[1]"},
			{projection.CaseFilter{Status: "open"}, "status"},
			{projection.CaseFilter{UserID: 1 << 63}, "user_id"},
			{projection.CaseFilter{UserRoles: []events.Snowflake{0}}, "user_roles[0]"},
			{projection.CaseFilter{Metadata: json.RawMessage(`[1]`)}, "metadata"},
			{projection.CaseFilter{Metadata: json.RawMessage(`{"a":`)}, "metadata"},
			{projection.CaseFilter{Metadata: json.RawMessage(`{"a":"\u0000"}`)}, "metadata"},
			{projection.CaseFilter{Search: "   "}, "search"},
			{projection.CaseFilter{Search: "a\x00b"}, "search"},
			{projection.CaseFilter{Search: strings.Repeat("x", projection.SearchMaxChars+1)}, "search"},
			{projection.CaseFilter{CreatedAfter: qDay2, CreatedBefore: qDay1}, "created_before"},
			{projection.CaseFilter{ExpiresBefore: qDay2, HasExpiry: qPtr(false)}, "has_expiry"},
		} {
			_, err := q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: tt.f})
			requireInvalid(t, err, tt.field)
			_, err = q.CaseCount(ctx, qGuild, projection.CaseCountParams{CaseFilter: tt.f})
			requireInvalid(t, err, tt.field)
		}
		_, err := q.CaseList(ctx, 0, projection.CaseListParams{})
		requireInvalid(t, err, "guild_id")
		_, err = q.UserCases(ctx, qGuild, projection.UserCasesParams{})
		requireInvalid(t, err, "user_id")
		_, err = q.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: "ban"})
		requireInvalid(t, err, "type")
		_, err = q.RecentCases(ctx, qGuild, projection.RecentCasesParams{Hours: projection.RecentCasesHoursMax + 1})
		requireInvalid(t, err, "hours")
		_, err = q.CaseGet(ctx, qGuild, projection.CaseGetParams{})
		requireInvalid(t, err, "case_number")
		_, err = q.CaseGetByID(ctx, qGuild, projection.CaseGetByIDParams{})
		requireInvalid(t, err, "case_id")
	})
}

func TestQueriesCounts(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	check := func(name string, res *projection.CaseCountResult, err error, total, active int64) {
		t.Helper()
		if err != nil || res.Total != total || res.Active != active {
			t.Fatalf("%s: %+v %v, want total %d active %d", name, res, err, total, active)
		}
	}
	res, err := q.GuildCaseCount(ctx, qGuild, projection.GuildCaseCountParams{})
	check("guild", res, err, 11, 10)
	res, err = q.GuildCaseCount(ctx, qOtherGuild, projection.GuildCaseCountParams{})
	check("other guild", res, err, 2, 2)
	res, err = q.GuildCaseCount(ctx, qEmptyGuild, projection.GuildCaseCountParams{})
	check("empty guild", res, err, 0, 0)
	res, err = q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: qAlice})
	check("alice", res, err, 4, 4)
	res, err = q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: qBob})
	check("bob without the deleted case", res, err, 2, 2)
	res, err = q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: qCarol})
	check("carol with a closed case", res, err, 4, 3)
	res, err = q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: 77})
	check("user without cases", res, err, 0, 0)
	_, err = q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{})
	requireInvalid(t, err, "user_id")

	// From the statistics tables (one dimension) and from cases (more).
	for _, tt := range []struct {
		name          string
		f             projection.CaseFilter
		total, active int64
	}{
		{"all", projection.CaseFilter{}, 11, 10},
		{"active", projection.CaseFilter{Status: aggregate.StatusActive}, 10, 10},
		{"closed", projection.CaseFilter{Status: aggregate.StatusClosed}, 1, 0},
		{"moderator 9", projection.CaseFilter{ModeratorID: qMod9}, 7, 6},
		{"moderator 9 closed", projection.CaseFilter{ModeratorID: qMod9, Status: aggregate.StatusClosed}, 1, 0},
		{"type NOTE", projection.CaseFilter{Types: []string{aggregate.TypeNote}}, 1, 0},
		{"type TEMPBAN", projection.CaseFilter{Types: []string{aggregate.TypeTempban}}, 3, 3},
		{"two types", projection.CaseFilter{Types: []string{aggregate.TypeTempban, aggregate.TypeBan}}, 4, 4},
		{"user and moderator", projection.CaseFilter{UserID: qCarol, ModeratorID: qMod9}, 2, 1},
		{"deleted included", projection.CaseFilter{UserID: qBob, IncludeDeleted: true}, 3, 3},
	} {
		res, err := q.CaseCount(ctx, qGuild, projection.CaseCountParams{CaseFilter: tt.f})
		check(tt.name, res, err, tt.total, tt.active)
	}
}

func TestQueriesRestrictions(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	restriction := func(fam aggregate.Family, n uint32, typ string, expires string) projection.Restriction {
		c := b.folded(qGuild, n)
		r := projection.Restriction{Family: fam, CaseNumber: n, Type: typ, Since: c.CreatedAt}
		if expires != "" {
			r.ExpiresAt = qPtr(qTime(expires))
		}
		return r
	}
	for _, tt := range []struct {
		name string
		user events.Snowflake
		want []projection.Restriction
	}{
		// BAN then UNBAN: not banned; the snippet ban holds.
		{"alice", qAlice, []projection.Restriction{restriction(aggregate.FamilySnippet, 11, aggregate.TypeSnippetban, "2026-11-10T00:00:00Z")}},
		// The TEMPBAN's expiry was processed: not banned; the timeout has
		// expired but is not processed yet, so it still holds.
		{"bob", qBob, []projection.Restriction{restriction(aggregate.FamilyTimeout, 6, aggregate.TypeTimeout, "2026-11-02T10:00:00Z")}},
		{"carol", qCarol, []projection.Restriction{
			restriction(aggregate.FamilyBan, 12, aggregate.TypeTempban, "2026-11-05T00:00:00Z"),
			restriction(aggregate.FamilyJail, 9, aggregate.TypeJail, ""),
		}},
		{"dave, tempban due", qDave, []projection.Restriction{restriction(aggregate.FamilyBan, 10, aggregate.TypeTempban, "2026-11-02T12:00:00Z")}},
		{"nobody", 77, []projection.Restriction{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := q.UserRestrictions(ctx, qGuild, projection.UserRestrictionsParams{UserID: tt.user})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(res.Restrictions, tt.want) {
				t.Fatalf("restrictions %+v, want %+v", res.Restrictions, tt.want)
			}
			for _, fam := range []aggregate.Family{aggregate.FamilyBan, aggregate.FamilyTimeout, aggregate.FamilyJail, aggregate.FamilySnippet, aggregate.FamilyPoll} {
				one, err := q.UserRestriction(ctx, qGuild, projection.UserRestrictionParams{UserID: tt.user, Family: fam})
				if err != nil {
					t.Fatal(err)
				}
				i := slices.IndexFunc(tt.want, func(r projection.Restriction) bool { return r.Family == fam })
				if one.Restricted != (i >= 0) || (i >= 0 && !reflect.DeepEqual(*one.Restriction, tt.want[i])) || (i < 0 && one.Restriction != nil) {
					t.Fatalf("family %s: %+v", fam, one)
				}
			}
		})
	}
	// Guilds are separate: alice is banned in guild 200 only.
	res, err := q.UserRestriction(ctx, qOtherGuild, projection.UserRestrictionParams{UserID: qAlice, Family: aggregate.FamilyBan})
	if err != nil || !res.Restricted || res.Restriction.CaseNumber != 2 {
		t.Fatalf("alice in guild 200: %+v %v", res, err)
	}
	_, err = q.UserRestriction(ctx, qGuild, projection.UserRestrictionParams{UserID: qAlice, Family: "mute"})
	requireInvalid(t, err, "family")
	_, err = q.UserRestriction(ctx, qGuild, projection.UserRestrictionParams{UserID: qAlice})
	requireInvalid(t, err, "family")
	_, err = q.UserRestrictions(ctx, qGuild, projection.UserRestrictionsParams{})
	requireInvalid(t, err, "user_id")
}

func TestQueriesDueExpiries(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	type key struct {
		g events.Snowflake
		n uint32
	}
	keys := func(cs []aggregate.Case) []key {
		out := []key{}
		for _, c := range cs {
			out = append(out, key{c.GuildID, c.CaseNumber})
		}
		return out
	}
	for _, tt := range []struct {
		name  string
		guild events.Snowflake
		p     projection.DueExpiriesParams
		want  []key
	}{
		// Soonest first: guild 200's tempban (06:00), the timeout (10:00),
		// dave's tempban (12:00). The processed tempban 3 is not due.
		{"every guild, due now", 0, projection.DueExpiriesParams{}, []key{{qOtherGuild, 1}, {qGuild, 6}, {qGuild, 10}}},
		{"one guild", qGuild, projection.DueExpiriesParams{}, []key{{qGuild, 6}, {qGuild, 10}}},
		{"tempbans only", 0, projection.DueExpiriesParams{Types: []string{aggregate.TypeTempban}}, []key{{qOtherGuild, 1}, {qGuild, 10}}},
		{"due by 11:00", qGuild, projection.DueExpiriesParams{Before: qTime("2026-11-02T11:00:00Z")}, []key{{qGuild, 6}}},
		{"due exactly at its expiry", qGuild, projection.DueExpiriesParams{Before: qTime("2026-11-02T10:00:00Z")}, []key{{qGuild, 6}}},
		{"nothing due yet", 0, projection.DueExpiriesParams{Before: qTime("2026-11-02T05:00:00Z")}, []key{}},
		{"due by the 10th", 0, projection.DueExpiriesParams{Before: qTime("2026-11-10T00:00:00Z")},
			[]key{{qOtherGuild, 1}, {qGuild, 6}, {qGuild, 10}, {qGuild, 12}, {qGuild, 11}}},
		{"empty guild", qEmptyGuild, projection.DueExpiriesParams{}, []key{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res, err := q.DueExpiries(ctx, tt.guild, tt.p)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(res.Cases); !reflect.DeepEqual(got, tt.want) || res.Total != int64(len(tt.want)) || res.NextCursor != "" {
				t.Fatalf("due %v total %d cursor %q, want %v", got, res.Total, res.NextCursor, tt.want)
			}
			// One at a time, the pages give the same cases in order.
			var paged []key
			p := tt.p
			p.Limit = 1
			for i := 0; ; i++ {
				res, err := q.DueExpiries(ctx, tt.guild, p)
				if err != nil {
					t.Fatal(err)
				}
				paged = append(paged, keys(res.Cases)...)
				if res.NextCursor == "" || i > 10 {
					break
				}
				p.Cursor = res.NextCursor
			}
			if !reflect.DeepEqual(paged, tt.want) && !(len(paged) == 0 && len(tt.want) == 0) {
				t.Fatalf("paged %v, want %v", paged, tt.want)
			}
		})
	}
	_, err := q.DueExpiries(ctx, qGuild, projection.DueExpiriesParams{Types: []string{"NOPE"}})
	requireInvalid(t, err, "types[0]")
	_, err = q.DueExpiries(ctx, qGuild, projection.DueExpiriesParams{Limit: projection.ListLimitMax + 1})
	requireInvalid(t, err, "limit")
	// Zero is every guild only for DueExpiries.
	_, err = q.GuildCases(ctx, 0, projection.GuildCasesParams{})
	requireInvalid(t, err, "guild_id")
}

func TestQueriesHistoryAndNotes(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	stream := func(g events.Snowflake, n uint32) []events.Event {
		var out []events.Event
		for _, e := range b.log.evs {
			if e.GuildID == g && e.CaseNumber == n {
				out = append(out, e)
			}
		}
		return out
	}
	encode := func(evs []events.Event) []json.RawMessage {
		var out []json.RawMessage
		for _, e := range evs {
			raw, err := codec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, raw)
		}
		return out
	}

	t.Run("InStreamOrder", func(t *testing.T) {
		t.Parallel()
		for _, n := range []uint32{1, 2, 3, 8} {
			res, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: n})
			if err != nil {
				t.Fatal(err)
			}
			want := stream(qGuild, n)
			if len(res.Events) != len(want) {
				t.Fatalf("case %d: %d events, want %d", n, len(res.Events), len(want))
			}
			for i := range want {
				if res.Events[i].Seq != want[i].Seq {
					t.Fatalf("case %d event %d: sequence %d, want %d", n, i, res.Events[i].Seq, want[i].Seq)
				}
			}
			requireSameJSON(t, encode(res.Events), encode(want))
		}
		res, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 1})
		if err != nil {
			t.Fatal(err)
		}
		var names []events.Name
		for _, e := range res.Events {
			names = append(names, e.Event)
		}
		if want := []events.Name{events.NameCaseOpened, events.NameCaseNoteAdded, events.NameCaseNoteAdded}; !slices.Equal(names, want) {
			t.Fatalf("case 1 history %v, want %v", names, want)
		}
		if note, ok := res.Events[1].Data.(events.CaseNoteAdded); !ok || note.Text != "evidence" || note.AuthorID != qMod9 {
			t.Fatalf("first note event: %#v", res.Events[1].Data)
		}
	})

	t.Run("DeletedCaseKeepsItsHistory", func(t *testing.T) {
		t.Parallel()
		res, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 7})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Events) != 2 || res.Events[1].Event != events.NameCaseDeleted {
			t.Fatalf("history of deleted case 7: %+v", res.Events)
		}
	})

	t.Run("Redaction", func(t *testing.T) {
		t.Parallel()
		res, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 4})
		if err != nil {
			t.Fatal(err)
		}
		var names []events.Name
		for _, e := range res.Events {
			names = append(names, e.Event)
		}
		if want := []events.Name{events.NameCaseOpened, events.NameCaseNoteAdded, events.NameCaseRedacted}; !slices.Equal(names, want) {
			t.Fatalf("case 4 history %v, want %v", names, want)
		}
		raw, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		for _, secret := range []string{"alt account", "private info", "private.png", `"13"`} {
			if strings.Contains(string(raw), secret) {
				t.Fatalf("redacted %q is still in the history: %s", secret, raw)
			}
		}
		opened := res.Events[0].Data.(events.CaseOpened)
		if opened.Reason != "" || len(opened.UserRoles) != 0 || opened.UserID != qCarol || opened.Type != aggregate.TypeKick {
			t.Fatalf("redacted open: %+v", opened)
		}
		if note := res.Events[1].Data.(events.CaseNoteAdded); note.Text != "" || len(note.EvidenceURLs) != 0 || note.AuthorID != qMod8 {
			t.Fatalf("redacted note: %+v", note)
		}
		notes, err := q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 4})
		if err != nil || len(notes.Notes) != 1 || notes.Notes[0].Text != "" || notes.Notes[0].EvidenceURLs != nil || notes.Notes[0].AuthorID != qMod8 {
			t.Fatalf("redacted notes: %+v %v", notes, err)
		}
		c, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 4})
		if err != nil || !c.Case.Redacted || c.Case.Reason != "" || c.Case.ReasonHistory[0].Reason != "" {
			t.Fatalf("redacted case: %+v %v", c, err)
		}
	})

	t.Run("HistoryRoundTripsJSON", func(t *testing.T) {
		t.Parallel()
		res, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 1})
		if err != nil {
			t.Fatal(err)
		}
		raw, err := json.Marshal(res)
		if err != nil {
			t.Fatal(err)
		}
		var back projection.CaseHistoryResult
		if err := json.Unmarshal(raw, &back); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(back, *res) {
			t.Fatalf("round trip changed the history:\n%+v\n%+v", back, *res)
		}
	})

	t.Run("Notes", func(t *testing.T) {
		t.Parallel()
		res, err := q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 1})
		if err != nil {
			t.Fatal(err)
		}
		requireSameJSON(t, res.Notes, b.folded(qGuild, 1).Notes)
		if len(res.Notes) != 2 || res.Notes[0].Text != "evidence" || res.Notes[1].AuthorID != qMod8 {
			t.Fatalf("notes %+v", res.Notes)
		}
		res, err = q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 2})
		if err != nil || res.Notes == nil || len(res.Notes) != 0 {
			t.Fatalf("case without notes: %+v %v", res, err)
		}
		if _, err := q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 7}); !errors.Is(err, aggregate.ErrCaseDeleted) {
			t.Fatalf("notes of a deleted case: %v", err)
		}
		if _, err := q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 7, IncludeDeleted: true}); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("NotFound", func(t *testing.T) {
		t.Parallel()
		if _, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 99}); !errors.Is(err, projection.ErrNotFound) {
			t.Fatalf("history of case 99: %v", err)
		}
		if _, err := q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 99}); !errors.Is(err, projection.ErrNotFound) {
			t.Fatalf("notes of case 99: %v", err)
		}
		_, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{})
		requireInvalid(t, err, "case_number")
	})
}

func TestQueriesStatistics(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	tc := func(typ string, total, active int64) projection.TypeCount {
		return projection.TypeCount{Type: typ, Total: total, Active: active}
	}
	res, err := q.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{From: qDay1, To: qDay3})
	if err != nil {
		t.Fatal(err)
	}
	want := &projection.GuildStatisticsResult{
		Total: 11, Active: 10,
		ByType: []projection.TypeCount{
			tc(aggregate.TypeTempban, 3, 3), tc(aggregate.TypeBan, 1, 1), tc(aggregate.TypeJail, 1, 1),
			tc(aggregate.TypeKick, 1, 1), tc(aggregate.TypeNote, 1, 0), tc(aggregate.TypeSnippetban, 1, 1),
			tc(aggregate.TypeTimeout, 1, 1), tc(aggregate.TypeUnban, 1, 1), tc(aggregate.TypeWarn, 1, 1),
		},
		ByModerator: []projection.ModeratorCount{{ModeratorID: qMod9, Total: 7, Active: 6}, {ModeratorID: qMod8, Total: 4, Active: 4}},
		From:        "2026-11-01", To: "2026-11-03",
		ByDay: []projection.DayCount{
			{Day: "2026-11-01", Total: 4, Active: 4, ByType: []projection.TypeCount{
				tc(aggregate.TypeBan, 1, 1), tc(aggregate.TypeKick, 1, 1), tc(aggregate.TypeTempban, 1, 1), tc(aggregate.TypeWarn, 1, 1)}},
			{Day: "2026-11-02", Total: 5, Active: 4, ByType: []projection.TypeCount{
				tc(aggregate.TypeJail, 1, 1), tc(aggregate.TypeNote, 1, 0), tc(aggregate.TypeTempban, 1, 1),
				tc(aggregate.TypeTimeout, 1, 1), tc(aggregate.TypeUnban, 1, 1)}},
			{Day: "2026-11-03", Total: 2, Active: 2, ByType: []projection.TypeCount{
				tc(aggregate.TypeSnippetban, 1, 1), tc(aggregate.TypeTempban, 1, 1)}},
		},
	}
	if !reflect.DeepEqual(res, want) {
		requireSameJSON(t, res, want)
		t.Fatalf("statistics %+v, want %+v", res, want)
	}

	// The default range is the 30 days up to today (the clock's), days
	// without cases included.
	def, err := q.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{})
	if err != nil {
		t.Fatal(err)
	}
	if len(def.ByDay) != projection.StatisticsDaysDefault || def.From != "2026-10-05" || def.To != "2026-11-03" {
		t.Fatalf("default range %s to %s, %d days", def.From, def.To, len(def.ByDay))
	}
	if d := def.ByDay[0]; d.Day != "2026-10-05" || d.Total != 0 || d.ByType == nil {
		t.Fatalf("first default day %+v", d)
	}
	if !reflect.DeepEqual(def.ByDay[27:], want.ByDay) {
		t.Fatalf("last three default days %+v", def.ByDay[27:])
	}

	empty, err := q.GuildStatistics(ctx, qEmptyGuild, projection.GuildStatisticsParams{From: qDay1, To: qDay1})
	if err != nil || empty.Total != 0 || len(empty.ByType) != 0 || len(empty.ByModerator) != 0 || len(empty.ByDay) != 1 || empty.ByDay[0].Total != 0 {
		t.Fatalf("empty guild: %+v %v", empty, err)
	}
	_, err = q.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{From: qDay3, To: qDay1})
	requireInvalid(t, err, "from")
	_, err = q.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{From: qDay1.AddDate(-2, 0, 0), To: qDay1})
	requireInvalid(t, err, "from")
}

func TestQueriesMinSeq(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, &projection.QueriesOpts{MinSeqWait: time.Minute})
	q := b.queries
	ctx := t.Context()
	reached := b.log.seq
	// Reached already: answers at once.
	if _, err := q.GuildCaseCount(ctx, qGuild, projection.GuildCaseCountParams{QueryMeta: projection.QueryMeta{MinSeq: reached}}); err != nil {
		t.Fatal(err)
	}
	// Not reached: the query waits for the batch that reaches it.
	n := b.log.open(qGuild, events.CaseFields{Type: aggregate.TypeWarn, UserID: qDave, ModeratorID: qMod9, Reason: "late"})
	target := b.log.seq
	type reply struct {
		res *projection.CaseGetResult
		err error
	}
	done := make(chan reply, 1)
	go func() {
		res, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: target}, CaseNumber: n})
		done <- reply{res, err}
	}()
	testenv.Eventually(t, 10*time.Second, func() bool { return q.MinSeqWaitsForTest() == 1 }, "the query waits for min_seq")
	select {
	case r := <-done:
		t.Fatalf("answered before the projection reached min_seq: %+v %v", r.res, r.err)
	default:
	}
	go func() {
		if _, _, err := b.store.ApplyBatch(ctx, b.proj, b.log.evs); err != nil {
			t.Error(err)
		}
	}()
	r := <-done
	if r.err != nil || r.res.Case.CaseNumber != n || r.res.Case.Reason != "late" {
		t.Fatalf("after the batch: %+v %v", r.res, r.err)
	}
}

func TestQueriesMinSeqUnavailable(t *testing.T) {
	t.Parallel()
	const wait = 200 * time.Millisecond
	b := setupQueries(t, &projection.QueriesOpts{MinSeqWait: wait})
	start := time.Now()
	_, err := b.queries.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{QueryMeta: projection.QueryMeta{MinSeq: b.log.seq + 1}})
	if !errors.Is(err, projection.ErrUnavailable) {
		t.Fatalf("min_seq beyond the stream: %v", err)
	}
	if d := time.Since(start); d < wait {
		t.Fatalf("gave up after %s, before the wait of %s", d, wait)
	}
	// Closed queries refuse min_seq and answer the rest.
	b.queries.Close()
	if _, err := b.queries.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{QueryMeta: projection.QueryMeta{MinSeq: 1}}); !errors.Is(err, projection.ErrUnavailable) {
		t.Fatalf("min_seq after Close: %v", err)
	}
	if _, err := b.queries.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{}); err != nil {
		t.Fatal(err)
	}
}

func TestQueriesWithoutGenerationAreUnavailable(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	store, err := projection.NewStore(pool, "ledger_b")
	if err != nil {
		t.Fatal(err)
	}
	if err := store.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	q, err := projection.NewQueries(pool, "ledger_b", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(q.Close)
	_, err = q.GuildCases(t.Context(), qGuild, projection.GuildCasesParams{})
	if !errors.Is(err, projection.ErrUnavailable) || !errors.Is(err, projection.ErrNoGeneration) {
		t.Fatalf("query before the projection is active: %v", err)
	}
	// Once active, an empty model answers.
	if _, err := store.Activate(t.Context(), projection.NewCasesProjection(nil)); err != nil {
		t.Fatal(err)
	}
	res, err := q.GuildCases(t.Context(), qGuild, projection.GuildCasesParams{})
	checkPage(t, res, err, []uint32{}, 0, false)
	if _, err := projection.NewQueries(pool, "Bad-Schema", nil); err == nil {
		t.Fatal("NewQueries accepted a bad schema name")
	}
}

func TestQueriesDeletedCasesLeaveQueries(t *testing.T) {
	t.Parallel()
	b := setupQueries(t, nil)
	q := b.queries
	ctx := t.Context()
	// A page is read, then alice's first two cases and carol's tempban
	// are deleted.
	p1, err := q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 2}})
	checkPage(t, p1, err, []uint32{11, 5}, 4, true)
	b.log.now = qDay3.Add(time.Minute)
	for _, n := range []uint32{1, 2, 12} {
		b.log.do(qGuild, n, qMod9, aggregate.DeleteCase{})
	}
	b.apply(t)

	// The next page is empty: a page past the last case.
	p2, err := q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 2, Cursor: p1.NextCursor}})
	checkPage(t, p2, err, []uint32{}, 2, false)

	lists := []struct {
		name  string
		run   func() (*projection.CaseListResult, error)
		want  []uint32
		total int64
	}{
		{"guild", func() (*projection.CaseListResult, error) {
			return q.GuildCases(ctx, qGuild, projection.GuildCasesParams{})
		}, []uint32{11, 10, 9, 8, 6, 5, 4, 3}, 8},
		{"user", func() (*projection.CaseListResult, error) {
			return q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice})
		}, []uint32{11, 5}, 2},
		{"user active", func() (*projection.CaseListResult, error) {
			return q.UserActiveCases(ctx, qGuild, projection.UserActiveCasesParams{UserID: qCarol})
		}, []uint32{9, 4}, 2},
		{"moderator", func() (*projection.CaseListResult, error) {
			return q.ModeratorCases(ctx, qGuild, projection.ModeratorCasesParams{ModeratorID: qMod9})
		}, []uint32{11, 8, 6, 5}, 4},
		{"type", func() (*projection.CaseListResult, error) {
			return q.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: aggregate.TypeTempban})
		}, []uint32{10, 3}, 2},
		{"type with only deleted cases", func() (*projection.CaseListResult, error) {
			return q.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: aggregate.TypeBan})
		}, []uint32{}, 0},
		{"recent", func() (*projection.CaseListResult, error) {
			return q.RecentCases(ctx, qGuild, projection.RecentCasesParams{})
		}, []uint32{11, 10, 9, 8, 6, 5}, 6},
		{"search", func() (*projection.CaseListResult, error) {
			return q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: projection.CaseFilter{Search: "raid"}})
		}, []uint32{10, 9}, 2},
		{"metadata", func() (*projection.CaseListResult, error) {
			return q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: projection.CaseFilter{Metadata: json.RawMessage(`{"tags":["spam"]}`)}})
		}, []uint32{3}, 1},
		{"roles", func() (*projection.CaseListResult, error) {
			return q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: projection.CaseFilter{UserRoles: []events.Snowflake{qRole11}}})
		}, []uint32{9}, 1},
		{"due", func() (*projection.CaseListResult, error) {
			return q.DueExpiries(ctx, qGuild, projection.DueExpiriesParams{Before: qTime("2026-11-10T00:00:00Z")})
		}, []uint32{6, 10, 11}, 3},
	}
	for _, tt := range lists {
		res, err := tt.run()
		checkPage(t, res, err, tt.want, tt.total, false)
	}
	counts := []struct {
		name          string
		run           func() (*projection.CaseCountResult, error)
		total, active int64
	}{
		{"guild", func() (*projection.CaseCountResult, error) {
			return q.GuildCaseCount(ctx, qGuild, projection.GuildCaseCountParams{})
		}, 8, 7},
		{"user", func() (*projection.CaseCountResult, error) {
			return q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: qAlice})
		}, 2, 2},
		{"filter", func() (*projection.CaseCountResult, error) {
			return q.CaseCount(ctx, qGuild, projection.CaseCountParams{CaseFilter: projection.CaseFilter{UserID: qCarol, HasExpiry: qPtr(true)}})
		}, 0, 0},
	}
	for _, tt := range counts {
		res, err := tt.run()
		if err != nil || res.Total != tt.total || res.Active != tt.active {
			t.Fatalf("count %s: %+v %v, want %d/%d", tt.name, res, err, tt.total, tt.active)
		}
	}
	if res, err := q.UserLatestCase(ctx, qGuild, projection.UserLatestCaseParams{UserID: qCarol}); err != nil || res.Case.CaseNumber != 9 {
		t.Fatalf("carol's latest case: %+v %v", res, err)
	}
	// Carol's ban was the deleted tempban: only the jail holds.
	rs, err := q.UserRestrictions(ctx, qGuild, projection.UserRestrictionsParams{UserID: qCarol})
	if err != nil || len(rs.Restrictions) != 1 || rs.Restrictions[0].Family != aggregate.FamilyJail {
		t.Fatalf("carol's restrictions: %+v %v", rs, err)
	}
	stats, err := q.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{From: qDay1, To: qDay3})
	if err != nil || stats.Total != 8 || stats.Active != 7 {
		t.Fatalf("statistics: %+v %v", stats, err)
	}
	for _, tc := range stats.ByType {
		if tc.Type == aggregate.TypeBan || tc.Type == aggregate.TypeWarn {
			t.Fatalf("statistics count a deleted case's type: %+v", stats.ByType)
		}
	}
	if stats.ByModerator[0] != (projection.ModeratorCount{ModeratorID: qMod8, Total: 4, Active: 4}) ||
		stats.ByModerator[1] != (projection.ModeratorCount{ModeratorID: qMod9, Total: 4, Active: 3}) {
		t.Fatalf("statistics by moderator: %+v", stats.ByModerator)
	}
	if d := stats.ByDay[0]; d.Total != 2 || d.Active != 2 {
		t.Fatalf("day 1 after deleting two of its cases: %+v", d)
	}
	// Gone from queries, kept in the history.
	if _, err := q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 1}); !errors.Is(err, aggregate.ErrCaseDeleted) {
		t.Fatalf("deleted case 1: %v", err)
	}
	h, err := q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 1})
	if err != nil || h.Events[len(h.Events)-1].Event != events.NameCaseDeleted {
		t.Fatalf("history of deleted case 1: %+v %v", h, err)
	}
}
