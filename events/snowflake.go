package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
)

// Snowflake is a Discord-style 64-bit id. Valid snowflakes are greater than
// zero and fit in an int64, so that they can be stored in PostgreSQL's bigint
// without loss. On the wire a Snowflake is a JSON string; a JSON integer is
// accepted when decoding, a float or any other type is not.
type Snowflake uint64

// ParseSnowflake parses s as a decimal snowflake in its canonical form (no
// sign, no leading zero) and checks that it is valid.
func ParseSnowflake(s string) (Snowflake, error) {
	if len(s) > 1 && s[0] == '0' {
		return 0, fmt.Errorf("%w: %q has a leading zero", ErrInvalidSnowflake, s)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q is not a decimal snowflake", ErrInvalidSnowflake, s)
	}
	id := Snowflake(v)
	if err := id.Validate(); err != nil {
		return 0, err
	}
	return id, nil
}

// Validate reports whether id is greater than zero and fits in an int64.
func (id Snowflake) Validate() error {
	if id == 0 {
		return fmt.Errorf("%w: must be greater than zero", ErrInvalidSnowflake)
	}
	if uint64(id) > math.MaxInt64 {
		return fmt.Errorf("%w: %d does not fit in a signed 64-bit integer", ErrInvalidSnowflake, uint64(id))
	}
	return nil
}

// IsZero reports whether id is unset.
func (id Snowflake) IsZero() bool { return id == 0 }

// String returns the decimal form of id.
func (id Snowflake) String() string { return strconv.FormatUint(uint64(id), 10) }

// MarshalJSON writes id as a JSON string.
func (id Snowflake) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 22)
	b = append(b, '"')
	b = strconv.AppendUint(b, uint64(id), 10)
	return append(b, '"'), nil
}

// UnmarshalJSON reads a JSON string or integer. It does not validate the
// range beyond what a uint64 holds; callers validate with [Snowflake.Validate]
// so that the error can name the field. Zero and null read as the unset
// value (Validate rejects it); negative numbers, floats, exponents, signs,
// spaces and any other type are errors because they can never be a snowflake.
func (id *Snowflake) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if bytes.Equal(b, []byte("null")) {
		*id = 0
		return nil
	}
	s := b
	if len(b) >= 2 && b[0] == '"' && b[len(b)-1] == '"' {
		s = b[1 : len(b)-1]
	}
	if len(s) == 0 || len(s) > 20 {
		return &SnowflakeSyntaxError{Value: string(b)}
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return &SnowflakeSyntaxError{Value: string(b)}
		}
	}
	v, err := strconv.ParseUint(string(s), 10, 64)
	if err != nil {
		return &SnowflakeSyntaxError{Value: string(b)}
	}
	*id = Snowflake(v)
	return nil
}

// MarshalText writes id in decimal, so that snowflakes can be map keys.
func (id Snowflake) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads a decimal snowflake without validating its range.
func (id *Snowflake) UnmarshalText(b []byte) error {
	v, err := strconv.ParseUint(string(b), 10, 64)
	if err != nil {
		return fmt.Errorf("%w: %q is not a decimal snowflake", ErrInvalidSnowflake, b)
	}
	*id = Snowflake(v)
	return nil
}

var _ json.Marshaler = Snowflake(0)

// SnowflakeSyntaxError is returned when a JSON value cannot be a snowflake.
// It matches [ErrInvalidSnowflake] with errors.Is.
type SnowflakeSyntaxError struct {
	// Value is the JSON value as it was sent.
	Value string
}

// Error says which value is not a snowflake.
func (e *SnowflakeSyntaxError) Error() string {
	return fmt.Sprintf("%s is not a decimal snowflake in the range 1 to 9223372036854775807", e.Value)
}

// Unwrap returns ErrInvalidSnowflake.
func (e *SnowflakeSyntaxError) Unwrap() error { return ErrInvalidSnowflake }
