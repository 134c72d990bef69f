package command

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v4"
	"github.com/google/uuid"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/wire"
)

// Client defaults.
const (
	// ClientAttemptTimeoutDefault bounds one request when the caller's
	// context has no earlier deadline. It exceeds the service's own retry
	// budget, so the service answers first.
	ClientAttemptTimeoutDefault = 20 * time.Second
)

// Client sends commands to the ledger over NATS. It makes a command id for
// every command that has none, and retries requests that did not get an
// answer (no responders, a timeout, unavailable) with the same command id,
// which the ledger makes safe. It is safe for concurrent use.
type Client struct {
	nc             *nats.Conn
	subj           events.Subjects
	attemptTimeout time.Duration
	retry          bool
}

// ClientOpt configures a Client.
type ClientOpt func(*Client) error

// WithPrefix sets the ledger's subject prefix. Defaults to "modledger".
func WithPrefix(prefix string) ClientOpt {
	return func(c *Client) error {
		if prefix == "" {
			return errors.New("empty subject prefix")
		}
		c.subj.Prefix = prefix
		return nil
	}
}

// WithAttemptTimeout bounds each request. Defaults to 20s.
func WithAttemptTimeout(d time.Duration) ClientOpt {
	return func(c *Client) error {
		if d <= 0 {
			return errors.New("attempt timeout must be positive")
		}
		c.attemptTimeout = d
		return nil
	}
}

// WithoutRetries makes every method send its request once.
func WithoutRetries() ClientOpt {
	return func(c *Client) error { c.retry = false; return nil }
}

// NewClient returns a client on nc.
func NewClient(nc *nats.Conn, opts ...ClientOpt) (*Client, error) {
	if nc == nil {
		return nil, errors.New("command client: nil NATS connection")
	}
	c := &Client{nc: nc, attemptTimeout: ClientAttemptTimeoutDefault, retry: true}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, fmt.Errorf("command client: %w", err)
		}
	}
	return c, nil
}

// CaseOpen opens a case.
func (c *Client) CaseOpen(ctx context.Context, guild events.Snowflake, p OpenParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandOpen, &p)
}

// CaseOpenMany opens many cases at once with contiguous numbers, all or none.
func (c *Client) CaseOpenMany(ctx context.Context, guild events.Snowflake, p OpenManyParams) (*ManyResult, error) {
	return call[ManyResult](ctx, c, guild, aggregate.CommandOpenMany, &p)
}

// CaseImport brings cases from another system with their numbers, all or none.
func (c *Client) CaseImport(ctx context.Context, guild events.Snowflake, p ImportParams) (*ManyResult, error) {
	return call[ManyResult](ctx, c, guild, aggregate.CommandImport, &p)
}

// CaseCloseMany closes every case a set selects. See SetParams.
func (c *Client) CaseCloseMany(ctx context.Context, guild events.Snowflake, p CloseManyParams) (*SetResult, error) {
	return call[SetResult](ctx, c, guild, CommandCloseMany, &p)
}

// CaseReopenMany reopens every case a set selects.
func (c *Client) CaseReopenMany(ctx context.Context, guild events.Snowflake, p ReopenManyParams) (*SetResult, error) {
	return call[SetResult](ctx, c, guild, CommandReopenMany, &p)
}

// CaseDeleteMany deletes every case a set selects.
func (c *Client) CaseDeleteMany(ctx context.Context, guild events.Snowflake, p DeleteManyParams) (*SetResult, error) {
	return call[SetResult](ctx, c, guild, CommandDeleteMany, &p)
}

// CaseRedactMany redacts every case a set selects.
func (c *Client) CaseRedactMany(ctx context.Context, guild events.Snowflake, p RedactManyParams) (*SetResult, error) {
	return call[SetResult](ctx, c, guild, CommandRedactMany, &p)
}

// CaseUpdateMany changes the reason, expiry or metadata of every case a
// set selects.
func (c *Client) CaseUpdateMany(ctx context.Context, guild events.Snowflake, p UpdateManyParams) (*SetResult, error) {
	return call[SetResult](ctx, c, guild, CommandUpdateMany, &p)
}

// CaseUpdate changes several fields of a case at once.
func (c *Client) CaseUpdate(ctx context.Context, guild events.Snowflake, p UpdateParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandUpdate, &p)
}

// CaseClose closes (voids) a case.
func (c *Client) CaseClose(ctx context.Context, guild events.Snowflake, p CloseParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandClose, &p)
}

// CaseReopen makes a closed case active again.
func (c *Client) CaseReopen(ctx context.Context, guild events.Snowflake, p ReopenParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandReopen, &p)
}

// CaseAddNote appends a note to a case.
func (c *Client) CaseAddNote(ctx context.Context, guild events.Snowflake, p AddNoteParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandAddNote, &p)
}

// CaseLinkModLog records the mod-log message that shows a case.
func (c *Client) CaseLinkModLog(ctx context.Context, guild events.Snowflake, p LinkModLogParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandLinkModLog, &p)
}

// CaseMarkExpiryProcessed records that the bot lifted a case's restriction
// after its expiry.
func (c *Client) CaseMarkExpiryProcessed(ctx context.Context, guild events.Snowflake, p MarkExpiryProcessedParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandMarkExpiryProcessed, &p)
}

// CaseDelete deletes a case; it keeps its number and its history.
func (c *Client) CaseDelete(ctx context.Context, guild events.Snowflake, p DeleteParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandDelete, &p)
}

// CaseRedact removes a case's personal text.
func (c *Client) CaseRedact(ctx context.Context, guild events.Snowflake, p RedactParams) (*Result, error) {
	return call[Result](ctx, c, guild, aggregate.CommandRedact, &p)
}

// call sends one command and decodes its reply into R.
func call[R any](ctx context.Context, c *Client, guild events.Snowflake, command string, p metaHolder) (*R, error) {
	if err := guild.Validate(); err != nil {
		return nil, &Error{Code: CodeInvalidArgument, Field: "guild_id", Message: err.Error()}
	}
	if p.meta().CommandID == uuid.Nil {
		p.meta().CommandID = newUUID()
	}
	body, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("%s: encode: %w", command, err)
	}
	subject := c.subj.Command(guild, command)
	attempt := func() (*R, error) {
		actx, cancel := context.WithTimeout(ctx, c.attemptTimeout)
		defer cancel()
		msg, err := c.nc.RequestWithContext(actx, subject, body)
		if err != nil {
			if ctx.Err() != nil {
				return nil, backoff.Permanent(fmt.Errorf("%s: %w", command, ctx.Err()))
			}
			if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout) {
				return nil, &Error{Code: CodeUnavailable, Message: fmt.Sprintf("%s: %v", command, err)}
			}
			return nil, backoff.Permanent(fmt.Errorf("%s: %w", command, err))
		}
		if e := wire.ReplyError(msg); e != nil {
			if e.Code == CodeUnavailable {
				return nil, e
			}
			return nil, backoff.Permanent(e)
		}
		var r R
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			return nil, backoff.Permanent(fmt.Errorf("%s: unreadable reply: %w", command, err))
		}
		return &r, nil
	}
	if !c.retry {
		r, err := attempt()
		var perm *backoff.PermanentError
		if errors.As(err, &perm) {
			err = perm.Err
		}
		return r, err
	}
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = 50 * time.Millisecond
	b.MaxInterval = 2 * time.Second
	b.MaxElapsedTime = time.Minute // or until ctx is done
	r, err := backoff.RetryWithData(attempt, backoff.WithContext(b, ctx))
	var perm *backoff.PermanentError
	if errors.As(err, &perm) {
		err = perm.Err
	}
	return r, err
}
