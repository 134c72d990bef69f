package projection

import (
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
)

// The statements of the query API. {name} stands for the control schema's
// view of that name; NewQueries replaces them once, with the schema quoted
// by pgx.Identifier, so no statement is assembled from input at run time.
// Filtered lists are put together from the fixed fragments of caseFilterSQL,
// every value a bind parameter.
const (
	// notesJSON aggregates the notes of the case c, oldest first.
	sqlNotesJSON = `(SELECT coalesce(jsonb_agg(jsonb_build_object(
			'note_id', n.note_id, 'author_id', n.author_id::text, 'text', n.text,
			'evidence_urls', n.evidence_urls, 'created_at', n.created_at) ORDER BY n.seq), '[]'::jsonb)
		FROM {case_notes} n WHERE n.guild_id = c.guild_id AND n.case_number = c.case_number)`

	sqlCaseGet = `SELECT ` + caseColumns + `, ` + sqlNotesJSON + `
		FROM {cases} c WHERE c.guild_id = $1 AND c.case_number = $2`

	sqlCaseGetByID = `SELECT ` + caseColumns + `, ` + sqlNotesJSON + `
		FROM {cases} c WHERE c.case_id = $2 AND c.guild_id = $1`

	sqlUserLatestCase = `SELECT ` + caseColumns + `, ` + sqlNotesJSON + `
		FROM {cases} c WHERE c.guild_id = $1 AND c.user_id = $2 AND NOT c.deleted
		ORDER BY c.case_number DESC LIMIT 1`

	sqlCaseExistsByNumber = `SELECT deleted FROM {cases} WHERE guild_id = $1 AND case_number = $2`
	sqlCaseExistsByID     = `SELECT deleted FROM {cases} WHERE case_id = $2 AND guild_id = $1`

	sqlCaseNotes = `SELECT c.deleted, ` + sqlNotesJSON + `
		FROM {cases} c WHERE c.guild_id = $1 AND c.case_number = $2`

	sqlCaseHistory = `SELECT seq, event_id, event, schema_version, guild_id, case_number, case_id,
			occurred_at, actor_id, command_id, coalesce(command, ''), correlation_id, data
		FROM {case_events} WHERE guild_id = $1 AND case_number = $2 ORDER BY seq`

	sqlUserRestriction = `SELECT family, case_number, type, expires_at, since
		FROM {restrictions} WHERE guild_id = $1 AND user_id = $2 AND family = $3`

	sqlUserRestrictions = `SELECT family, case_number, type, expires_at, since
		FROM {restrictions} WHERE guild_id = $1 AND user_id = $2 ORDER BY family`

	// Counts from the statistics tables: sum() of zero or one row, so that
	// a guild, user, moderator or type without cases reads as zero.
	sqlCountGuild     = `SELECT coalesce(sum(total), 0)::bigint, coalesce(sum(active), 0)::bigint FROM {stats_guild} WHERE guild_id = $1`
	sqlCountUser      = `SELECT coalesce(sum(total), 0)::bigint, coalesce(sum(active), 0)::bigint FROM {stats_user} WHERE guild_id = $1 AND user_id = $2`
	sqlCountModerator = `SELECT coalesce(sum(total), 0)::bigint, coalesce(sum(active), 0)::bigint FROM {stats_moderator} WHERE guild_id = $1 AND moderator_id = $2`
	sqlCountType      = `SELECT coalesce(sum(total), 0)::bigint, coalesce(sum(active), 0)::bigint FROM {stats_type} WHERE guild_id = $1 AND type = $2`

	sqlStatsByType = `SELECT type, total, active FROM {stats_type} WHERE guild_id = $1 ORDER BY total DESC, type`
	sqlStatsByMod  = `SELECT moderator_id, total, active FROM {stats_moderator} WHERE guild_id = $1 ORDER BY total DESC, moderator_id`
	sqlStatsByDay  = `SELECT day, type, total, active FROM {stats_day} WHERE guild_id = $1 AND day BETWEEN $2 AND $3 ORDER BY day, type`

	// Filtered lists and counts: the WHERE clause is appended.
	sqlListCases  = `SELECT ` + caseColumns + ` FROM {cases} WHERE `
	sqlCountCases = `SELECT count(*), count(*) FILTER (WHERE status = 'active') FROM {cases} WHERE `

	// dueExpiry is the predicate of the partial index cases_due_expiry,
	// spelled as the index spells it so that the planner uses it.
	sqlDueExpiry = `expires_at IS NOT NULL AND NOT expiry_processed AND status = 'active' AND NOT deleted`
)

// queryViews are the views the statements read.
var queryViews = []string{"cases", "case_events", "case_notes", "restrictions",
	"stats_guild", "stats_type", "stats_user", "stats_moderator", "stats_day"}

