package projection_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/projection"
)

// queryNames are every query endpoint's wire name.
var queryNames = []string{
	projection.QueryCaseGet, projection.QueryCaseGetByID, projection.QueryCaseExists, projection.QueryCaseList,
	projection.QueryCaseNumbers, projection.QueryCaseCount, projection.QueryCaseHistory, projection.QueryCaseNotes,
	projection.QueryUserCases, projection.QueryUserActiveCases, projection.QueryUserLatestCase, projection.QueryUserCaseCount,
	projection.QueryUserRestriction, projection.QueryUserRestrictions, projection.QueryModeratorCases, projection.QueryTypeCases,
	projection.QueryGuildCases, projection.QueryGuildCaseCount, projection.QueryGuildStatistics, projection.QueryRecentCases,
	projection.QueryDueExpiries,
}

// TestHostileQueries sends a catalogue of hostile bodies to every query:
// each gets an answer (an invalid_argument or not_found error, or a
// result) and never an internal error or silence; injection strings are
// data, not SQL; the service answers normally afterwards and the read
// model is unchanged.
func TestHostileQueries(t *testing.T) {
	t.Parallel()
	b := setupQueryService(t)
	countCases := func() int64 {
		var n int64
		if err := b.pool.QueryRow(context.Background(), `SELECT count(*) FROM modledger.cases`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := countCases()
	nested := strings.Repeat(`{"a":[`, 5000) + strings.Repeat(`]}`, 5000)
	injection := `'; DROP TABLE modledger.cases; --`
	bodies := map[string]string{
		"empty":                 ``,
		"null":                  `null`,
		"malformed":             `{"case_number":`,
		"deeply nested":         nested,
		"array":                 `[1,2,3]`,
		"invalid UTF-8":         "{\"search\":\"\xff\xfe\"}",
		"control characters":    "{\"search\":\"a\\u0000b\\u001bc\"}",
		"injection in search":   `{"search":` + strconv.Quote(injection) + `}`,
		"injection in type":     `{"type":` + strconv.Quote(injection) + `,"types":[` + strconv.Quote(injection) + `]}`,
		"injection in cursor":   `{"cursor":` + strconv.Quote(injection) + `}`,
		"injection in metadata": `{"metadata":{` + strconv.Quote(injection) + `:` + strconv.Quote(injection) + `}}`,
		"injection in status":   `{"status":` + strconv.Quote(injection) + `}`,
		"injection in family":   `{"family":` + strconv.Quote(injection) + `,"user_id":"1"}`,
		"snowflake as float":    `{"user_id":1.5e18,"case_number":1}`,
		"snowflake as number":   `{"user_id":42}`,
		"number out of range":   `{"case_number":4294967296,"limit":99999999999}`,
		"negative":              `{"case_number":-5,"limit":-1,"hours":-1}`,
		"time without zone":     `{"created_after":"2026-11-25T10:00:00","before":"2026-11-25T10:00:00"}`,
		"unknown fields":        `{"where":"1=1","order_by":"case_number; DROP TABLE x"}`,
		"huge string":           `{"search":"` + strings.Repeat("x", 200_000) + `"}`,
		"duplicate keys":        `{"case_number":1,"case_number":2}`,
		"min_seq far in future": `{"min_seq":18446744073709551615,"case_number":1}`,
	}
	for _, q := range queryNames {
		for name, body := range bodies {
			msg := b.request(t, "100", q, body)
			code := msg.Header.Get(micro.ErrorCodeHeader)
			if code == "" {
				if !json.Valid(msg.Data) {
					t.Errorf("%s, %s: a result that is not JSON: %.200s", q, name, msg.Data)
				}
				continue
			}
			var reply struct {
				Error *projection.QueryError `json:"error"`
			}
			if err := json.Unmarshal(msg.Data, &reply); err != nil || reply.Error == nil {
				t.Errorf("%s, %s: unreadable error reply %.200s", q, name, msg.Data)
				continue
			}
			switch reply.Error.Code {
			case projection.CodeInvalidArgument, projection.CodeNotFound:
			case projection.CodeUnavailable:
				if name != "min_seq far in future" {
					t.Errorf("%s, %s: unavailable: %s", q, name, reply.Error.Message)
				}
			default:
				t.Errorf("%s, %s: %s %s", q, name, reply.Error.Code, reply.Error.Message)
			}
		}
	}
	if got := countCases(); got != before {
		t.Fatalf("the read model has %d cases, had %d", got, before)
	}
	// Still answering, and the injection is data: a search for it finds
	// nothing and breaks nothing.
	msg := b.request(t, "100", projection.QueryCaseList, `{"search":`+strconv.Quote(injection)+`}`)
	if msg.Header.Get(micro.ErrorCodeHeader) != "" {
		t.Fatalf("search for an injection string: %s", msg.Data)
	}
}
