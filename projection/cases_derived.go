package projection

import (
	"context"
	"fmt"
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

// Statistics upserts add the batch's deltas; a row that drops to zero is
// removed, so the tables hold exactly the non-empty counts.
const (
	sqlStatGuild = `INSERT INTO stats_guild (guild_id, total, active) VALUES ($1, $2, $3)
		ON CONFLICT (guild_id) DO UPDATE SET total = stats_guild.total + excluded.total, active = stats_guild.active + excluded.active`
	sqlStatGuildPrune = `DELETE FROM stats_guild WHERE guild_id = $1 AND total = 0`
	sqlStatType       = `INSERT INTO stats_type (guild_id, type, total, active) VALUES ($1, $2, $3, $4)
		ON CONFLICT (guild_id, type) DO UPDATE SET total = stats_type.total + excluded.total, active = stats_type.active + excluded.active`
	sqlStatTypePrune = `DELETE FROM stats_type WHERE guild_id = $1 AND type = $2 AND total = 0`
	sqlStatUser      = `INSERT INTO stats_user (guild_id, user_id, total, active) VALUES ($1, $2, $3, $4)
		ON CONFLICT (guild_id, user_id) DO UPDATE SET total = stats_user.total + excluded.total, active = stats_user.active + excluded.active`
	sqlStatUserPrune = `DELETE FROM stats_user WHERE guild_id = $1 AND user_id = $2 AND total = 0`
	sqlStatModerator = `INSERT INTO stats_moderator (guild_id, moderator_id, total, active) VALUES ($1, $2, $3, $4)
		ON CONFLICT (guild_id, moderator_id) DO UPDATE SET total = stats_moderator.total + excluded.total, active = stats_moderator.active + excluded.active`
	sqlStatModeratorPrune = `DELETE FROM stats_moderator WHERE guild_id = $1 AND moderator_id = $2 AND total = 0`
	sqlStatDay            = `INSERT INTO stats_day (guild_id, day, type, total, active) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (guild_id, day, type) DO UPDATE SET total = stats_day.total + excluded.total, active = stats_day.active + excluded.active`
	sqlStatDayPrune = `DELETE FROM stats_day WHERE guild_id = $1 AND day = $2 AND type = $3 AND total = 0`
)

// queueStats queues the statistics changes of the touched cases: the
// difference between what each counted before the batch and after it,
// summed per row, so each row is written once per batch.
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
		order      []statKeys
	)
	add := func(d statDelta, k statKeys) {
		bump(guilds, k.guild, d)
		bump(types, typeKey{k.guild, k.typ}, d)
		bump(users, idKey{k.guild, k.user}, d)
		bump(moderators, idKey{k.guild, k.moderator}, d)
		bump(days, dayKey{k.guild, k.day, k.typ}, d)
	}
	for _, ck := range keys {
		t := cases[ck]
		after := contributionOf(t.state)
		d := statDelta{after.total - t.before.total, after.active - t.before.active}
		if d == (statDelta{}) {
			continue
		}
		k := statKeysOf(t.state)
		add(d, k)
		order = append(order, k)
	}
	// Queue in the order the cases were touched, so concurrent writers
	// (a rebuild and nothing else, in practice) lock rows in one order.
	doneG, doneT, doneU, doneM, doneD := map[int64]bool{}, map[typeKey]bool{}, map[idKey]bool{}, map[idKey]bool{}, map[dayKey]bool{}
	for _, k := range order {
		if d := guilds[k.guild]; !doneG[k.guild] && d != (statDelta{}) {
			doneG[k.guild] = true
			b.Queue(sqlStatGuild, k.guild, d.total, d.active)
			b.Queue(sqlStatGuildPrune, k.guild)
		}
		tk := typeKey{k.guild, k.typ}
		if d := types[tk]; !doneT[tk] && d != (statDelta{}) {
			doneT[tk] = true
			b.Queue(sqlStatType, k.guild, k.typ, d.total, d.active)
			b.Queue(sqlStatTypePrune, k.guild, k.typ)
		}
		uk := idKey{k.guild, k.user}
		if d := users[uk]; !doneU[uk] && d != (statDelta{}) {
			doneU[uk] = true
			b.Queue(sqlStatUser, k.guild, k.user, d.total, d.active)
			b.Queue(sqlStatUserPrune, k.guild, k.user)
		}
		mk := idKey{k.guild, k.moderator}
		if d := moderators[mk]; !doneM[mk] && d != (statDelta{}) {
			doneM[mk] = true
			b.Queue(sqlStatModerator, k.guild, k.moderator, d.total, d.active)
			b.Queue(sqlStatModeratorPrune, k.guild, k.moderator)
		}
		dk := dayKey{k.guild, k.day, k.typ}
		if d := days[dk]; !doneD[dk] && d != (statDelta{}) {
			doneD[dk] = true
			b.Queue(sqlStatDay, k.guild, k.day, k.typ, d.total, d.active)
			b.Queue(sqlStatDayPrune, k.guild, k.day, k.typ)
		}
	}
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
