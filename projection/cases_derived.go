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

// pruneSQL deletes the given keys' rows that count nothing.
func (st statTable) pruneSQL() string {
	var params []string
	for i, t := range st.typs {
		params = append(params, fmt.Sprintf("$%d::%s", i+1, t))
	}
	cols := strings.Join(st.keys, ", ")
	return fmt.Sprintf("DELETE FROM %s WHERE (%s) IN (SELECT * FROM unnest(%s)) AND total = 0", st.name, cols, strings.Join(params, ", "))
}

// statSQL is built once from statTables.
var statSQL = func() (out [][2]string) {
	for _, st := range statTables {
		out = append(out, [2]string{st.upsertSQL(), st.pruneSQL()})
	}
	return out
}()

// queueStats queues the statistics changes of the touched cases: the
// difference between what each counted before the batch and after it,
// summed per row, written with one upsert and one prune per table.
func queueStats(b *pgx.Batch, keys []caseKey, cases map[caseKey]*touched) {
	type typeKey struct {
		g int64
		t string
	}
	type idKey struct{ g, id int64 }
	type dayKey struct {
		g int64
		d time.Time
		t string
	}
	var (
		guilds     = map[int64]statDelta{}
		types      = map[typeKey]statDelta{}
		users      = map[idKey]statDelta{}
		moderators = map[idKey]statDelta{}
		days       = map[dayKey]statDelta{}
	)
	for _, ck := range keys {
		t := cases[ck]
		after := contributionOf(t.state)
		d := statDelta{after.total - t.before.total, after.active - t.before.active}
		if d == (statDelta{}) {
			continue
		}
		k := statKeysOf(t.state)
		bump(guilds, k.guild, d)
		bump(types, typeKey{k.guild, k.typ}, d)
		bump(users, idKey{k.guild, k.user}, d)
		bump(moderators, idKey{k.guild, k.moderator}, d)
		bump(days, dayKey{k.guild, k.day, k.typ}, d)
	}
	if len(guilds) == 0 {
		return
	}
	queue := func(table int, args ...any) {
		b.Queue(statSQL[table][0], args...)
		b.Queue(statSQL[table][1], args[:len(args)-2]...)
	}
	var g, tot, act []int64
	for k, d := range guilds {
		g, tot, act = append(g, k), append(tot, d.total), append(act, d.active)
	}
	queue(0, g, tot, act)
	g, tot, act = nil, nil, nil
	var names []string
	for k, d := range types {
		g, names, tot, act = append(g, k.g), append(names, k.t), append(tot, d.total), append(act, d.active)
	}
	queue(1, g, names, tot, act)
	for i, m := range []map[idKey]statDelta{users, moderators} {
		g, tot, act = nil, nil, nil
		var ids []int64
		for k, d := range m {
			g, ids, tot, act = append(g, k.g), append(ids, k.id), append(tot, d.total), append(act, d.active)
		}
		queue(2+i, g, ids, tot, act)
	}
	g, tot, act, names = nil, nil, nil, nil
	var ds []time.Time
	for k, d := range days {
		g, ds, names, tot, act = append(g, k.g), append(ds, k.d), append(names, k.t), append(tot, d.total), append(act, d.active)
	}
	queue(4, g, ds, names, tot, act)
}

func bump[K comparable](m map[K]statDelta, k K, d statDelta) {
	v := m[k]
	m[k] = statDelta{v.total + d.total, v.active + d.active}
}

// updateRestrictions recomputes the restrictions of every user a restricting
// or lifting case of the batch belongs to, with aggregate.Restrictions over
// the user's cases as they are after the batch.
func (p *CasesProjection) updateRestrictions(ctx context.Context, tx pgx.Tx, keys []caseKey, cases map[caseKey]*touched) error {
	type userKey struct{ g, u int64 }
	seen := map[userKey]bool{}
	var guilds, users []int64
	for _, k := range keys {
		c := cases[k].state
		spec, ok := p.registry.Lookup(c.Type)
		if !ok || spec.Family() == aggregate.FamilyNone {
			continue
		}
		uk := userKey{int64(c.GuildID), int64(c.UserID)}
		if !seen[uk] {
			seen[uk] = true
			guilds = append(guilds, uk.g)
			users = append(users, uk.u)
		}
	}
	if len(guilds) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT guild_id, user_id, case_number, type, status, deleted, expiry_processed, expires_at, created_at
		FROM cases WHERE (guild_id, user_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`, guilds, users)
	if err != nil {
		return fmt.Errorf("read users' cases for restrictions: %w", err)
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
			return fmt.Errorf("read users' cases for restrictions: %w", err)
		}
		uk := userKey{g, u}
		byUser[uk] = append(byUser[uk], &aggregate.Case{GuildID: events.Snowflake(g), UserID: events.Snowflake(u),
			CaseNumber: uint32(n), Type: typ, Status: aggregate.Status(status), Deleted: deleted,
			ExpiryProcessed: pr, ExpiresAt: exp, CreatedAt: created})
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read users' cases for restrictions: %w", err)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM restrictions WHERE (guild_id, user_id) IN (SELECT * FROM unnest($1::bigint[], $2::bigint[]))`, guilds, users); err != nil {
		return fmt.Errorf("clear restrictions: %w", err)
	}
	var out [][]any
	for i := range guilds {
		uk := userKey{guilds[i], users[i]}
		for fam, c := range aggregate.Restrictions(p.registry, byUser[uk]) {
			out = append(out, []any{uk.g, uk.u, string(fam), int64(c.CaseNumber), c.Type, c.ExpiresAt, c.CreatedAt})
		}
	}
	if len(out) == 0 {
		return nil
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"restrictions"},
		[]string{"guild_id", "user_id", "family", "case_number", "type", "expires_at", "since"}, pgx.CopyFromRows(out)); err != nil {
		return fmt.Errorf("write restrictions: %w", err)
	}
	return nil
}
