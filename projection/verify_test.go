package projection

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"sort"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// reference is the read model computed from the stream with aggregate's
// functions alone: what the projection must equal.
type reference struct {
	cases   map[caseKey]*aggregate.Case
	order   []caseKey
	evs     []events.Event
	redacts map[caseKey]uint64 // sequence of the last redaction
}

func foldReference(t testing.TB, evs []events.Event) *reference {
	t.Helper()
	r := &reference{cases: map[caseKey]*aggregate.Case{}, evs: evs, redacts: map[caseKey]uint64{}}
	for _, e := range evs {
		k := caseKey{e.GuildID, e.CaseNumber}
		c := r.cases[k]
		if c == nil {
			c = &aggregate.Case{}
			r.cases[k] = c
			r.order = append(r.order, k)
		}
		if err := c.Apply(e); err != nil {
			t.Fatalf("reference fold at %d: %v", e.Seq, err)
		}
		if e.Event == events.NameCaseRedacted {
			r.redacts[k] = e.Seq
		}
	}
	return r
}

// verifyReadModel fails t unless the read model in pool's control schema
// equals the reference fold of evs: every case row, note, event row,
// statistic and restriction.
func verifyReadModel(t testing.TB, pool *pgxpool.Pool, schema string, reg *aggregate.Registry, evs []events.Event) {
	t.Helper()
	ctx := context.Background()
	ref := foldReference(t, evs)
	tx, err := pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('search_path', $1, true)`, pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}

	// Cases.
	rows, err := tx.Query(ctx, `SELECT `+caseColumns+` FROM cases ORDER BY guild_id, case_number`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[caseKey]*aggregate.Case{}
	noteCounts := map[caseKey]int{}
	for rows.Next() {
		var r caseRow
		if err := rows.Scan(r.scanTargets()...); err != nil {
			t.Fatal(err)
		}
		c, err := r.toCase()
		if err != nil {
			t.Fatal(err)
		}
		k := caseKey{c.GuildID, c.CaseNumber}
		got[k] = c
		noteCounts[k] = int(r.noteCount)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(ref.cases) {
		t.Fatalf("read model has %d cases, the stream folds to %d", len(got), len(ref.cases))
	}
	for _, k := range ref.order {
		want := ref.cases[k].Clone()
		have := got[k]
		if have == nil {
			t.Fatalf("case %d of guild %d missing from the read model", k.number, k.guild)
		}
		if noteCounts[k] != len(want.Notes) {
			t.Fatalf("case %d/%d: note_count %d, want %d", k.guild, k.number, noteCounts[k], len(want.Notes))
		}
		if !jsonSame(have.Metadata, want.Metadata) {
			t.Fatalf("case %d/%d: metadata %s, want %s", k.guild, k.number, have.Metadata, want.Metadata)
		}
		want.Notes, have.Notes = nil, nil
		want.Metadata, have.Metadata = nil, nil
		if !reflect.DeepEqual(have, want) {
			hj, _ := json.Marshal(have)
			wj, _ := json.Marshal(want)
			t.Fatalf("case %d/%d differs:\nread model %s\nreference  %s", k.guild, k.number, hj, wj)
		}
	}

	// Notes.
	type noteRow struct {
		text     string
		evidence []string
		author   int64
	}
	nrows, err := tx.Query(ctx, `SELECT guild_id, case_number, author_id, text, evidence_urls FROM case_notes ORDER BY guild_id, case_number, seq`)
	if err != nil {
		t.Fatal(err)
	}
	notes := map[caseKey][]noteRow{}
	for nrows.Next() {
		var g, n int64
		var nr noteRow
		if err := nrows.Scan(&g, &n, &nr.author, &nr.text, &nr.evidence); err != nil {
			t.Fatal(err)
		}
		k := caseKey{events.Snowflake(g), uint32(n)}
		notes[k] = append(notes[k], nr)
	}
	if err := nrows.Err(); err != nil {
		t.Fatal(err)
	}
	for _, k := range ref.order {
		want := ref.cases[k].Notes
		have := notes[k]
		if len(have) != len(want) {
			t.Fatalf("case %d/%d: %d notes, want %d", k.guild, k.number, len(have), len(want))
		}
		for i := range want {
			if have[i].text != want[i].Text || have[i].author != int64(want[i].AuthorID) || !slices.Equal(have[i].evidence, nonNil(want[i].EvidenceURLs)) {
				t.Fatalf("case %d/%d note %d: %+v, want %+v", k.guild, k.number, i, have[i], want[i])
			}
		}
	}

	// The audit log: every event once, personal text gone where redacted.
	erows, err := tx.Query(ctx, `SELECT seq, guild_id, case_number, event, event_id, command_id, coalesce(command, ''), data FROM case_events ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	i := 0
	for erows.Next() {
		var seq, g, n int64
		var name, cmd string
		var eventID, commandID [16]byte
		var data []byte
		if err := erows.Scan(&seq, &g, &n, &name, &eventID, &commandID, &cmd, &data); err != nil {
			t.Fatal(err)
		}
		if i >= len(evs) {
			t.Fatalf("audit log has more events than the stream (%d)", len(evs))
		}
		e := evs[i]
		i++
		if uint64(seq) != e.Seq || events.Snowflake(g) != e.GuildID || uint32(n) != e.CaseNumber || name != string(e.Event) ||
			eventID != e.EventID || commandID != e.CommandID || cmd != e.Command {
			t.Fatalf("audit log row %d: seq %d %d/%d %s, want seq %d %d/%d %s", i, seq, g, n, name, e.Seq, e.GuildID, e.CaseNumber, e.Event)
		}
		want, _ := json.Marshal(e.Data)
		if rs, ok := ref.redacts[caseKey{e.GuildID, e.CaseNumber}]; ok && e.Seq < rs && e.Event != events.NameCaseRedacted {
			var m map[string]any
			_ = json.Unmarshal(want, &m)
			for _, f := range []string{"reason", "text", "evidence_urls", "metadata", "user_roles"} {
				delete(m, f)
			}
			want, _ = json.Marshal(m)
		}
		if !jsonSame(data, want) {
			t.Fatalf("audit log seq %d data %s, want %s", seq, data, want)
		}
	}
	if err := erows.Err(); err != nil {
		t.Fatal(err)
	}
	if i != len(evs) {
		t.Fatalf("audit log has %d events, the stream %d", i, len(evs))
	}

	// Statistics.
	type stat struct{ total, active int64 }
	wantStats := map[string]stat{}
	bumpRef := func(key string, c *aggregate.Case) {
		s := wantStats[key]
		s.total++
		if c.Status == aggregate.StatusActive {
			s.active++
		}
		wantStats[key] = s
	}
	for _, k := range ref.order {
		c := ref.cases[k]
		if c.Deleted {
			continue
		}
		day := c.CreatedAt.UTC().Format(time.DateOnly)
		bumpRef(fmt.Sprintf("guild %d", c.GuildID), c)
		bumpRef(fmt.Sprintf("type %d %s", c.GuildID, c.Type), c)
		bumpRef(fmt.Sprintf("user %d %d", c.GuildID, c.UserID), c)
		bumpRef(fmt.Sprintf("moderator %d %d", c.GuildID, c.ModeratorID), c)
		bumpRef(fmt.Sprintf("day %d %s %s", c.GuildID, day, c.Type), c)
	}
	haveStats := map[string]stat{}
	for _, q := range []string{
		`SELECT 'guild ' || guild_id, total, active FROM stats_guild`,
		`SELECT 'type ' || guild_id || ' ' || type, total, active FROM stats_type`,
		`SELECT 'user ' || guild_id || ' ' || user_id, total, active FROM stats_user`,
		`SELECT 'moderator ' || guild_id || ' ' || moderator_id, total, active FROM stats_moderator`,
		`SELECT 'day ' || guild_id || ' ' || to_char(day, 'YYYY-MM-DD') || ' ' || type, total, active FROM stats_day`,
	} {
		srows, err := tx.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for srows.Next() {
			var k string
			var s stat
			if err := srows.Scan(&k, &s.total, &s.active); err != nil {
				t.Fatal(err)
			}
			haveStats[k] = s
		}
		if err := srows.Err(); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(haveStats, wantStats) {
		var diff []string
		for k, w := range wantStats {
			if haveStats[k] != w {
				diff = append(diff, fmt.Sprintf("%s: have %+v want %+v", k, haveStats[k], w))
			}
		}
		for k, h := range haveStats {
			if _, ok := wantStats[k]; !ok {
				diff = append(diff, fmt.Sprintf("%s: have %+v, want no row", k, h))
			}
		}
		sort.Strings(diff)
		t.Fatalf("statistics differ:\n%s", diff)
	}

	// Restrictions.
	type userKey struct{ g, u events.Snowflake }
	byUser := map[userKey][]*aggregate.Case{}
	for _, k := range ref.order {
		c := ref.cases[k]
		byUser[userKey{c.GuildID, c.UserID}] = append(byUser[userKey{c.GuildID, c.UserID}], c)
	}
	wantR := map[string]string{}
	for uk, cs := range byUser {
		for fam, c := range aggregate.Restrictions(reg, cs) {
			wantR[fmt.Sprintf("%d %d %s", uk.g, uk.u, fam)] = fmt.Sprintf("case %d %s", c.CaseNumber, c.Type)
		}
	}
	haveR := map[string]string{}
	rrows, err := tx.Query(ctx, `SELECT guild_id, user_id, family, case_number, type FROM restrictions`)
	if err != nil {
		t.Fatal(err)
	}
	for rrows.Next() {
		var g, u, n int64
		var fam, typ string
		if err := rrows.Scan(&g, &u, &fam, &n, &typ); err != nil {
			t.Fatal(err)
		}
		haveR[fmt.Sprintf("%d %d %s", g, u, fam)] = fmt.Sprintf("case %d %s", n, typ)
	}
	if err := rrows.Err(); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(haveR, wantR) {
		t.Fatalf("restrictions differ:\nread model %v\nreference  %v", haveR, wantR)
	}
}

// jsonSame reports whether two JSON documents are the same value.
func jsonSame(a, b []byte) bool {
	var va, vb any
	da := json.NewDecoder(bytes.NewReader(a))
	da.UseNumber()
	db := json.NewDecoder(bytes.NewReader(b))
	db.UseNumber()
	if da.Decode(&va) != nil || db.Decode(&vb) != nil {
		return false
	}
	return reflect.DeepEqual(va, vb)
}
