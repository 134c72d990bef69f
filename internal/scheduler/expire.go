package scheduler

import (
	"context"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/projection"
)

// SystemActorDefault is the actor id the scheduler records on CaseExpired:
// the ledger itself. Discord never hands out 1 as an id.
const SystemActorDefault events.Snowflake = 1

// CommandExpirer returns an Expire function that sends the command
// service's expire command through client, as actor, with the command id
// derived from the case and the expiry.
func CommandExpirer(client *command.Client, actor events.Snowflake) func(context.Context, projection.PendingExpiry) error {
	return func(ctx context.Context, p projection.PendingExpiry) error {
		_, err := client.CaseExpire(ctx, p.GuildID, command.ExpireParams{
			Meta:      command.Meta{CommandID: command.ExpireCommandID(p.CaseID, p.ExpiresAt), ActorID: actor},
			CaseRef:   command.CaseRef{CaseNumber: p.CaseNumber, CaseID: p.CaseID},
			ExpiresAt: p.ExpiresAt,
		})
		return err
	}
}