// querySQL holds the statements with the control schema filled in.
type querySQL struct {
	caseGet, caseGetByID, userLatestCase             string
	caseExistsByNumber, caseExistsByID, caseNotes    string
	caseHistory, userRestriction, userRestrictions   string
	countGuild, countUser, countModerator, countType string
	statsByType, statsByMod, statsByDay              string
	listCases, countCases                            string
}

func newQuerySQL(schema string) querySQL {
	var pairs []string
	for _, v := range queryViews {
		pairs = append(pairs, "{"+v+"}", pgx.Identifier{schema, v}.Sanitize())
	}
	r := strings.NewReplacer(pairs...)
	return querySQL{
		caseGet: r.Replace(sqlCaseGet), caseGetByID: r.Replace(sqlCaseGetByID),
		userLatestCase: r.Replace(sqlUserLatestCase), caseExistsByNumber: r.Replace(sqlCaseExistsByNumber),
		caseExistsByID: r.Replace(sqlCaseExistsByID), caseNotes: r.Replace(sqlCaseNotes),
		caseHistory: r.Replace(sqlCaseHistory), userRestriction: r.Replace(sqlUserRestriction),
		userRestrictions: r.Replace(sqlUserRestrictions), countGuild: r.Replace(sqlCountGuild),
		countUser: r.Replace(sqlCountUser), countModerator: r.Replace(sqlCountModerator),
		countType: r.Replace(sqlCountType), statsByType: r.Replace(sqlStatsByType),
		statsByMod: r.Replace(sqlStatsByMod), statsByDay: r.Replace(sqlStatsByDay),
		listCases: r.Replace(sqlListCases), countCases: r.Replace(sqlCountCases),
	}
}

// whereBuilder collects the conditions of a filtered query from fixed
// fragments, with every value a bind parameter.
type whereBuilder struct {
	conds []string
	args  []any
}

// arg adds a bind parameter and returns its placeholder.
func (b *whereBuilder) arg(v any) string {
	b.args = append(b.args, v)
	return "$" + strconv.Itoa(len(b.args))
}

func (b *whereBuilder) add(cond string) { b.conds = append(b.conds, cond) }

// sql returns the conditions joined with AND, guild_id first.
func (b *whereBuilder) sql() string {
	if len(b.conds) == 0 {
		return "true"
	}
	return strings.Join(b.conds, " AND ")
}

// clone returns a copy that can take more conditions without changing b.
func (b *whereBuilder) clone() *whereBuilder {
	return &whereBuilder{conds: append([]string(nil), b.conds...), args: append([]any(nil), b.args...)}
}

// caseFilterSQL turns a filter of guild's cases into conditions.
func caseFilterSQL(guild int64, f *CaseFilter) *whereBuilder {
	b := &whereBuilder{}
	b.add("guild_id = " + b.arg(guild))
	if !f.IncludeDeleted {
		b.add("NOT deleted")
	}
	if f.UserID != 0 {
		b.add("user_id = " + b.arg(int64(f.UserID)))
	}
	if f.ModeratorID != 0 {
		b.add("moderator_id = " + b.arg(int64(f.ModeratorID)))
	}
	switch len(f.Types) {
	case 0:
	case 1:
		b.add("type = " + b.arg(f.Types[0]))
	default:
		b.add("type = ANY(" + b.arg(f.Types) + "::text[])")
	}
	if f.Status != "" {
		b.add("status = " + b.arg(string(f.Status)))
	}
	if !f.CreatedAfter.IsZero() {
		b.add("created_at >= " + b.arg(f.CreatedAfter))
	}
	if !f.CreatedBefore.IsZero() {
		b.add("created_at < " + b.arg(f.CreatedBefore))
	}
	if !f.ExpiresBefore.IsZero() {
		b.add("expires_at < " + b.arg(f.ExpiresBefore))
	}
	if f.HasExpiry != nil {
		if *f.HasExpiry {
			b.add("expires_at IS NOT NULL")
		} else {
			b.add("expires_at IS NULL")
		}
	}
	if f.ExpiryProcessed != nil {
		if *f.ExpiryProcessed {
			b.add("expiry_processed")
		} else {
			b.add("NOT expiry_processed")
		}
	}
	if len(f.UserRoles) > 0 {
		roles := make([]int64, len(f.UserRoles))
		for i, r := range f.UserRoles {
			roles[i] = int64(r)
		}
		b.add("user_roles @> " + b.arg(roles) + "::bigint[]")
	}
	if f.Metadata != nil {
		b.add("metadata @> " + b.arg(string(f.Metadata)) + "::jsonb")
	}
	if f.Search != "" {
		// 'simple' is the configuration of the reason_tsv column;
		// websearch_to_tsquery accepts any input without syntax errors.
		b.add("reason_tsv @@ websearch_to_tsquery('simple', " + b.arg(f.Search) + ")")
	}
	return b
}
