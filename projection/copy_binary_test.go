package projection

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// TestCopyBufferRoundTrips writes every kind of value copyBuffer knows,
// at its edges, and reads it back through pgx.
func TestCopyBufferRoundTrips(t *testing.T) {
	t.Parallel()
	pool := testenv.PostgresPool(t)
	type row struct {
		i8     int64
		i8null int64 // 0: NULL
		i4     int32
		b      bool
		text   string
		tnull  string // "": NULL
		id     uuid.UUID
		at     time.Time
		atNull *time.Time
		doc    string
		ids    []events.Snowflake
		texts  []string
	}
	old := time.Date(1969, 7, 20, 20, 17, 40, 123456000, time.UTC)
	rows := []row{
		{i8: -1 << 63, i8null: 0, i4: -1 << 31, text: "", tnull: "", id: uuid.Nil, at: old, atNull: nil, doc: `{}`},
		{i8: 1<<63 - 1, i8null: 42, i4: 1<<31 - 1, b: true, text: "ünïcödé '; DROP TABLE x; --\n\"", tnull: "open",
			id: uuid.Must(uuid.NewV7()), at: time.Date(2026, 11, 25, 12, 0, 0, 999999000, time.UTC), atNull: &old,
			doc: `{"a": [1, {"b": "\u00e9"}], "big": 1234567890123456789}`, ids: []events.Snowflake{1, 1<<63 - 1},
			texts: []string{"", "https://cdn.example.com/a.png", "ü"}},
	}
	err := pgx.BeginFunc(t.Context(), pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(t.Context(), `CREATE TEMP TABLE copy_test (n int, i8 bigint, i8null bigint, i4 integer,
			b boolean, text text, tnull text, id uuid, at timestamptz, at_null timestamptz, doc jsonb, ids bigint[],
			texts text[])`); err != nil {
			return err
		}
		w := newCopyBuffer(13, len(rows), 128)
		for i, r := range rows {
			w.row()
			w.int4(int32(i))
			w.int8(r.i8)
			w.int8OrNull(r.i8null)
			w.int4(r.i4)
			w.bool(r.b)
			w.text(r.text)
			w.textOrNull(r.tnull)
			w.uuid(r.id)
			w.timestamptz(r.at)
			w.timestamptzOrNull(r.atNull)
			w.jsonb([]byte(r.doc))
			int8Array(w, r.ids)
			w.textArray(r.texts)
		}
		if err := w.copyTo(t.Context(), tx, `COPY copy_test FROM STDIN (FORMAT binary)`); err != nil {
			return err
		}
		got, err := tx.Query(t.Context(), `SELECT i8, i8null, i4, b, text, tnull, id, at, at_null, doc, ids, texts FROM copy_test ORDER BY n`)
		if err != nil {
			return err
		}
		defer got.Close()
		for i := 0; got.Next(); i++ {
			var (
				r              = rows[i]
				i8null         *int64
				tnull          *string
				id             [16]byte
				at             time.Time
				atNull         *time.Time
				doc            []byte
				ids            []int64
				texts          []string
				i8             int64
				i4             int32
				b              bool
				text           string
				wantIDs        = make([]int64, len(r.ids))
				wantTexts      = r.texts
				wantDoc, haveD any
			)
			if err := got.Scan(&i8, &i8null, &i4, &b, &text, &tnull, &id, &at, &atNull, &doc, &ids, &texts); err != nil {
				return err
			}
			for j, x := range r.ids {
				wantIDs[j] = int64(x)
			}
			if wantTexts == nil {
				wantTexts = []string{}
			}
			_ = json.Unmarshal([]byte(r.doc), &wantDoc)
			_ = json.Unmarshal(doc, &haveD)
			wantDocJSON, _ := json.Marshal(wantDoc)
			haveDocJSON, _ := json.Marshal(haveD)
			if i8 != r.i8 || (i8null == nil) != (r.i8null == 0) || (i8null != nil && *i8null != r.i8null) || i4 != r.i4 ||
				b != r.b || text != r.text || (tnull == nil) != (r.tnull == "") || (tnull != nil && *tnull != r.tnull) ||
				id != r.id || !at.Equal(r.at) || (atNull == nil) != (r.atNull == nil) || (atNull != nil && !atNull.Equal(*r.atNull)) ||
				string(wantDocJSON) != string(haveDocJSON) || !slices.Equal(ids, wantIDs) && len(ids)+len(wantIDs) > 0 ||
				!slices.Equal(texts, wantTexts) {
				t.Errorf("row %d read back as %v %v %v %v %q %v %v %v %v %s %v %q, want %+v", i, i8, i8null, i4, b, text, tnull, id,
					at, atNull, doc, ids, texts, r)
			}
		}
		return got.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
}
