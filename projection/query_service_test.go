package projection_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

type queryServiceBundle struct {
	*queryBundle
	env    *testenv.NATSEnv
	nc     *nats.Conn
	svc    *projection.QueryService
	client *projection.QueryClient
}

// setupQueryService starts a query service on the query fixture.
func setupQueryService(t *testing.T, mods ...func(*projection.QueryServiceConfig)) *queryServiceBundle {
	t.Helper()
	b := &queryServiceBundle{queryBundle: setupQueries(t, nil), env: testenv.NATS(t)}
	b.nc = b.env.Conn(t)
	cfg := projection.QueryServiceConfig{Conn: b.env.Conn(t), Queries: b.queries, Store: b.store, Logger: testenv.Logger(t)}
	for _, m := range mods {
		m(&cfg)
	}
	var err error
	if b.svc, err = projection.NewQueryService(cfg); err != nil {
		t.Fatal(err)
	}
	if err := b.svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.svc.Stop(ctx); err != nil {
			t.Error(err)
		}
	})
	if b.client, err = projection.NewQueryClient(b.nc); err != nil {
		t.Fatal(err)
	}
	return b
}

// request sends a raw query and returns the reply.
func (b *queryServiceBundle) request(t *testing.T, guild, query, body string) *nats.Msg {
	t.Helper()
	msg, err := b.nc.Request("modledger.query."+guild+"."+query, []byte(body), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return msg
}

// requireErrorReply checks a raw reply is an error with status, code and
// field, and returns its body.
func requireErrorReply(t *testing.T, msg *nats.Msg, status string, code projection.ErrorCode, field string) *projection.QueryError {
	t.Helper()
	if got := msg.Header.Get(micro.ErrorCodeHeader); got != status {
		t.Fatalf("status %q, want %q (body %s)", got, status, msg.Data)
	}
	if msg.Header.Get(micro.ErrorHeader) == "" {
		t.Fatalf("no %s header", micro.ErrorHeader)
	}
	var body struct {
		Error *projection.QueryError `json:"error"`
	}
	if err := json.Unmarshal(msg.Data, &body); err != nil || body.Error == nil {
		t.Fatalf("error body %s: %v", msg.Data, err)
	}
	if body.Error.Code != code || body.Error.Field != field || body.Error.Message == "" {
		t.Fatalf("error %+v, want code %s field %q", body.Error, code, field)
	}
	return body.Error
}

func TestQueryServiceAnswersEveryQuery(t *testing.T) {
	t.Parallel()
	b := setupQueryService(t)
	q, c := b.queries, b.client
	ctx := t.Context()
	case1 := b.folded(qGuild, 1)
	type call func() (any, error)
	wrap := func(r any, err error) (any, error) { return r, err }
	tests := []struct {
		query        string
		wire, direct call
	}{
		{projection.QueryCaseGet,
			func() (any, error) { return wrap(c.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 1})) },
			func() (any, error) { return wrap(q.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 1})) }},
		{projection.QueryCaseGetByID,
			func() (any, error) {
				return wrap(c.CaseGetByID(ctx, qGuild, projection.CaseGetByIDParams{CaseID: case1.CaseID}))
			},
			func() (any, error) {
				return wrap(q.CaseGetByID(ctx, qGuild, projection.CaseGetByIDParams{CaseID: case1.CaseID}))
			}},
		{projection.QueryCaseExists,
			func() (any, error) {
				return wrap(c.CaseExists(ctx, qGuild, projection.CaseExistsParams{CaseNumber: 12}))
			},
			func() (any, error) {
				return wrap(q.CaseExists(ctx, qGuild, projection.CaseExistsParams{CaseNumber: 12}))
			}},
		{projection.QueryCaseList,
			func() (any, error) {
				return wrap(c.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: projection.CaseFilter{Search: "raid",
					Metadata: json.RawMessage(`{"tags":["raid"]}`), UserRoles: []events.Snowflake{qRole11}}}))
			},
			func() (any, error) {
				return wrap(q.CaseList(ctx, qGuild, projection.CaseListParams{CaseFilter: projection.CaseFilter{Search: "raid",
					Metadata: json.RawMessage(`{"tags":["raid"]}`), UserRoles: []events.Snowflake{qRole11}}}))
			}},
		{projection.QueryCaseCount,
			func() (any, error) {
				return wrap(c.CaseCount(ctx, qGuild, projection.CaseCountParams{CaseFilter: projection.CaseFilter{ModeratorID: qMod9}}))
			},
			func() (any, error) {
				return wrap(q.CaseCount(ctx, qGuild, projection.CaseCountParams{CaseFilter: projection.CaseFilter{ModeratorID: qMod9}}))
			}},
		{projection.QueryCaseNumbers,
			func() (any, error) {
				return wrap(c.CaseNumbers(ctx, qGuild, projection.CaseNumbersParams{CaseFilter: projection.CaseFilter{UserID: qAlice}, Limit: 2}))
			},
			func() (any, error) {
				return wrap(q.CaseNumbers(ctx, qGuild, projection.CaseNumbersParams{CaseFilter: projection.CaseFilter{UserID: qAlice}, Limit: 2}))
			}},
		{projection.QueryCaseHistory,
			func() (any, error) {
				return wrap(c.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 4}))
			},
			func() (any, error) {
				return wrap(q.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 4}))
			}},
		{projection.QueryCaseNotes,
			func() (any, error) { return wrap(c.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 1})) },
			func() (any, error) { return wrap(q.CaseNotes(ctx, qGuild, projection.CaseNotesParams{CaseNumber: 1})) }},
		{projection.QueryUserCases,
			func() (any, error) {
				return wrap(c.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 2}}))
			},
			func() (any, error) {
				return wrap(q.UserCases(ctx, qGuild, projection.UserCasesParams{UserID: qAlice, PageParams: projection.PageParams{Limit: 2}}))
			}},
		{projection.QueryUserActiveCases,
			func() (any, error) {
				return wrap(c.UserActiveCases(ctx, qGuild, projection.UserActiveCasesParams{UserID: qCarol}))
			},
			func() (any, error) {
				return wrap(q.UserActiveCases(ctx, qGuild, projection.UserActiveCasesParams{UserID: qCarol}))
			}},
		{projection.QueryUserLatestCase,
			func() (any, error) {
				return wrap(c.UserLatestCase(ctx, qGuild, projection.UserLatestCaseParams{UserID: qAlice}))
			},
			func() (any, error) {
				return wrap(q.UserLatestCase(ctx, qGuild, projection.UserLatestCaseParams{UserID: qAlice}))
			}},
		{projection.QueryUserCaseCount,
			func() (any, error) {
				return wrap(c.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: qCarol}))
			},
			func() (any, error) {
				return wrap(q.UserCaseCount(ctx, qGuild, projection.UserCaseCountParams{UserID: qCarol}))
			}},
		{projection.QueryUserRestriction,
			func() (any, error) {
				return wrap(c.UserRestriction(ctx, qGuild, projection.UserRestrictionParams{UserID: qDave, Family: aggregate.FamilyBan}))
			},
			func() (any, error) {
				return wrap(q.UserRestriction(ctx, qGuild, projection.UserRestrictionParams{UserID: qDave, Family: aggregate.FamilyBan}))
			}},
		{projection.QueryUserRestrictions,
			func() (any, error) {
				return wrap(c.UserRestrictions(ctx, qGuild, projection.UserRestrictionsParams{UserID: qCarol}))
			},
			func() (any, error) {
				return wrap(q.UserRestrictions(ctx, qGuild, projection.UserRestrictionsParams{UserID: qCarol}))
			}},
		{projection.QueryModeratorCases,
			func() (any, error) {
				return wrap(c.ModeratorCases(ctx, qGuild, projection.ModeratorCasesParams{ModeratorID: qMod8}))
			},
			func() (any, error) {
				return wrap(q.ModeratorCases(ctx, qGuild, projection.ModeratorCasesParams{ModeratorID: qMod8}))
			}},
		{projection.QueryTypeCases,
			func() (any, error) {
				return wrap(c.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: aggregate.TypeTempban}))
			},
			func() (any, error) {
				return wrap(q.TypeCases(ctx, qGuild, projection.TypeCasesParams{Type: aggregate.TypeTempban}))
			}},
		{projection.QueryGuildCases,
			func() (any, error) {
				return wrap(c.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Order: projection.SortAsc}}))
			},
			func() (any, error) {
				return wrap(q.GuildCases(ctx, qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Order: projection.SortAsc}}))
			}},
		{projection.QueryGuildCaseCount,
			func() (any, error) { return wrap(c.GuildCaseCount(ctx, qGuild, projection.GuildCaseCountParams{})) },
			func() (any, error) { return wrap(q.GuildCaseCount(ctx, qGuild, projection.GuildCaseCountParams{})) }},
		{projection.QueryGuildStatistics,
			func() (any, error) {
				return wrap(c.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{From: qDay1, To: qDay3}))
			},
			func() (any, error) {
				return wrap(q.GuildStatistics(ctx, qGuild, projection.GuildStatisticsParams{From: qDay1, To: qDay3}))
			}},
		{projection.QueryRecentCases,
			func() (any, error) { return wrap(c.RecentCases(ctx, qGuild, projection.RecentCasesParams{Hours: 2})) },
			func() (any, error) { return wrap(q.RecentCases(ctx, qGuild, projection.RecentCasesParams{Hours: 2})) }},
		{projection.QueryDueExpiries,
			func() (any, error) { return wrap(c.DueExpiries(ctx, 0, projection.DueExpiriesParams{Limit: 2})) },
			func() (any, error) { return wrap(q.DueExpiries(ctx, 0, projection.DueExpiriesParams{Limit: 2})) }},
	}
	var seen []string
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			wire, err := tt.wire()
			if err != nil {
				t.Fatal(err)
			}
			direct, err := tt.direct()
			if err != nil {
				t.Fatal(err)
			}
			requireSameJSON(t, wire, direct)
		})
		seen = append(seen, tt.query)
	}

	// The client decodes into the same Go values.
	h, err := c.CaseHistory(ctx, qGuild, projection.CaseHistoryParams{CaseNumber: 1})
	if err != nil {
		t.Fatal(err)
	}
	if note, ok := h.Events[1].Data.(events.CaseNoteAdded); !ok || note.Text != "evidence" || h.Events[1].Seq == 0 {
		t.Fatalf("history over the wire: %+v", h.Events[1])
	}
	got, err := c.CaseGet(ctx, qGuild, projection.CaseGetParams{CaseNumber: 1})
	if err != nil {
		t.Fatal(err)
	}
	requireSameJSON(t, got.Case, case1)

	// Every endpoint is tested, and `nats micro info` lists them all.
	msg, err := b.nc.Request("$SRV.INFO."+projection.QueryServiceName, nil, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var info micro.Info
	if err := json.Unmarshal(msg.Data, &info); err != nil {
		t.Fatal(err)
	}
	var endpoints []string
	for _, ep := range info.Endpoints {
		endpoints = append(endpoints, ep.Name)
		if ep.Subject != "modledger.query.*."+ep.Name || ep.QueueGroup != projection.QueryQueueGroupDefault {
			t.Fatalf("endpoint %+v", ep)
		}
	}
	slices.Sort(endpoints)
	slices.Sort(seen)
	if !slices.Equal(endpoints, seen) {
		t.Fatalf("endpoints %v, tested %v", endpoints, seen)
	}
}

