package projection

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// statDelta is a change to one statistics row.
type statDelta struct{ total, active int64 }

// statKeys are the statistics rows a case counts in.
type statKeys struct {
	guild     int64
	typ       string
	user      int64
	moderator int64
	day       time.Time
}

func statKeysOf(c *aggregate.Case) statKeys {
	y, m, d := c.CreatedAt.UTC().Date()
	return statKeys{int64(c.GuildID), c.Type, int64(c.UserID), int64(c.ModeratorID), time.Date(y, m, d, 0, 0, 0, 0, time.UTC)}
}

// statTable is one statistics table: its name and key columns with their
// SQL types. Each batch writes a table with one upsert of the summed
// deltas and one delete of rows that dropped to zero, so the tables hold
// exactly the non-empty counts.
type statTable struct {
	name string
	keys []string // column names
	typs []string // their SQL array types
}

var statTables = []statTable{
	{"stats_guild", []string{"guild_id"}, []string{"bigint[]"}},
	{"stats_type", []string{"guild_id", "type"}, []string{"bigint[]", "text[]"}},
	{"stats_user", []string{"guild_id", "user_id"}, []string{"bigint[]", "bigint[]"}},
	{"stats_moderator", []string{"guild_id", "moderator_id"}, []string{"bigint[]", "bigint[]"}},
	{"stats_day", []string{"guild_id", "day", "type"}, []string{"bigint[]", "date[]", "text[]"}},
}

// upsertSQL adds the deltas given as arrays: keys..., total, active.
func (st statTable) upsertSQL() string {
	var params, sets []string
	for i, t := range st.typs {
		params = append(params, fmt.Sprintf("$%d::%s", i+1, t))
	}
	n := len(st.typs)
	params = append(params, fmt.Sprintf("$%d::bigint[]", n+1), fmt.Sprintf("$%d::bigint[]", n+2))
	for _, c := range []string{"total", "active"} {
		sets = append(sets, fmt.Sprintf("%[1]s = %[2]s.%[1]s + excluded.%[1]s", c, st.name))
	}
	cols := strings.Join(st.keys, ", ")
	return fmt.Sprintf("INSERT INTO %s (%s, total, active) SELECT * FROM unnest(%s) ON CONFLICT (%s) DO UPDATE SET %s",
		st.name, cols, strings.Join(params, ", "), cols, strings.Join(sets, ", "))
}

// pruneSQL deletes the given keys' rows that count nothing, looking each
// key up by the primary key.
func (st statTable) pruneSQL() string {
	var params, conds []string
	for i, t := range st.typs {
		params = append(params, fmt.Sprintf("$%d::%s", i+1, t))
		conds = append(conds, fmt.Sprintf("s.%[1]s = k.%[1]s", st.keys[i]))
	}
	return fmt.Sprintf("DELETE FROM %s s USING unnest(%s) AS k(%s) WHERE %s AND s.total = 0",
		st.name, strings.Join(params, ", "), strings.Join(st.keys, ", "), strings.Join(conds, " AND "))
}

// statSQL is built once from statTables.
var statSQL = func() (out [][2]string) {
	for _, st := range statTables {
		out = append(out, [2]string{st.upsertSQL(), st.pruneSQL()})
	}
	return out
}()

// statKey is a statistics row's key; the fields a table has no column
// for stay zero.
type statKey struct {
	guild int64
	id    int64 // user_id or moderator_id
	typ   string
	day   time.Time
}

// arrays returns the key columns of keys as arrays, one per column of st.
func (st statTable) arrays(keys []statKey) []any {
	out := make([]any, len(st.keys))
	for i, col := range st.keys {
		switch col {
		case "guild_id", "user_id", "moderator_id":
			a := make([]int64, len(keys))
			for j, k := range keys {
				a[j] = k.id
				if col == "guild_id" {
					a[j] = k.guild
				}
			}
			out[i] = a
		case "type":
			a := make([]string, len(keys))
			for j, k := range keys {
				a[j] = k.typ
			}
			out[i] = a
		case "day":
			a := make([]time.Time, len(keys))
			for j, k := range keys {
				a[j] = k.day
			}
			out[i] = a
		default:
			panic("projection: no statistics column " + col)
		}
	}
	return out
}

