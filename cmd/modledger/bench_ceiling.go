package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/command"
)

// How the ceilings are measured.
const (
	// ceilingAsyncInFlight is how many async publishes may await their
	// acknowledgement at once.
	ceilingAsyncInFlight = 1024
	// ceilingBatchSizeDefault is the size of one atomic batch.
	ceilingBatchSizeDefault = 100
	// ceilingBatchSizeMax is the largest atomic batch the server takes.
	ceilingBatchSizeMax = 1000
	// ceilingBatchInFlight is how many atomic batches are published at
	// once, each by its own publisher.
	ceilingBatchInFlight = 4
	// ceilingCopyRows is the rows of one COPY, committed on its own: the
	// projector's batch size.
	ceilingCopyRows = 1000
)

// measureCeilings measures, on the ledger's own servers, what the raw
// infrastructure does with messages and rows the size of the ledger's:
// JetStream publishes into a scratch stream with the ledger stream's
// storage and replicas (the server's sync setting applies to both), and
// COPY into a scratch table shaped like the audit log. A ceiling that
// fails is reported with its error; the others still run.
func measureCeilings(ctx context.Context, c *benchCmd, t *benchTarget, payload []byte, logger *slog.Logger) *ceilingReport {
	rep := &ceilingReport{PayloadBytes: len(payload), AsyncInFlight: ceilingAsyncInFlight,
		BatchSize: c.ceilingBatch, BatchInFlight: ceilingBatchInFlight, CopyRowsPerCommit: ceilingCopyRows}
	d := c.ceilingDuration
	subject, cleanup, err := t.scratchStream(ctx)
	if err != nil {
		rep.SyncPublish = ceilingFailed(err)
		rep.AsyncPublish = ceilingFailed(err)
		rep.BatchPublish = ceilingFailed(err)
	} else {
		rep.SyncPublish = ceilingSyncPublish(ctx, t, subject, payload, d)
		rep.AsyncPublish = ceilingAsyncPublish(ctx, t, subject, payload, d)
		rep.BatchPublish = ceilingBatchPublish(ctx, t, subject, payload, c.ceilingBatch, d)
		cleanup(logger)
	}
	rep.PostgresCopy = ceilingCopy(ctx, t, payload, d, logger)
	return rep
}

func ceilingFailed(err error) ceilingFigure { return ceilingFigure{Error: err.Error()} }

// scratchStream creates a stream beside the ledger's, with its storage
// and replicas, and returns a subject prefix in it and a function that
// deletes it.
func (t *benchTarget) scratchStream(ctx context.Context) (string, func(*slog.Logger), error) {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	id := hex.EncodeToString(b)
	name := "MODLEDGER_BENCH_" + id
	subject := t.prefix + "_bench." + id
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	_, err := t.js.CreateStream(ctx, jetstream.StreamConfig{
		Name: name, Description: "modledger bench: scratch stream for the raw publish ceilings",
		Subjects: []string{subject + ".>"}, Storage: jetstream.FileStorage, Replicas: t.replicas,
		Duplicates: command.DuplicateWindowDefault, AllowDirect: true, AllowAtomicPublish: true,
	})
	if err != nil {
		return "", nil, fmt.Errorf("create the scratch stream %s: %w", name, err)
	}
	return subject, func(l *slog.Logger) {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := t.js.DeleteStream(dctx, name); err != nil {
			l.Warn("bench: delete the scratch stream", "stream", name, "error", err)
		}
	}, nil
}

// ceilingMsg is a message the size of the ledger's, on a per-guild-like
// subject, with its own message id as the ledger's have.
func ceilingMsg(subject string, i int64, payload []byte) *nats.Msg {
	m := nats.NewMsg(subject + "." + strconv.FormatInt(i%1000, 10))
	m.Data = payload
	m.Header.Set(nats.MsgIdHdr, uuid.NewString())
	return m
}

// ceilingSyncPublish publishes one message at a time, each waiting for its
// acknowledgement: what one fsync per message allows.
func ceilingSyncPublish(ctx context.Context, t *benchTarget, subject string, payload []byte, d time.Duration) ceilingFigure {
	var h latencyHist
	start := time.Now()
	var n int64
	for time.Since(start) < d && ctx.Err() == nil {
		t0 := time.Now()
		if _, err := t.js.PublishMsg(ctx, ceilingMsg(subject, n, payload)); err != nil {
			return ceilingFailed(err)
		}
		h.Record(time.Since(t0))
		n++
	}
	f := ceilingFigure{Count: n, PerSec: float64(n) / time.Since(start).Seconds()}
	f.Latency = newLatencyReport(&h)
	return f
}

// ceilingAsyncPublish keeps up to ceilingAsyncInFlight publishes awaiting
// their acknowledgements: what the server does when it may group the
// writes of many messages.
func ceilingAsyncPublish(ctx context.Context, t *benchTarget, subject string, payload []byte, d time.Duration) ceilingFigure {
	js, err := jetstream.New(t.conns[0], jetstream.WithPublishAsyncMaxPending(ceilingAsyncInFlight))
	if err != nil {
		return ceilingFailed(err)
	}
	var futures []jetstream.PubAckFuture
	start := time.Now()
	for i := int64(0); time.Since(start) < d && ctx.Err() == nil; i++ {
		f, err := js.PublishMsgAsync(ceilingMsg(subject, i, payload))
		if errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
			i--
			continue
		}
		if err != nil {
			return ceilingFailed(err)
		}
		futures = append(futures, f)
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		return ceilingFailed(errors.New("async publishes not acknowledged within a minute"))
	case <-ctx.Done():
		return ceilingFailed(ctx.Err())
	}
	elapsed := time.Since(start)
	var ok int64
	for _, f := range futures {
		select {
		case <-f.Ok():
			ok++
		case err := <-f.Err():
			return ceilingFailed(err)
		}
	}
	return ceilingFigure{Count: ok, PerSec: float64(ok) / elapsed.Seconds()}
}