func TestQueryServiceWireForm(t *testing.T) {
	t.Parallel()
	b := setupQueryService(t)

	t.Run("SnowflakesAsStringsOrNumbers", func(t *testing.T) {
		for _, body := range []string{`{"user_id":"1"}`, `{"user_id":1}`, ` {"user_id": "1"} `} {
			msg := b.request(t, "100", projection.QueryUserCaseCount, body)
			if msg.Header.Get(micro.ErrorCodeHeader) != "" || string(msg.Data) != `{"total":4,"active":4}` {
				t.Fatalf("%s: %s %v", body, msg.Data, msg.Header)
			}
		}
	})

	t.Run("EmptyBodyIsNoParams", func(t *testing.T) {
		msg := b.request(t, "100", projection.QueryGuildCaseCount, "")
		if string(msg.Data) != `{"total":11,"active":10}` {
			t.Fatalf("reply %s", msg.Data)
		}
	})

	t.Run("CaseAndPage", func(t *testing.T) {
		msg := b.request(t, "100", projection.QueryUserCases, `{"user_id":"1","limit":1}`)
		var page map[string]json.RawMessage
		if err := json.Unmarshal(msg.Data, &page); err != nil {
			t.Fatal(err)
		}
		if string(page["total"]) != "4" || page["next_cursor"] == nil || page["cases"] == nil {
			t.Fatalf("page %s", msg.Data)
		}
		var cases []map[string]any
		if err := json.Unmarshal(page["cases"], &cases); err != nil || len(cases) != 1 {
			t.Fatalf("cases %s: %v", page["cases"], err)
		}
		// Snowflakes are strings, as in commands' replies.
		if cases[0]["user_id"] != "1" || cases[0]["guild_id"] != "100" || cases[0]["case_number"] != float64(11) {
			t.Fatalf("case %v", cases[0])
		}
		// The cursor goes back as it came.
		var cursor string
		_ = json.Unmarshal(page["next_cursor"], &cursor)
		next := b.request(t, "100", projection.QueryUserCases, `{"user_id":"1","limit":10,"cursor":"`+cursor+`"}`)
		var p2 projection.CaseListResult
		if err := json.Unmarshal(next.Data, &p2); err != nil || !slices.Equal(caseNumbers(p2.Cases), []uint32{5, 2, 1}) {
			t.Fatalf("second page %s: %v", next.Data, err)
		}
	})

	t.Run("DueExpiriesInEveryGuild", func(t *testing.T) {
		msg := b.request(t, projection.QueryAllGuilds, projection.QueryDueExpiries, `{"types":["TEMPBAN"]}`)
		var res projection.CaseListResult
		if err := json.Unmarshal(msg.Data, &res); err != nil || res.Total != 2 || res.Cases[0].GuildID != qOtherGuild {
			t.Fatalf("due expiries: %s %v", msg.Data, err)
		}
	})

	t.Run("UserLatestCaseNone", func(t *testing.T) {
		msg := b.request(t, "100", projection.QueryUserLatestCase, `{"user_id":"77"}`)
		if string(msg.Data) != `{"case":null}` {
			t.Fatalf("reply %s", msg.Data)
		}
	})
}