// queueStats queues the statistics changes of the touched cases: the
// difference between what each counted before the batch and after it,
// summed per row. A table gets one upsert of the rows whose counts change
// and one prune of the rows whose total falls (only they can fall to zero,
// so a batch of new cases prunes nothing).
func queueStats(b *pgx.Batch, cb *casesBatch) {
	var deltas [len(statTablesByKind)]map[statKey]statDelta
	for i := range deltas {
		deltas[i] = map[statKey]statDelta{}
	}
	for _, ck := range cb.keys {
		t := cb.cases[ck]
		after := contributionOf(t.state)
		d := statDelta{after.total - t.before.total, after.active - t.before.active}
		if d == (statDelta{}) {
			continue
		}
		k := statKeysOf(t.state)
		for i, sk := range [len(statTablesByKind)]statKey{
			{guild: k.guild},
			{guild: k.guild, typ: k.typ},
			{guild: k.guild, id: k.user},
			{guild: k.guild, id: k.moderator},
			{guild: k.guild, day: k.day, typ: k.typ},
		} {
			v := deltas[i][sk]
			deltas[i][sk] = statDelta{v.total + d.total, v.active + d.active}
		}
	}
	for i, st := range statTables {
		var keys, falling []statKey
		var tot, act []int64
		for k, d := range deltas[i] {
			if d == (statDelta{}) {
				continue
			}
			keys, tot, act = append(keys, k), append(tot, d.total), append(act, d.active)
			if d.total < 0 {
				falling = append(falling, k)
			}
		}
		if len(keys) == 0 {
			continue
		}
		b.Queue(statSQL[i][0], append(st.arrays(keys), tot, act)...)
		if len(falling) > 0 {
			b.Queue(statSQL[i][1], st.arrays(falling)...)
		}
	}
}

// statTablesByKind is statTables' order, which queueStats relies on.
var statTablesByKind = [...]string{"stats_guild", "stats_type", "stats_user", "stats_moderator", "stats_day"}

func init() {
	for i, st := range statTables {
		if st.name != statTablesByKind[i] {
			panic("projection: statTables out of order")
		}
	}
}

// Restrictions are recomputed per user with the one rule; these read and
// clear a list of users' rows. The rule ignores deleted and closed cases,
// so the read skips them (and can use the cases_user index).
const (
	sqlUsersCases = `SELECT c.guild_id, c.user_id, c.case_number, c.type, c.status, c.deleted, c.expiry_processed,
		c.expires_at, c.created_at
		FROM unnest($1::bigint[], $2::bigint[]) AS u(guild_id, user_id)
		JOIN cases c ON c.guild_id = u.guild_id AND c.user_id = u.user_id
		WHERE NOT c.deleted AND c.status = 'active'`
	sqlClearRestrictions = `DELETE FROM restrictions r USING unnest($1::bigint[], $2::bigint[]) AS u(guild_id, user_id)
		WHERE r.guild_id = u.guild_id AND r.user_id = u.user_id`
)

// restrictionUsers lists the users whose restrictions a batch recomputes.
type restrictionUsers struct{ guilds, users []int64 }

// restrictionUsers returns the users of the batch's cases of a
// restricting or lifting type whose rule inputs changed (a new case, a
// close, a reopen, a deletion, a new expiry, a processed expiry): only
// then can the user's restrictions change.
func (p *CasesProjection) restrictionUsers(cb *casesBatch) restrictionUsers {
	type userKey struct{ g, u int64 }
	seen := map[userKey]bool{}
	var out restrictionUsers
	for _, k := range cb.keys {
		t := cb.cases[k]
		c := t.state
		if ruleInputsOf(c) == t.rule {
			continue
		}
		spec, ok := p.registry.Lookup(c.Type)
		if !ok || spec.Family() == aggregate.FamilyNone {
			continue
		}
		uk := userKey{int64(c.GuildID), int64(c.UserID)}
		if !seen[uk] {
			seen[uk] = true
			out.guilds = append(out.guilds, uk.g)
			out.users = append(out.users, uk.u)
		}
	}
	return out
}

// restrictionRows reads the users' counting cases from the next result of
// results (sqlUsersCases) and returns their restriction rows by the rule.
func (p *CasesProjection) restrictionRows(results pgx.BatchResults, users restrictionUsers) (*copyBuffer, error) {
	type userKey struct{ g, u int64 }
	rows, err := results.Query()
	if err != nil {
		return nil, fmt.Errorf("read users' cases for restrictions: %w", err)
	}
	byUser := map[userKey][]*aggregate.Case{}
	for rows.Next() {
		var (
			g, u, n     int64
			typ, status string
			deleted, pr bool
			exp         *time.Time
			created     time.Time
		)
		if err := rows.Scan(&g, &u, &n, &typ, &status, &deleted, &pr, &exp, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read users' cases for restrictions: %w", err)
		}
		uk := userKey{g, u}
		byUser[uk] = append(byUser[uk], &aggregate.Case{GuildID: events.Snowflake(g), UserID: events.Snowflake(u),
			CaseNumber: uint32(n), Type: typ, Status: aggregate.Status(status), Deleted: deleted,
			ExpiryProcessed: pr, ExpiresAt: exp, CreatedAt: created})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read users' cases for restrictions: %w", err)
	}
	out := newCopyBuffer(7, len(users.guilds), 96)
	for i := range users.guilds {
		uk := userKey{users.guilds[i], users.users[i]}
		for fam, c := range aggregate.Restrictions(p.registry, byUser[uk]) {
			writeRestriction(out, uk.g, uk.u, fam, c)
		}
	}
	return out, nil
}

// writeRestriction writes a restrictions row: user u of guild g is under
// family by case c.
func writeRestriction(w *copyBuffer, g, u int64, family aggregate.Family, c *aggregate.Case) {
	w.row()
	w.int8(g)
	w.int8(u)
	w.text(string(family))
	w.int8(int64(c.CaseNumber))
	w.text(c.Type)
	w.timestamptzOrNull(c.ExpiresAt)
	w.timestamptz(c.CreatedAt)
}

