package wire

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/aggregate"
)

// Two services' sentinels, as command and projection make them.
var (
	errLedgerUnavailable = NewSentinel(CodeUnavailable, "ledger unavailable")
	errLedgerInternal    = NewSentinel(CodeInternal, "ledger internal error")
	errModelUnavailable  = NewSentinel(CodeUnavailable, "read model unavailable")
)

func TestCodeStatus(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		code Code
		want int
	}{
		{CodeInvalidArgument, 400},
		{CodeNotFound, 404},
		{CodeConflict, 409},
		{CodeUnavailable, 503},
		{CodeInternal, 500},
		{"", 500},
		{"teapot", 500},
	} {
		if got := tc.code.Status(); got != tc.want {
			t.Errorf("%q.Status() = %d, want %d", tc.code, got, tc.want)
		}
	}
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	if got := (&Error{Code: CodeInvalidArgument, Field: "user_id", Message: "bad"}).Error(); got != "invalid_argument: user_id: bad" {
		t.Errorf("with field: %q", got)
	}
	if got := (&Error{Code: CodeUnavailable, Message: "later"}).Error(); got != "unavailable: later" {
		t.Errorf("without field: %q", got)
	}
}

func TestErrorIs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		err    *Error
		target error
		want   bool
	}{
		{"invalid matches ErrInvalidArgument", &Error{Code: CodeInvalidArgument}, aggregate.ErrInvalidArgument, true},
		{"not_found matches ErrCaseNotFound", &Error{Code: CodeNotFound}, aggregate.ErrCaseNotFound, true},
		{"not_found is not ErrCaseDeleted", &Error{Code: CodeNotFound}, aggregate.ErrCaseDeleted, false},
		{"deleted not_found matches ErrCaseDeleted", &Error{Code: CodeNotFound, Deleted: true}, aggregate.ErrCaseDeleted, true},
		{"deleted not_found matches ErrCaseNotFound", &Error{Code: CodeNotFound, Deleted: true}, aggregate.ErrCaseNotFound, true},
		{"Deleted on another code is not ErrCaseDeleted", &Error{Code: CodeConflict, Deleted: true}, aggregate.ErrCaseDeleted, false},
		{"conflict matches ErrConflict", &Error{Code: CodeConflict}, aggregate.ErrConflict, true},
		{"unavailable matches its sentinel", &Error{Code: CodeUnavailable}, errLedgerUnavailable, true},
		{"unavailable matches another service's sentinel", &Error{Code: CodeUnavailable}, errModelUnavailable, true},
		{"internal matches its sentinel", &Error{Code: CodeInternal}, errLedgerInternal, true},
		{"internal is not unavailable", &Error{Code: CodeInternal}, errLedgerUnavailable, false},
		{"unavailable is not internal", &Error{Code: CodeUnavailable}, errLedgerInternal, false},
		{"invalid is not conflict", &Error{Code: CodeInvalidArgument}, aggregate.ErrConflict, false},
		{"conflict is not not_found", &Error{Code: CodeConflict}, aggregate.ErrCaseNotFound, false},
		{"no match for ErrBadEvent", &Error{Code: CodeInternal}, aggregate.ErrBadEvent, false},
		{"no match for a plain error", &Error{Code: CodeInternal}, errors.New("internal"), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if got := errors.Is(tc.err, tc.target); got != tc.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tc.err, tc.target, got, tc.want)
			}
			// Wrapped, as a client's caller sees it.
			if got := errors.Is(fmt.Errorf("open: %w", tc.err), tc.target); got != tc.want {
				t.Errorf("wrapped: errors.Is = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSentinelWrapsPlainly(t *testing.T) {
	t.Parallel()
	if errLedgerUnavailable.Error() != "ledger unavailable" {
		t.Errorf("message %q", errLedgerUnavailable)
	}
	err := fmt.Errorf("%w: gave up", errLedgerUnavailable)
	if !errors.Is(err, errLedgerUnavailable) || errors.Is(err, errModelUnavailable) {
		t.Errorf("a wrapped sentinel matches itself only: %v", err)
	}
}

func TestErrorOf(t *testing.T) {
	t.Parallel()
	own := &Error{Code: CodeConflict, Message: "as sent"}
	for _, tc := range []struct {
		name string
		err  error
		want Error
		// same: ErrorOf returns the *Error in the chain itself.
		same *Error
	}{
		{name: "an *Error as it is", err: fmt.Errorf("call: %w", own), same: own},
		{name: "validation error names its field",
			err:  fmt.Errorf("open: %w", &aggregate.ValidationError{Field: "reason", Message: "too long"}),
			want: Error{Code: CodeInvalidArgument, Field: "reason", Message: "too long"}},
		{name: "invalid argument without a field",
			err:  fmt.Errorf("%w: no", aggregate.ErrInvalidArgument),
			want: Error{Code: CodeInvalidArgument, Message: "invalid argument: no"}},
		{name: "case not found",
			err:  fmt.Errorf("%w: case 7", aggregate.ErrCaseNotFound),
			want: Error{Code: CodeNotFound, Message: "case not found: case 7"}},
		{name: "case deleted",
			err:  fmt.Errorf("%w: case 7", aggregate.ErrCaseDeleted),
			want: Error{Code: CodeNotFound, Message: "case is deleted: case 7", Deleted: true}},
		{name: "not found and deleted",
			err:  fmt.Errorf("case 7: %w: %w", aggregate.ErrCaseNotFound, aggregate.ErrCaseDeleted),
			want: Error{Code: CodeNotFound, Message: "case 7: case not found: case is deleted", Deleted: true}},
		{name: "conflict",
			err:  fmt.Errorf("%w: case 7 exists", aggregate.ErrConflict),
			want: Error{Code: CodeConflict, Message: "conflict: case 7 exists"}},
		{name: "a service's unavailable sentinel",
			err:  fmt.Errorf("%w: gave up after 3 attempts", errLedgerUnavailable),
			want: Error{Code: CodeUnavailable, Message: "ledger unavailable: gave up after 3 attempts"}},
		{name: "another service's unavailable sentinel",
			err:  fmt.Errorf("query x: %w", errModelUnavailable),
			want: Error{Code: CodeUnavailable, Message: "query x: read model unavailable"}},
		{name: "a service's internal sentinel",
			err:  fmt.Errorf("%w: bad state", errLedgerInternal),
			want: Error{Code: CodeInternal, Message: "ledger internal error: bad state"}},
		{name: "anything else is internal",
			err:  errors.New("disk on fire"),
			want: Error{Code: CodeInternal, Message: "disk on fire"}},
		{name: "bad event is internal",
			err:  fmt.Errorf("%w: second open", aggregate.ErrBadEvent),
			want: Error{Code: CodeInternal, Message: "event does not fit the case: second open"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ErrorOf(tc.err)
			if tc.same != nil {
				if got != tc.same {
					t.Fatalf("ErrorOf = %p %+v, want the error in the chain %p", got, got, tc.same)
				}
				return
			}
			if *got != tc.want {
				t.Fatalf("ErrorOf = %+v, want %+v", *got, tc.want)
			}
			// What the service's error matched, its wire form matches too.
			for _, target := range []error{aggregate.ErrInvalidArgument, aggregate.ErrCaseNotFound, aggregate.ErrCaseDeleted,
				aggregate.ErrConflict, errLedgerUnavailable, errLedgerInternal} {
				if errors.Is(tc.err, target) && !errors.Is(got, target) {
					t.Errorf("%v matches %v, its wire form %v does not", tc.err, target, got)
				}
			}
		})
	}
}

func TestInvalidf(t *testing.T) {
	t.Parallel()
	got := Invalidf("cases[2].type", "must be one of %d types", 3)
	want := Error{Code: CodeInvalidArgument, Field: "cases[2].type", Message: "must be one of 3 types"}
	if *got != want {
		t.Fatalf("Invalidf = %+v, want %+v", *got, want)
	}
}

func TestErrorReplyJSON(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		err  Error
		want string
	}{
		{"every field", Error{Code: CodeNotFound, Message: "case 7", Field: "case_number", Deleted: true},
			`{"error":{"code":"not_found","message":"case 7","field":"case_number","deleted":true}}`},
		{"empty field and deleted left out", Error{Code: CodeUnavailable, Message: "later"},
			`{"error":{"code":"unavailable","message":"later"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(ErrorReply{Error: &tc.err})
			if err != nil || string(b) != tc.want {
				t.Fatalf("json = %s %v, want %s", b, err, tc.want)
			}
			back, ok := DecodeErrorReply(b)
			if !ok || *back != tc.err {
				t.Fatalf("DecodeErrorReply = %+v %v, want %+v", back, ok, tc.err)
			}
		})
	}
}

func TestDecodeErrorReplyRefuses(t *testing.T) {
	t.Parallel()
	for _, body := range []string{``, `null`, `{}`, `{"error":null}`, `{"error":{}}`, `{"error":{"message":"no code"}}`, `[1]`, `{"case":{}}`} {
		if e, ok := DecodeErrorReply([]byte(body)); ok {
			t.Errorf("DecodeErrorReply(%s) = %+v, true; want not an error reply", body, e)
		}
	}
}

func TestReplyError(t *testing.T) {
	t.Parallel()
	msg := func(code, desc, body string) *nats.Msg {
		m := nats.NewMsg("_INBOX.x")
		if code != "" {
			m.Header.Set(micro.ErrorCodeHeader, code)
			m.Header.Set(micro.ErrorHeader, desc)
		}
		m.Data = []byte(body)
		return m
	}
	for _, tc := range []struct {
		name string
		msg  *nats.Msg
		want *Error
	}{
		{"success reply", msg("", "", `{"seq":1}`), nil},
		{"success reply without headers", &nats.Msg{Data: []byte(`{"error":{"code":"conflict","message":"x"}}`)}, nil},
		{"error reply", msg("409", "x", `{"error":{"code":"conflict","message":"x"}}`), &Error{Code: CodeConflict, Message: "x"}},
		{"micro error without our body", msg("503", "no responders", `oops`), &Error{Code: CodeInternal, Message: "no responders"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := ReplyError(tc.msg)
			switch {
			case tc.want == nil && got != nil:
				t.Fatalf("ReplyError = %+v, want nil", got)
			case tc.want != nil && (got == nil || *got != *tc.want):
				t.Fatalf("ReplyError = %+v, want %+v", got, tc.want)
			}
		})
	}
}