func TestQueryServiceErrors(t *testing.T) {
	t.Parallel()
	b := setupQueryService(t)
	for _, tt := range []struct {
		name, guild, query, body string
		status                   string
		code                     projection.ErrorCode
		field                    string
	}{
		{"unknown field", "100", projection.QueryCaseGet, `{"case_number":1,"bogus":true}`, "400", projection.CodeInvalidArgument, "bogus"},
		{"malformed JSON", "100", projection.QueryCaseGet, `{"case_number":`, "400", projection.CodeInvalidArgument, ""},
		{"not an object", "100", projection.QueryCaseGet, `[1]`, "400", projection.CodeInvalidArgument, ""},
		{"trailing data", "100", projection.QueryCaseGet, `{"case_number":1} {}`, "400", projection.CodeInvalidArgument, ""},
		{"wrong type", "100", projection.QueryCaseGet, `{"case_number":"one"}`, "400", projection.CodeInvalidArgument, "case_number"},
		{"negative number", "100", projection.QueryCaseGet, `{"case_number":-1}`, "400", projection.CodeInvalidArgument, "case_number"},
		{"missing case number", "100", projection.QueryCaseGet, `{}`, "400", projection.CodeInvalidArgument, "case_number"},
		{"bad snowflake", "100", projection.QueryUserCases, `{"user_id":"abc"}`, "400", projection.CodeInvalidArgument, "user_id"},
		{"snowflake out of range", "100", projection.QueryUserCases, `{"user_id":"9223372036854775808"}`, "400", projection.CodeInvalidArgument, "user_id"},
		{"bad role", "100", projection.QueryCaseList, `{"user_roles":["1","x"]}`, "400", projection.CodeInvalidArgument, "user_roles[1]"},
		{"bad time", "100", projection.QueryDueExpiries, `{"before":"yesterday"}`, "400", projection.CodeInvalidArgument, "before"},
		{"bad UUID", "100", projection.QueryCaseGetByID, `{"case_id":"xyz"}`, "400", projection.CodeInvalidArgument, "case_id"},
		{"limit too big", "100", projection.QueryGuildCases, `{"limit":1001}`, "400", projection.CodeInvalidArgument, "limit"},
		{"unknown type", "100", projection.QueryTypeCases, `{"type":"BANANA"}`, "400", projection.CodeInvalidArgument, "type"},
		{"metadata not an object", "100", projection.QueryCaseList, `{"metadata":[1]}`, "400", projection.CodeInvalidArgument, "metadata"},
		{"bad cursor", "100", projection.QueryGuildCases, `{"cursor":"%%%"}`, "400", projection.CodeInvalidArgument, "cursor"},
		{"bad guild", "abc", projection.QueryGuildCases, `{}`, "400", projection.CodeInvalidArgument, "guild_id"},
		{"guild zero", "0", projection.QueryGuildCases, `{}`, "400", projection.CodeInvalidArgument, "guild_id"},
		{"every guild for a guild query", projection.QueryAllGuilds, projection.QueryGuildCases, `{}`, "400", projection.CodeInvalidArgument, "guild_id"},
		{"min_seq not a number", "100", projection.QueryGuildCaseCount, `{"min_seq":"5"}`, "400", projection.CodeInvalidArgument, "min_seq"},
		{"too big", "100", projection.QueryCaseList, `{"search":"` + strings.Repeat("a", projection.QueryRequestBytesMax) + `"}`, "400", projection.CodeInvalidArgument, ""},
		{"not found", "100", projection.QueryCaseGet, `{"case_number":99}`, "404", projection.CodeNotFound, ""},
		{"history not found", "100", projection.QueryCaseHistory, `{"case_number":99}`, "404", projection.CodeNotFound, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			requireErrorReply(t, b.request(t, tt.guild, tt.query, tt.body), tt.status, tt.code, tt.field)
		})
	}

	t.Run("DeletedCase", func(t *testing.T) {
		t.Parallel()
		e := requireErrorReply(t, b.request(t, "100", projection.QueryCaseGet, `{"case_number":7}`), "404", projection.CodeNotFound, "")
		if !e.Deleted {
			t.Fatalf("error %+v does not say the case is deleted", e)
		}
		_, err := b.client.CaseGet(t.Context(), qGuild, projection.CaseGetParams{CaseNumber: 7})
		var qe *projection.QueryError
		if !errors.As(err, &qe) || !errors.Is(err, projection.ErrNotFound) || !errors.Is(err, aggregate.ErrCaseDeleted) {
			t.Fatalf("client error %v", err)
		}
		res, err := b.client.CaseGet(t.Context(), qGuild, projection.CaseGetParams{CaseNumber: 7, IncludeDeleted: true})
		if err != nil || !res.Case.Deleted {
			t.Fatalf("deleted case with include_deleted: %+v %v", res, err)
		}
	})

	t.Run("ClientErrors", func(t *testing.T) {
		t.Parallel()
		_, err := b.client.GuildCases(t.Context(), qGuild, projection.GuildCasesParams{PageParams: projection.PageParams{Limit: 5000}})
		var qe *projection.QueryError
		if !errors.As(err, &qe) || qe.Code != projection.CodeInvalidArgument || qe.Field != "limit" || !errors.Is(err, projection.ErrInvalidArgument) {
			t.Fatalf("client error %v", err)
		}
		_, err = b.client.GuildCases(t.Context(), 0, projection.GuildCasesParams{})
		if !errors.As(err, &qe) || qe.Field != "guild_id" {
			t.Fatalf("guild zero: %v", err)
		}
		// No service on the prefix: unavailable.
		other, err := projection.NewQueryClient(b.nc, projection.WithQueryPrefix("elsewhere"), projection.WithQueryTimeout(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := other.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{}); !errors.Is(err, projection.ErrUnavailable) {
			t.Fatalf("no responders: %v", err)
		}
	})
}

