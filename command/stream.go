package command

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/events/shred"
)

// Stream defaults.
const (
	// StreamNameDefault is the name of the ledger's stream.
	StreamNameDefault = "MODLEDGER"
	// DuplicateWindowDefault is how long the server remembers command ids.
	DuplicateWindowDefault = 2 * time.Minute
	// DuplicateWindowMin is the shortest duplicate window accepted: client
	// retries must fall inside it.
	DuplicateWindowMin = 2 * time.Minute
)

// StreamConfig is the ledger's stream as the command service creates it.
type StreamConfig struct {
	// Name is the stream's name. Defaults to "MODLEDGER".
	Name string `json:"name"`
	// Prefix is the subject prefix. Defaults to "modledger".
	Prefix string `json:"prefix"`
	// Replicas is the stream's replica count: 1 in dev, 3 in production.
	// Defaults to 1.
	Replicas int `json:"replicas"`
	// DuplicateWindow is how long the server remembers command ids, so that
	// a retried command appends nothing. Defaults to 2 minutes; at least
	// 2 minutes.
	DuplicateWindow time.Duration `json:"duplicate_window"`
}

// WithDefaults returns a copy of c with unset fields at their defaults.
func (c StreamConfig) WithDefaults() StreamConfig {
	if c.Name == "" {
		c.Name = StreamNameDefault
	}
	if c.Prefix == "" {
		c.Prefix = events.DefaultPrefix
	}
	if c.Replicas == 0 {
		c.Replicas = 1
	}
	if c.DuplicateWindow == 0 {
		c.DuplicateWindow = DuplicateWindowDefault
	}
	return c
}

// Validate reports settings the ledger refuses: replicas outside 1 to 5, a
// duplicate window under DuplicateWindowMin. It checks c as given; call
// WithDefaults first to fill unset fields.
func (c StreamConfig) Validate() error {
	var errs []error
	if c.Replicas < 1 || c.Replicas > 5 {
		errs = append(errs, fmt.Errorf("replicas %d: must be 1 to 5", c.Replicas))
	}
	if c.DuplicateWindow < DuplicateWindowMin {
		errs = append(errs, fmt.Errorf("duplicate window %s: must be at least %s", c.DuplicateWindow, DuplicateWindowMin))
	}
	return errors.Join(errs...)
}

// jetStreamConfig is the full JetStream configuration of the ledger's
// stream: file storage, no limits (it is the ledger), no deletes or purges,
// direct gets for positions, atomic batches for multi-event commands.
func (c StreamConfig) jetStreamConfig() jetstream.StreamConfig {
	subj := events.Subjects{Prefix: c.Prefix}
	return jetstream.StreamConfig{
		Name:               c.Name,
		Description:        "modledger: immutable moderation case events",
		Subjects:           []string{subj.AllCases(), subj.Claims()},
		Storage:            jetstream.FileStorage,
		Retention:          jetstream.LimitsPolicy,
		Replicas:           c.Replicas,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		MaxMsgsPerSubject:  -1,
		Discard:            jetstream.DiscardNew,
		Duplicates:         c.DuplicateWindow,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowDirect:        true,
		AllowAtomicPublish: true,
	}
}

// EnsureStream creates the ledger's stream, or checks an existing one and
// brings its adjustable settings (duplicate window, direct gets, atomic
// batches) in line. It refuses a stream whose subjects, storage, retention
// or delete/purge protections differ, because those decide what the ledger
// guarantees. It ensures the key stream beside it too
// (shred.StreamName(cfg.Name), see package events/shred).
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg StreamConfig) (jetstream.Stream, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("stream config: %w", err)
	}
	if _, err := shred.EnsureStream(ctx, js, shred.StreamConfig{Name: shred.StreamName(cfg.Name), Prefix: cfg.Prefix, Replicas: cfg.Replicas}); err != nil {
		return nil, err
	}
	want := cfg.jetStreamConfig()
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = js.CreateStream(ctx, want)
		if err != nil && !errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			return nil, fmt.Errorf("create stream %s: %w", cfg.Name, err)
		}
		if err == nil {
			return s, nil
		}
		s, err = js.Stream(ctx, cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("look up stream %s: %w", cfg.Name, err)
	}
	have := s.CachedInfo().Config
	var bad []error
	for _, subj := range want.Subjects {
		if !slices.Contains(have.Subjects, subj) {
			bad = append(bad, fmt.Errorf("subjects %v do not include %s", have.Subjects, subj))
		}
	}
	if have.Storage != jetstream.FileStorage {
		bad = append(bad, fmt.Errorf("storage is %s, want file", have.Storage))
	}
	if have.Retention != jetstream.LimitsPolicy {
		bad = append(bad, fmt.Errorf("retention is %s, want limits", have.Retention))
	}
	if have.MaxAge != 0 || have.MaxMsgs > 0 || have.MaxBytes > 0 || have.MaxMsgsPerSubject > 0 {
		bad = append(bad, errors.New("has age, message or size limits; the ledger must keep every event"))
	}
	if !have.DenyDelete || !have.DenyPurge {
		bad = append(bad, errors.New("allows deletes or purges; the ledger needs deny_delete and deny_purge"))
	}
	if err := errors.Join(bad...); err != nil {
		return nil, fmt.Errorf("stream %s is not a ledger stream: %w", cfg.Name, err)
	}
	if have.Duplicates != want.Duplicates || !have.AllowDirect || !have.AllowAtomicPublish {
		upd := have
		upd.Duplicates = want.Duplicates
		upd.AllowDirect = true
		upd.AllowAtomicPublish = true
		if s, err = js.UpdateStream(ctx, upd); err != nil {
			// Under least privilege the command service may not update the
			// stream (its user has no STREAM.UPDATE; a denied request times
			// out): say what differs and who can fix it.
			return nil, fmt.Errorf("stream %s needs duplicate window %s, allow_direct and allow_atomic (it has %s, %t, %t), and updating it failed: %w; "+
				"update it as an administrator (nats stream edit %s) or let this user update the stream",
				cfg.Name, want.Duplicates, have.Duplicates, have.AllowDirect, have.AllowAtomicPublish, err, cfg.Name)
		}
	}
	return s, nil
}