// BulkSteps derive what ApplyBulk left out, from the rows it wrote:
// redactions (each case's events and notes before its last redaction),
// each statistics table (one GROUP BY, counting what contributionOf
// counts), and the restrictions (the one rule over every user's active,
// undeleted cases, read through a cursor so that memory stays bounded).
func (p *CasesProjection) BulkSteps() []BulkStep {
	exec := func(sql string, args ...any) func(context.Context, pgx.Tx) error {
		return func(ctx context.Context, tx pgx.Tx) error {
			_, err := tx.Exec(ctx, sql, args...)
			return err
		}
	}
	steps := []BulkStep{
		{Name: "restrictions", Run: p.deriveRestrictions},
		{Name: "redacted events", Run: exec(sqlRedactEventsBulk)},
		{Name: "redacted notes", Run: exec(sqlRedactNotesBulk)},
	}
	for _, st := range statTables {
		steps = append(steps, BulkStep{Name: st.name, Run: exec(st.deriveSQL(), string(aggregate.StatusActive))})
	}
	return steps
}

// deriveSQL fills the table from cases: every undeleted case counts in
// total, and in active while it is active.
func (st statTable) deriveSQL() string {
	exprs := make([]string, len(st.keys))
	for i, k := range st.keys {
		exprs[i] = k
		if k == "day" {
			exprs[i] = "(created_at AT TIME ZONE 'UTC')::date"
		}
	}
	// In key order, so that the primary key grows at its right edge.
	e := strings.Join(exprs, ", ")
	return fmt.Sprintf("INSERT INTO %s (%s, total, active) SELECT %s, count(*), count(*) FILTER (WHERE status = $1) FROM cases WHERE NOT deleted GROUP BY %s ORDER BY %s",
		st.name, strings.Join(st.keys, ", "), e, e, e)
}

// Restrictions after a bulk load: the counting cases of every user, in
// user order, through a cursor.
const (
	restrictionCursorRows  = 10_000
	sqlDeclareRestrictions = `DECLARE bulk_restrictions NO SCROLL CURSOR FOR
		SELECT guild_id, user_id, case_number, type, status, deleted, expiry_processed, expires_at, created_at
		FROM cases WHERE NOT deleted AND status = $1 AND type = ANY($2) ORDER BY guild_id, user_id`
	sqlFetchRestrictions = `FETCH 10000 FROM bulk_restrictions` // restrictionCursorRows
)

// deriveRestrictions writes the restrictions of every user from the cases
// table, with aggregate.Restrictions, restrictionCursorRows cases at a
// time.
func (p *CasesProjection) deriveRestrictions(ctx context.Context, tx pgx.Tx) error {
	var types []string
	for _, spec := range p.registry.Types() {
		if spec.Family() != aggregate.FamilyNone {
			types = append(types, spec.Name)
		}
	}
	if _, err := tx.Exec(ctx, sqlDeclareRestrictions, string(aggregate.StatusActive), types); err != nil {
		return fmt.Errorf("derive restrictions: %w", err)
	}
	var (
		user  []*aggregate.Case // the cases of the user being read
		out   = newCopyBuffer(7, restrictionCursorRows, 96)
		flush = func() {
			if len(user) == 0 {
				return
			}
			c := user[0]
			for fam, r := range aggregate.Restrictions(p.registry, user) {
				writeRestriction(out, int64(c.GuildID), int64(c.UserID), fam, r)
			}
			user = user[:0]
		}
	)
	for {
		rows, err := tx.Query(ctx, sqlFetchRestrictions)
		if err != nil {
			return fmt.Errorf("derive restrictions: %w", err)
		}
		n := 0
		for rows.Next() {
			n++
			c := &aggregate.Case{}
			var g, u, num int64
			var typ, status string
			if err := rows.Scan(&g, &u, &num, &typ, &status, &c.Deleted, &c.ExpiryProcessed, &c.ExpiresAt, &c.CreatedAt); err != nil {
				rows.Close()
				return fmt.Errorf("derive restrictions: %w", err)
			}
			c.GuildID, c.UserID, c.CaseNumber, c.Type, c.Status = events.Snowflake(g), events.Snowflake(u), uint32(num), typ, aggregate.Status(status)
			if len(user) > 0 && (user[0].GuildID != c.GuildID || user[0].UserID != c.UserID) {
				flush()
			}
			user = append(user, c)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("derive restrictions: %w", err)
		}
		if n < restrictionCursorRows {
			flush()
		}
		if out.rows > 0 {
			if err := out.copyTo(ctx, tx, sqlCopyRestrictions); err != nil {
				return fmt.Errorf("write restrictions: %w", err)
			}
			out = newCopyBuffer(7, restrictionCursorRows, 96)
		}
		if n < restrictionCursorRows {
			break
		}
	}
	_, err := tx.Exec(ctx, `CLOSE bulk_restrictions`)
	return err
}