func TestQueryServiceMinSeq(t *testing.T) {
	t.Parallel()
	b := setupQueryService(t, func(c *projection.QueryServiceConfig) { c.MinSeqWait = time.Minute })
	ctx := t.Context()
	// Reached already: answers at once.
	if _, err := b.client.GuildCaseCount(ctx, qGuild, projection.GuildCaseCountParams{QueryMeta: projection.QueryMeta{MinSeq: b.log.seq}}); err != nil {
		t.Fatal(err)
	}
	// A command's events, not applied yet: the request carries their seq.
	n := b.log.open(qGuild, events.CaseFields{Type: aggregate.TypeBan, UserID: qDave, ModeratorID: qMod9, Reason: "read your writes"})
	target := b.log.seq
	type reply struct {
		res *projection.UserRestrictionResult
		err error
	}
	done := make(chan reply, 1)
	go func() {
		res, err := b.client.UserRestriction(ctx, qGuild, projection.UserRestrictionParams{
			QueryMeta: projection.QueryMeta{MinSeq: target}, UserID: qDave, Family: aggregate.FamilyBan})
		done <- reply{res, err}
	}()
	testenv.Eventually(t, 10*time.Second, func() bool { return b.svc.MinSeqWaitsForTest() == 1 }, "the query waits for min_seq")
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
	if r.err != nil || !r.res.Restricted || r.res.Restriction.CaseNumber != n {
		t.Fatalf("after the batch: %+v %v", r.res, r.err)
	}
}

