package command

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// ExpireParams is the ledger's own command that records that a case's
// expiry has passed (CaseExpired). The expiry scheduler sends it; bots do
// not. It appends nothing unless the case is active, undeleted and its
// expiry is still ExpiresAt, neither expired nor processed.
type ExpireParams struct {
	Meta
	CaseRef
	// ExpiresAt is the expiry that passed, as the scheduler read it.
	ExpiresAt time.Time `json:"expires_at"`
}

// expireNamespace derives expire command ids.
var expireNamespace = uuid.MustParse("0192f1a0-6d6f-7d6c-8000-6578706972e5")

// ExpireCommandID is the command id of the expire command for one expiry
// of one case: the same for every scheduler and every attempt, so that the
// server's duplicate window and the case's own events turn a second attempt
// into the first reply.
func ExpireCommandID(caseID uuid.UUID, expiresAt time.Time) uuid.UUID {
	return uuid.NewSHA1(expireNamespace, fmt.Appendf(nil, "%s/%d", caseID, aggregate.Instant(expiresAt).UnixMicro()))
}

func (s *Service) handleExpire(ctx context.Context, guild events.Snowflake, body []byte) (any, error) {
	return runChange(s, ctx, guild, body, func(p *ExpireParams) aggregate.Command {
		return aggregate.ExpireCase{ExpiresAt: aggregate.Instant(p.ExpiresAt)}
	})
}

// CaseExpire records that a case's expiry has passed. It is the expiry
// scheduler's command; make the command id with ExpireCommandID.
func (c *Client) CaseExpire(ctx context.Context, guild events.Snowflake, p ExpireParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandExpire, &p)
}
