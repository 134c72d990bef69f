package projection

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// copyBuffer builds one COPY ... FROM STDIN (FORMAT binary) stream: the
// projector's rows go to PostgreSQL without pgx's per-value encode plans and
// without boxing every value in an interface (pgx.CopyFrom's [][]any), which
// in a bulk load cost a fifth of the projector's CPU and most of its
// allocations. It knows only the column types the projection writes. The
// zero value is not usable: see newCopyBuffer.
type copyBuffer struct {
	buf    []byte
	fields int16
	rows   int
}

// PostgreSQL's binary COPY header and the array element types used here.
var copyHeader = []byte("PGCOPY\n\377\r\n\x00\x00\x00\x00\x00\x00\x00\x00\x00")

const (
	oidInt8 = 20
	oidText = 25
)

// postgresEpoch is 2000-01-01 00:00:00 UTC in Unix microseconds: a
// timestamptz counts microseconds from it.
const postgresEpoch = 946_684_800 * 1_000_000

// newCopyBuffer returns a buffer for rows of fields columns, with room for
// about rows rows of rowSize bytes.
func newCopyBuffer(fields, rows, rowSize int) *copyBuffer {
	c := &copyBuffer{buf: make([]byte, 0, len(copyHeader)+rows*rowSize+2), fields: int16(fields)}
	c.buf = append(c.buf, copyHeader...)
	return c
}

// row starts a row; its fields follow, in the COPY's column order.
func (c *copyBuffer) row() {
	c.buf = binary.BigEndian.AppendUint16(c.buf, uint16(c.fields))
	c.rows++
}

func (c *copyBuffer) size(n int) { c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(int32(n))) }

func (c *copyBuffer) null() { c.size(-1) }

func (c *copyBuffer) int8(v int64) {
	c.size(8)
	c.buf = binary.BigEndian.AppendUint64(c.buf, uint64(v))
}

// int8OrNull writes v, or NULL for zero (an unset snowflake).
func (c *copyBuffer) int8OrNull(v int64) {
	if v == 0 {
		c.null()
		return
	}
	c.int8(v)
}

func (c *copyBuffer) int4(v int32) {
	c.size(4)
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(v))
}

func (c *copyBuffer) bool(v bool) {
	c.size(1)
	if v {
		c.buf = append(c.buf, 1)
	} else {
		c.buf = append(c.buf, 0)
	}
}

func (c *copyBuffer) text(s string) {
	c.size(len(s))
	c.buf = append(c.buf, s...)
}

// textOrNull writes s, or NULL for "".
func (c *copyBuffer) textOrNull(s string) {
	if s == "" {
		c.null()
		return
	}
	c.text(s)
}

func (c *copyBuffer) uuid(u [16]byte) {
	c.size(16)
	c.buf = append(c.buf, u[:]...)
}

func (c *copyBuffer) timestamptz(t time.Time) {
	c.int8(t.Unix()*1_000_000 + int64(t.Nanosecond()/1000) - postgresEpoch)
}

func (c *copyBuffer) timestamptzOrNull(t *time.Time) {
	if t == nil {
		c.null()
		return
	}
	c.timestamptz(*t)
}

// jsonb writes a JSON document (binary jsonb is a version byte, 1, and the
// text).
func (c *copyBuffer) jsonb(doc []byte) {
	c.size(1 + len(doc))
	c.buf = append(c.buf, 1)
	c.buf = append(c.buf, doc...)
}

// arrayHeader writes a one-dimensional array's header (no dimension when it
// is empty) after its size, which the caller gives.
func (c *copyBuffer) arrayHeader(size, n int, elem uint32) {
	c.size(size)
	if n == 0 {
		c.buf = binary.BigEndian.AppendUint32(c.buf, 0)
		c.buf = binary.BigEndian.AppendUint32(c.buf, 0)
		c.buf = binary.BigEndian.AppendUint32(c.buf, elem)
		return
	}
	c.buf = binary.BigEndian.AppendUint32(c.buf, 1) // dimensions
	c.buf = binary.BigEndian.AppendUint32(c.buf, 0) // no nulls
	c.buf = binary.BigEndian.AppendUint32(c.buf, elem)
	c.buf = binary.BigEndian.AppendUint32(c.buf, uint32(n))
	c.buf = binary.BigEndian.AppendUint32(c.buf, 1) // lower bound
}

func arrayHeaderSize(n int) int {
	if n == 0 {
		return 12
	}
	return 20
}

// int8Array writes a bigint[] of the snowflakes.
func int8Array[S ~uint64](c *copyBuffer, v []S) {
	c.arrayHeader(arrayHeaderSize(len(v))+12*len(v), len(v), oidInt8)
	for _, x := range v {
		c.int8(int64(x))
	}
}

// textArray writes a text[].
func (c *copyBuffer) textArray(v []string) {
	size := arrayHeaderSize(len(v))
	for _, s := range v {
		size += 4 + len(s)
	}
	c.arrayHeader(size, len(v), oidText)
	for _, s := range v {
		c.text(s)
	}
}

// copyTo sends the rows with stmt, a COPY ... FROM STDIN (FORMAT binary)
// statement, on tx's connection.
func (c *copyBuffer) copyTo(ctx context.Context, tx pgx.Tx, stmt string) error {
	c.buf = binary.BigEndian.AppendUint16(c.buf, 0xffff) // trailer
	tag, err := tx.Conn().PgConn().CopyFrom(ctx, bytes.NewReader(c.buf), stmt)
	if err != nil {
		return err
	}
	if tag.RowsAffected() != int64(c.rows) {
		return fmt.Errorf("copied %d rows of %d", tag.RowsAffected(), c.rows)
	}
	return nil
}