func TestQueryServiceMinSeqUnavailable(t *testing.T) {
	t.Parallel()
	const wait = 300 * time.Millisecond
	b := setupQueryService(t, func(c *projection.QueryServiceConfig) { c.MinSeqWait = wait })
	start := time.Now()
	body := `{"min_seq":` + strconvUint(b.log.seq+100) + `}`
	e := requireErrorReply(t, b.request(t, "100", projection.QueryGuildCaseCount, body), "503", projection.CodeUnavailable, "")
	if d := time.Since(start); d < wait {
		t.Fatalf("answered unavailable after %s, before the wait of %s", d, wait)
	}
	if !strings.Contains(e.Message, "min_seq") {
		t.Fatalf("message %q", e.Message)
	}
	_, err := b.client.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{QueryMeta: projection.QueryMeta{MinSeq: b.log.seq + 100}})
	if !errors.Is(err, projection.ErrUnavailable) {
		t.Fatalf("client: %v", err)
	}
}

func TestQueryServiceLifecycle(t *testing.T) {
	t.Parallel()
	qb := setupQueries(t, nil)
	env := testenv.NATS(t)
	if _, err := projection.NewQueryService(projection.QueryServiceConfig{}); err == nil {
		t.Fatal("a service without a connection and queries")
	}
	other, err := projection.NewStore(qb.pool, "other_schema")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := projection.NewQueryService(projection.QueryServiceConfig{Conn: env.Conn(t), Queries: qb.queries, Store: other}); err == nil {
		t.Fatal("a store of another schema")
	}
	// Without a Store, the Queries' schema is used.
	svc, err := projection.NewQueryService(projection.QueryServiceConfig{Conn: env.Conn(t), Queries: qb.queries, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := svc.Start(t.Context()); err == nil {
		t.Fatal("started twice")
	}
	client, err := projection.NewQueryClient(env.Conn(t))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := client.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{QueryMeta: projection.QueryMeta{MinSeq: qb.log.seq}}); err != nil || res.Total != 11 {
		t.Fatalf("count: %+v %v", res, err)
	}
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	select {
	case <-svc.Stopped():
	default:
		t.Fatal("Stopped not closed after Stop")
	}
	if err := svc.Stop(t.Context()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := client.GuildCaseCount(t.Context(), qGuild, projection.GuildCaseCountParams{}); !errors.Is(err, projection.ErrUnavailable) {
		t.Fatalf("after Stop: %v", err)
	}
}

func strconvUint(v uint64) string {
	b, _ := json.Marshal(v)
	return string(b)
}
