package projection

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
)

// fuzzParams makes an empty params value of every query.
var fuzzParams = []func() queryParams{
	func() queryParams { return &CaseGetParams{} },
	func() queryParams { return &CaseGetByIDParams{} },
	func() queryParams { return &CaseExistsParams{} },
	func() queryParams { return &CaseListParams{} },
	func() queryParams { return &CaseNumbersParams{} },
	func() queryParams { return &CaseCountParams{} },
	func() queryParams { return &CaseHistoryParams{} },
	func() queryParams { return &CaseNotesParams{} },
	func() queryParams { return &UserCasesParams{} },
	func() queryParams { return &UserActiveCasesParams{} },
	func() queryParams { return &UserLatestCaseParams{} },
	func() queryParams { return &UserCaseCountParams{} },
	func() queryParams { return &UserRestrictionParams{} },
	func() queryParams { return &UserRestrictionsParams{} },
	func() queryParams { return &ModeratorCasesParams{} },
	func() queryParams { return &TypeCasesParams{} },
	func() queryParams { return &GuildCasesParams{} },
	func() queryParams { return &GuildCaseCountParams{} },
	func() queryParams { return &GuildStatisticsParams{} },
	func() queryParams { return &RecentCasesParams{} },
	func() queryParams { return &DueExpiriesParams{} },
}

// FuzzQueryParamsDecode feeds any bytes to the strict decoder of every
// query's params. A body is either refused with an invalid_argument error
// that says what is wrong, or read; what is read encodes and reads back to
// the same params, and validation (which never panics) treats both alike.
func FuzzQueryParamsDecode(f *testing.F) {
	if len(fuzzParams) != len(queryEndpoints()) {
		f.Fatalf("%d params types for %d endpoints", len(fuzzParams), len(queryEndpoints()))
	}
	for _, s := range []string{
		``, `{}`, `[`, `null`, `{"case_number":1}`, `{"case_number":4294967296}`,
		`{"case_id":"0190d6a4-0000-7000-8000-000000000000","include_deleted":true}`,
		`{"user_id":"1","limit":5,"cursor":"eyJrIjoiYyIsIm8iOiJkZXNjIiwibiI6NX0","order":"asc"}`,
		`{"metadata":{"a":[1, {"b": "\u00e9"}]},"search":"raid -alt \"spam links\"","types":["BAN","TEMPBAN"],"user_roles":["1",2]}`,
		`{"min_seq":5,"before":"2026-01-02T15:04:05Z","types":["TEMPBAN"],"limit":1000}`,
		`{"from":"2026-01-01T00:00:00+02:00","to":"2026-01-05T00:00:00Z"}`,
		`{"family":"ban","user_id":"9223372036854775807"}`,
		`{"has_expiry":false,"expiry_processed":true,"created_after":"2026-01-01T00:00:00Z","created_before":"2027-01-01T00:00:00Z"}`,
		`{"moderator_id":"18446744073709551615","status":"closed","hours":8784}`,
		`{"type":"WARN","unknown":1}`, `{"case_number":1} x`, `{"user_id":-1}`, `{"metadata":"\u0000"}`,
	} {
		for i := range fuzzParams {
			f.Add(uint8(i), []byte(s))
		}
	}
	reg := aggregate.DefaultRegistry()
	q := &Queries{registry: reg, families: map[aggregate.Family]bool{}, now: func() time.Time {
		return time.Date(2026, 11, 3, 2, 0, 0, 0, time.UTC)
	}}
	for _, fam := range reg.Families() {
		q.families[fam] = true
	}
	f.Fuzz(func(t *testing.T, which uint8, body []byte) {
		mk := fuzzParams[int(which)%len(fuzzParams)]
		p := mk()
		if qerr := decodeQueryParams(body, p); qerr != nil {
			if qerr.Code != CodeInvalidArgument || qerr.Message == "" {
				t.Fatalf("decode %q: error %+v", body, qerr)
			}
			return
		}
		again, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("encode what was read from %q: %v", body, err)
		}
		p2 := mk()
		if qerr := decodeQueryParams(again, p2); qerr != nil {
			t.Fatalf("read %q from %q: %v", again, body, qerr)
		}
		err1, err2 := p.validate(q, 100), p2.validate(q, 100)
		var ve1, ve2 *aggregate.ValidationError
		switch {
		case (err1 == nil) != (err2 == nil):
			t.Fatalf("validation of %q: %v, of its re-encoding %q: %v", body, err1, again, err2)
		case err1 != nil:
			if !errors.As(err1, &ve1) || !errors.As(err2, &ve2) || ve1.Field != ve2.Field {
				t.Fatalf("validation of %q: %v, of %q: %v", body, err1, again, err2)
			}
			if !errors.Is(toQueryError(err1), ErrInvalidArgument) {
				t.Fatalf("validation error %v is not invalid_argument on the wire", err1)
			}
			return
		}
		b1, _ := json.Marshal(p)
		b2, _ := json.Marshal(p2)
		if !bytes.Equal(b1, b2) {
			t.Fatalf("params changed through a round trip:\n%s\n%s", b1, b2)
		}
	})
}
