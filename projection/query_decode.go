package projection

import (
	"github.com/modledger/modledger/internal/wire"
)

// QueryRequestBytesMax is the largest query body the service reads; bigger
// ones are refused with invalid_argument before they are parsed.
const QueryRequestBytesMax = 64 << 10

// decodeQueryParams reads a query body strictly, as the command service
// reads commands: unknown fields, trailing data and wrong types are
// invalid_argument errors that name the field where they can. An empty
// body is the empty object: queries without parameters need none.
func decodeQueryParams(body []byte, v any) *QueryError {
	return wire.Decode(body, QueryRequestBytesMax, v, &wire.DecodeOpts{EmptyIsObject: true, UUIDFields: []string{"case_id"}})
}
