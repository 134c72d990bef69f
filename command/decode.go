package command

import (
	"github.com/google/uuid"

	"github.com/modledger/modledger/internal/wire"
)

// MaxRequestBytes is the largest command body the service reads; bigger
// ones are refused with invalid_argument before they are parsed. open_many
// and import carry up to MaxCasesPerBatch cases and may be this large; every
// other command must fit in MaxSingleRequestBytes.
const (
	MaxRequestBytes       = 1 << 20
	MaxSingleRequestBytes = 64 << 10
	// MaxCasesPerBatch bounds open_many and import: the messages of one
	// atomic batch (cases plus external id claims) stay within the server's
	// limit of 1000.
	MaxCasesPerBatch = 1000
)

// metaHolder is implemented by every params type through its embedded Meta.
type metaHolder interface{ meta() *Meta }

// decodeParams reads a command body strictly: unknown fields, trailing data
// and wrong types are errors that name the field. It checks the command id.
func decodeParams(body []byte, limit int, v metaHolder) *Error {
	opts := wire.DecodeOpts{UUIDFields: []string{"command_id", "correlation_id", "case_id"}}
	if werr := wire.Decode(body, limit, v, &opts); werr != nil {
		return werr
	}
	if v.meta().CommandID == uuid.Nil {
		return invalidf("command_id", "is required: a UUID that identifies this command")
	}
	return nil
}
