package events_test

import (
	"encoding/json"
	"errors"
	"math"
	"testing"

	"github.com/modledger/modledger/events"
)

func TestSnowflakeUnmarshalJSON(t *testing.T) {
	t.Parallel()

	tests := []struct {
		name    string
		in      string
		want    events.Snowflake
		wantErr bool // wraps ErrInvalidSnowflake
		invalid bool // decodes, but Validate fails
	}{
		{name: "string", in: `"1128457362048573440"`, want: 1128457362048573440},
		{name: "number", in: `1128457362048573440`, want: 1128457362048573440},
		{name: "one", in: `"1"`, want: 1},
		{name: "max int64 string", in: `"9223372036854775807"`, want: math.MaxInt64},
		{name: "max int64 number", in: `9223372036854775807`, want: math.MaxInt64},
		// Above int64: held by a uint64, so it decodes; Validate rejects it.
		{name: "max int64 plus one", in: `"9223372036854775808"`, want: math.MaxInt64 + 1, invalid: true},
		{name: "max uint64", in: `18446744073709551615`, want: math.MaxUint64, invalid: true},
		// Zero and null are the unset value; Validate rejects them.
		{name: "zero string", in: `"0"`, want: 0, invalid: true},
		{name: "zero number", in: `0`, want: 0, invalid: true},
		{name: "null", in: `null`, want: 0, invalid: true},
		{name: "above uint64 string", in: `"18446744073709551616"`, wantErr: true},
		{name: "above uint64 number", in: `18446744073709551616`, wantErr: true},
		{name: "21 digits", in: `"100000000000000000000"`, wantErr: true},
		{name: "negative number", in: `-1`, wantErr: true},
		{name: "negative string", in: `"-1"`, wantErr: true},
		{name: "plus sign", in: `"+1"`, wantErr: true},
		{name: "float number", in: `1.5`, wantErr: true},
		{name: "float string", in: `"1.5"`, wantErr: true},
		{name: "integral float", in: `1.0`, wantErr: true},
		{name: "exponent", in: `1e3`, wantErr: true},
		{name: "exponent string", in: `"1e3"`, wantErr: true},
		{name: "empty string", in: `""`, wantErr: true},
		{name: "leading space", in: `" 1"`, wantErr: true},
		{name: "trailing space", in: `"1 "`, wantErr: true},
		{name: "letters", in: `"abc"`, wantErr: true},
		{name: "hex", in: `"0x1f"`, wantErr: true},
		{name: "underscore", in: `"1_000"`, wantErr: true},
		{name: "fullwidth digit", in: `"１"`, wantErr: true},
		{name: "null string", in: `"null"`, wantErr: true},
		{name: "bool", in: `true`, wantErr: true},
		{name: "object", in: `{}`, wantErr: true},
		{name: "array", in: `["1"]`, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := events.Snowflake(7) // must be overwritten on success
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr {
				if !errors.Is(err, events.ErrInvalidSnowflake) {
					t.Fatalf("Unmarshal(%s) error = %v, want ErrInvalidSnowflake", tt.in, err)
				}
				var se *events.SnowflakeSyntaxError
				if !errors.As(err, &se) || se.Value != tt.in {
					t.Fatalf("Unmarshal(%s) error = %#v, want a SnowflakeSyntaxError with the value", tt.in, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s): %v", tt.in, err)
			}
			if got != tt.want {
				t.Fatalf("Unmarshal(%s) = %d, want %d", tt.in, got, tt.want)
			}
			err = got.Validate()
			if tt.invalid != (err != nil) {
				t.Fatalf("Validate(%d) = %v, want invalid=%v", got, err, tt.invalid)
			}
			if err != nil && !errors.Is(err, events.ErrInvalidSnowflake) {
				t.Fatalf("Validate(%d) = %v, want ErrInvalidSnowflake", got, err)
			}
		})
	}
}

func TestSnowflakeInStruct(t *testing.T) {
	t.Parallel()

	type body struct {
		UserID events.Snowflake   `json:"user_id"`
		Roles  []events.Snowflake `json:"roles"`
	}
	var b body
	if err := json.Unmarshal([]byte(`{"user_id":934871256019738654,"roles":["1","2"]}`), &b); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if b.UserID != userID || len(b.Roles) != 2 || b.Roles[0] != 1 || b.Roles[1] != 2 {
		t.Fatalf("Unmarshal = %+v", b)
	}
	out, err := json.Marshal(b)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if want := `{"user_id":"934871256019738654","roles":["1","2"]}`; string(out) != want {
		t.Fatalf("Marshal = %s, want %s", out, want)
	}

	err = json.Unmarshal([]byte(`{"user_id":1.5}`), &b)
	if !errors.Is(err, events.ErrInvalidSnowflake) {
		t.Fatalf("Unmarshal float field: error = %v, want ErrInvalidSnowflake", err)
	}
}

