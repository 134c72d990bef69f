package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
)

// ProjectionStatus is how far one projection is.
type ProjectionStatus struct {
	Name string `json:"name"`
	// CodeVersion is the projection's version in this build.
	CodeVersion int `json:"code_version"`
	// Generation, Version and Schema describe the active generation;
	// Generation is 0 when there is none yet.
	Generation int    `json:"generation"`
	Version    int    `json:"version"`
	Schema     string `json:"schema,omitempty"`
	// Checkpoint is the last stream sequence applied, and CheckpointTime
	// when that event was recorded.
	Checkpoint     uint64    `json:"checkpoint"`
	CheckpointTime time.Time `json:"checkpoint_time,omitzero"`
	// Head is the stream's last case event.
	Head uint64 `json:"head"`
	// LagEvents is how many case events are not applied yet; LagSeconds is
	// how long the oldest of them has waited.
	LagEvents  uint64  `json:"lag_events"`
	LagSeconds float64 `json:"lag_seconds"`
	// Building is the generation a rebuild is filling, if any, and how far
	// it is.
	Building           int    `json:"building,omitempty"`
	BuildingCheckpoint uint64 `json:"building_checkpoint,omitempty"`
	// SwappedAt is when the active generation was swapped in.
	SwappedAt time.Time `json:"swapped_at,omitzero"`
}

// Status reports every projection's progress against the stream.
func Status(ctx context.Context, js jetstream.JetStream, store *Store, stream, prefix string, projections ...Projection) ([]ProjectionStatus, error) {
	if stream == "" {
		stream = StreamDefault
	}
	if prefix == "" {
		prefix = PrefixDefault
	}
	st, err := js.Stream(ctx, stream)
	if err != nil {
		return nil, fmt.Errorf("status: stream %s: %w", stream, err)
	}
	var head uint64
	if m, err := st.GetLastMsgForSubject(ctx, prefix+".case.>"); err == nil {
		head = m.Sequence
	} else if !errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, fmt.Errorf("status: last event: %w", err)
	}
	var out []ProjectionStatus
	for _, p := range projections {
		ps := ProjectionStatus{Name: p.Name(), CodeVersion: p.Version(), Head: head}
		var gen, version, building *int
		var schema, buildingSchema *string
		var swapped *time.Time
		err := store.pool.QueryRow(ctx, `SELECT active_generation, active_version, active_schema, building_generation,
			building_schema, swapped_at FROM `+store.table("projections")+` WHERE name = $1`, p.Name()).
			Scan(&gen, &version, &schema, &building, &buildingSchema, &swapped)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return nil, fmt.Errorf("status of %s: %w", p.Name(), err)
		}
		if gen != nil {
			ps.Generation, ps.Version, ps.Schema = *gen, *version, *schema
			cp, at, err := store.Checkpoint(ctx, p.Name())
			if err != nil {
				return nil, fmt.Errorf("status of %s: %w", p.Name(), err)
			}
			ps.Checkpoint, ps.CheckpointTime = cp, at
		}
		if swapped != nil {
			ps.SwappedAt = swapped.UTC()
		}
		if building != nil {
			ps.Building = *building
			var seq int64
			if err := store.pool.QueryRow(ctx, `SELECT seq FROM `+pgx.Identifier{*buildingSchema, "checkpoint"}.Sanitize()+
				` WHERE projection = $1`, p.Name()).Scan(&seq); err == nil {
				ps.BuildingCheckpoint = uint64(seq)
			}
		}
		if head > ps.Checkpoint {
			// The next case event after the checkpoint: how many there are
			// and how long the oldest has waited.
			next, err := st.GetMsg(ctx, ps.Checkpoint+1, jetstream.WithGetMsgSubject(prefix+".case.>"))
			if err == nil {
				ps.LagSeconds = max(0, time.Since(next.Time).Seconds())
				info, err := js.Consumer(ctx, stream, ConsumerName(p.Name()))
				if err == nil && info.CachedInfo().Delivered.Stream >= ps.Checkpoint {
					ci := info.CachedInfo()
					ps.LagEvents = ci.NumPending + uint64(ci.NumAckPending)
				} else {
					ps.LagEvents = head - ps.Checkpoint // an upper bound: claims are counted too
				}
			}
		}
		out = append(out, ps)
	}
	return out, nil
}