// ceilingBatchPublish publishes atomic batches of size messages
// (Nats-Batch-Id, one acknowledgement and one fsync per batch), as the
// ledger's group commit does, ceilingBatchInFlight at once.
func ceilingBatchPublish(ctx context.Context, t *benchTarget, subject string, payload []byte, size int, d time.Duration) ceilingFigure {
	var (
		msgs   atomic.Int64
		h      latencyHist
		mu     sync.Mutex
		firstE error
		wg     sync.WaitGroup
	)
	start := time.Now()
	for p := range ceilingBatchInFlight {
		nc := t.conns[p%len(t.conns)]
		wg.Go(func() {
			for time.Since(start) < d && ctx.Err() == nil {
				t0 := time.Now()
				if err := publishAtomicBatch(ctx, nc, subject, int64(p), payload, size); err != nil {
					mu.Lock()
					firstE = cmpOr(firstE, err)
					mu.Unlock()
					return
				}
				h.Record(time.Since(t0))
				msgs.Add(int64(size))
			}
		})
	}
	wg.Wait()
	if firstE != nil {
		return ceilingFailed(firstE)
	}
	n := msgs.Load()
	f := ceilingFigure{Count: n, PerSec: float64(n) / time.Since(start).Seconds()}
	f.Latency = newLatencyReport(&h)
	return f
}

func cmpOr(a, b error) error {
	if a != nil {
		return a
	}
	return b
}

// publishAtomicBatch publishes one atomic batch and waits for its commit's
// acknowledgement.
func publishAtomicBatch(ctx context.Context, nc *nats.Conn, subject string, p int64, payload []byte, size int) error {
	id := uuid.NewString()
	for i := range size {
		m := ceilingMsg(subject, p*int64(size)+int64(i), payload)
		m.Header.Set("Nats-Batch-Id", id)
		m.Header.Set("Nats-Batch-Sequence", strconv.Itoa(i+1))
		if i < size-1 {
			if err := nc.PublishMsg(m); err != nil {
				return err
			}
			continue
		}
		m.Header.Set("Nats-Batch-Commit", "1")
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		reply, err := nc.RequestMsgWithContext(rctx, m)
		cancel()
		if err != nil {
			return fmt.Errorf("atomic batch commit: %w", err)
		}
		var ack struct {
			Error *struct {
				Description string `json:"description"`
				ErrCode     int    `json:"err_code"`
			} `json:"error"`
		}
		if err := json.Unmarshal(reply.Data, &ack); err != nil {
			return fmt.Errorf("atomic batch commit: unreadable acknowledgement %q", reply.Data)
		}
		if ack.Error != nil {
			return fmt.Errorf("atomic batch commit: %s (err_code %d)", ack.Error.Description, ack.Error.ErrCode)
		}
	}
	return nil
}

// ceilingCopy copies rows shaped and sized like the audit log's
// (case_events) into a scratch table, ceilingCopyRows per COPY, each COPY
// committed on its own (synchronous_commit as the server has it).
func ceilingCopy(ctx context.Context, t *benchTarget, payload []byte, d time.Duration, logger *slog.Logger) ceilingFigure {
	if t.pool == nil {
		return ceilingFailed(errNoDatabase)
	}
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	table := pgx.Identifier{"public", "modledger_bench_copy_" + hex.EncodeToString(b)}
	ctx, cancel := context.WithTimeout(ctx, d+time.Minute)
	defer cancel()
	_, err := t.pool.Exec(ctx, `CREATE TABLE `+table.Sanitize()+` (
		seq bigint PRIMARY KEY, guild_id bigint NOT NULL, case_number bigint NOT NULL, case_id uuid NOT NULL,
		event text NOT NULL, event_id uuid NOT NULL, schema_version integer NOT NULL, actor_id bigint NOT NULL,
		command_id uuid NOT NULL, correlation_id uuid NOT NULL, occurred_at timestamptz NOT NULL, data jsonb NOT NULL,
		command text)`)
	if err != nil {
		return ceilingFailed(fmt.Errorf("create the scratch table: %w", err))
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := t.pool.Exec(dctx, `DROP TABLE IF EXISTS `+table.Sanitize()); err != nil {
			logger.Warn("bench: drop the scratch table", "table", table.Sanitize(), "error", err)
		}
	}()
	cols := []string{"seq", "guild_id", "case_number", "case_id", "event", "event_id", "schema_version", "actor_id",
		"command_id", "correlation_id", "occurred_at", "data", "command"}
	var h latencyHist
	var seq int64
	start := time.Now()
	for time.Since(start) < d && ctx.Err() == nil {
		rows := make([][]any, ceilingCopyRows)
		now := time.Now()
		for i := range rows {
			seq++
			rows[i] = []any{seq, int64(900000000000000000 + seq%1000), seq, uuid.New(), "opened", uuid.New(), 1,
				int64(benchModeratorBase + 1), uuid.New(), uuid.New(), now, payload, "open"}
		}
		t0 := time.Now()
		if _, err := t.pool.CopyFrom(ctx, table, cols, pgx.CopyFromRows(rows)); err != nil {
			return ceilingFailed(fmt.Errorf("copy: %w", err))
		}
		h.Record(time.Since(t0))
	}
	f := ceilingFigure{Count: seq, PerSec: float64(seq) / time.Since(start).Seconds()}
	f.Latency = newLatencyReport(&h)
	return f
}