func TestSnowflakeMarshalJSON(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in   events.Snowflake
		want string
	}{
		{in: 0, want: `"0"`},
		{in: 1, want: `"1"`},
		{in: guildID, want: `"1128457362048573440"`},
		{in: math.MaxInt64, want: `"9223372036854775807"`},
		{in: math.MaxUint64, want: `"18446744073709551615"`},
	}
	for _, tt := range tests {
		got, err := json.Marshal(tt.in)
		if err != nil {
			t.Fatalf("Marshal(%d): %v", uint64(tt.in), err)
		}
		if string(got) != tt.want {
			t.Fatalf("Marshal(%d) = %s, want %s", uint64(tt.in), got, tt.want)
		}
		var back events.Snowflake
		if err := json.Unmarshal(got, &back); err != nil || back != tt.in {
			t.Fatalf("Unmarshal(%s) = %d, %v, want %d", got, back, err, uint64(tt.in))
		}
	}
}

func TestSnowflakeMapKey(t *testing.T) {
	t.Parallel()

	in := map[events.Snowflake]int{userID: 3, moderatorID: 1}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	if want := `{"272937604339466240":1,"934871256019738654":3}`; string(b) != want {
		t.Fatalf("Marshal = %s, want %s", b, want)
	}
	var out map[events.Snowflake]int
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("Unmarshal: %v", err)
	}
	if len(out) != 2 || out[userID] != 3 || out[moderatorID] != 1 {
		t.Fatalf("Unmarshal = %v", out)
	}
	err = json.Unmarshal([]byte(`{"x1":1}`), &out)
	if !errors.Is(err, events.ErrInvalidSnowflake) {
		t.Fatalf("Unmarshal bad key: error = %v, want ErrInvalidSnowflake", err)
	}
}

func TestParseSnowflake(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in      string
		want    events.Snowflake
		wantErr bool
	}{
		{in: "1", want: 1},
		{in: "1128457362048573440", want: guildID},
		{in: "9223372036854775807", want: math.MaxInt64},
		{in: "9223372036854775808", wantErr: true},
		{in: "18446744073709551615", wantErr: true},
		{in: "18446744073709551616", wantErr: true},
		{in: "0", wantErr: true},
		{in: "", wantErr: true},
		{in: " 1", wantErr: true},
		{in: "1 ", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "+1", wantErr: true},
		{in: "1.5", wantErr: true},
		{in: "1e3", wantErr: true},
		{in: "0x1f", wantErr: true},
		{in: "1_000", wantErr: true},
		{in: "abc", wantErr: true},
		{in: `"1"`, wantErr: true},
	}
	for _, tt := range tests {
		got, err := events.ParseSnowflake(tt.in)
		if tt.wantErr {
			if !errors.Is(err, events.ErrInvalidSnowflake) {
				t.Fatalf("ParseSnowflake(%q) = %d, %v, want ErrInvalidSnowflake", tt.in, got, err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Fatalf("ParseSnowflake(%q) = %d, %v, want %d", tt.in, got, err, tt.want)
		}
		if got.String() != tt.in {
			t.Fatalf("String() = %q, want %q", got.String(), tt.in)
		}
	}
}

func TestSnowflakeValidate(t *testing.T) {
	t.Parallel()

	tests := []struct {
		in    events.Snowflake
		valid bool
	}{
		{in: 0},
		{in: 1, valid: true},
		{in: guildID, valid: true},
		{in: math.MaxInt64, valid: true},
		{in: math.MaxInt64 + 1},
		{in: math.MaxUint64},
	}
	for _, tt := range tests {
		err := tt.in.Validate()
		if tt.valid && err != nil {
			t.Fatalf("Validate(%d) = %v, want nil", uint64(tt.in), err)
		}
		if !tt.valid && !errors.Is(err, events.ErrInvalidSnowflake) {
			t.Fatalf("Validate(%d) = %v, want ErrInvalidSnowflake", uint64(tt.in), err)
		}
		if tt.in.IsZero() != (tt.in == 0) {
			t.Fatalf("IsZero(%d) = %v", uint64(tt.in), tt.in.IsZero())
		}
	}
}
