package projection

import (
	"context"
	"errors"

	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/events"
)

// QueryCaseNumbers is the wire name of CaseNumbers.
const QueryCaseNumbers = "case_numbers"

// Limits of CaseNumbers.
const (
	CaseNumbersLimitDefault = 1000
	CaseNumbersLimitMax     = 10_000
)

// CaseNumbersParams selects the numbers of the cases that match a filter:
// what the ledger's set commands and conditional opens resolve against.
type CaseNumbersParams struct {
	QueryMeta
	CaseFilter
	// MaxCaseNumber, when set, leaves out the cases numbered above it: the
	// cases opened after a known point.
	MaxCaseNumber uint32 `json:"max_case_number,omitzero"`
	// Limit bounds the numbers returned, 1 to CaseNumbersLimitMax. Defaults
	// to CaseNumbersLimitDefault.
	Limit int `json:"limit,omitzero"`
}

func (p *CaseNumbersParams) validate(q *Queries, guild events.Snowflake) error {
	if err := validGuild(guild); err != nil {
		return err
	}
	if err := p.CaseFilter.validate(q); err != nil {
		return err
	}
	switch {
	case p.Limit == 0:
		p.Limit = CaseNumbersLimitDefault
	case p.Limit < 0 || p.Limit > CaseNumbersLimitMax:
		return invalidParam("limit", "must be 1 to %d", CaseNumbersLimitMax)
	}
	return nil
}

// CaseNumbersResult holds the matching case numbers, lowest first.
type CaseNumbersResult struct {
	CaseNumbers []uint32 `json:"case_numbers"`
	// More reports that more cases match than the limit let through.
	More bool `json:"more"`
	// Seq is the cases projection's checkpoint, read in the same snapshot:
	// the answer is the read model at that stream sequence.
	Seq uint64 `json:"seq"`
}

// CaseNumbers returns the numbers of the cases that match a filter, lowest
// first, and the stream sequence the read model was at.
func (q *Queries) CaseNumbers(ctx context.Context, guild events.Snowflake, p CaseNumbersParams) (*CaseNumbersResult, error) {
	return runQuery(ctx, q, QueryCaseNumbers, q.waitMinSeq, guild, &p, (*Queries).caseNumbers)
}

// CaseNumbers returns the numbers of the cases that match a filter. See
// Queries.CaseNumbers.
func (c *QueryClient) CaseNumbers(ctx context.Context, guild events.Snowflake, p CaseNumbersParams) (*CaseNumbersResult, error) {
	return request[CaseNumbersResult](ctx, c, guild, QueryCaseNumbers, &p)
}

func (q *Queries) caseNumbers(ctx context.Context, guild events.Snowflake, p *CaseNumbersParams) (*CaseNumbersResult, error) {
	b := caseFilterSQL(int64(guild), &p.CaseFilter)
	if p.MaxCaseNumber > 0 {
		b.add("case_number <= " + b.arg(int64(p.MaxCaseNumber)))
	}
	sql := "SELECT case_number FROM " + pgx.Identifier{q.schema, "cases"}.Sanitize() + " WHERE " + b.sql() +
		" ORDER BY case_number LIMIT " + b.arg(p.Limit+1)
	res := &CaseNumbersResult{CaseNumbers: []uint32{}}
	err := q.snapshotBatch(ctx, func(batch *pgx.Batch) {
		batch.Queue("SELECT seq FROM "+pgx.Identifier{q.schema, "checkpoint"}.Sanitize()+" WHERE projection = $1", CasesName).QueryRow(func(row pgx.Row) error {
			var seq int64
			if err := row.Scan(&seq); err != nil && !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			res.Seq = uint64(seq)
			return nil
		})
		batch.Queue(sql, b.args...).Query(func(rows pgx.Rows) error {
			nums, err := pgx.CollectRows(rows, pgx.RowTo[int64])
			if err != nil {
				return err
			}
			for _, n := range nums {
				res.CaseNumbers = append(res.CaseNumbers, uint32(n))
			}
			return nil
		})
	})
	if err != nil {
		return nil, err
	}
	if len(res.CaseNumbers) > p.Limit {
		res.CaseNumbers, res.More = res.CaseNumbers[:p.Limit], true
	}
	return res, nil
}
