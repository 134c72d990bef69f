package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/command"
	"github.com/modledger/modledger/events"
)

// Roles a process can run. The read-side roles (projector, scheduler,
// query) arrive with the read side; until then only command is accepted.
const roleCommand = "command"

var knownRoles = []string{roleCommand}

// ledgerFlags are the settings every process that runs roles shares.
type ledgerFlags struct {
	stream          string
	prefix          string
	replicas        int
	duplicateWindow time.Duration
	logFormat       string
	logLevel        string
}

func (f *ledgerFlags) register(fs *flag.FlagSet, getenv func(string) string, logFormat string) {
	fs.StringVar(&f.stream, "stream", envDefault(getenv, "MODLEDGER_STREAM", command.StreamNameDefault), "JetStream stream name (env MODLEDGER_STREAM)")
	fs.StringVar(&f.prefix, "subject-prefix", envDefault(getenv, "MODLEDGER_SUBJECT_PREFIX", events.DefaultPrefix), "subject prefix (env MODLEDGER_SUBJECT_PREFIX)")
	replicas, _ := strconv.Atoi(envDefault(getenv, "MODLEDGER_REPLICAS", "1"))
	fs.IntVar(&f.replicas, "replicas", replicas, "stream replicas: 1 in dev, 3 in production (env MODLEDGER_REPLICAS)")
	fs.DurationVar(&f.duplicateWindow, "duplicate-window", durationEnv(getenv, "MODLEDGER_DUPLICATE_WINDOW", command.DuplicateWindowDefault), "how long retried command ids are recognised by the server, at least 2m (env MODLEDGER_DUPLICATE_WINDOW)")
	fs.StringVar(&f.logFormat, "log-format", envDefault(getenv, "MODLEDGER_LOG_FORMAT", logFormat), "log format: text or json (env MODLEDGER_LOG_FORMAT)")
	fs.StringVar(&f.logLevel, "log-level", envDefault(getenv, "MODLEDGER_LOG_LEVEL", "info"), "log level: debug, info, warn, error (env MODLEDGER_LOG_LEVEL)")
}

func (f *ledgerFlags) streamConfig() command.StreamConfig {
	return command.StreamConfig{Name: f.stream, Prefix: f.prefix, Replicas: f.replicas, DuplicateWindow: f.duplicateWindow}
}

// parseRoles reads a comma-separated role list.
func parseRoles(s string) ([]string, error) {
	var roles []string
	for _, r := range strings.Split(s, ",") {
		r = strings.TrimSpace(r)
		if r == "" {
			continue
		}
		if !slices.Contains(knownRoles, r) {
			return nil, usageError{fmt.Sprintf("--roles: unknown role %q (this build runs: %s)", r, strings.Join(knownRoles, ", "))}
		}
		if !slices.Contains(roles, r) {
			roles = append(roles, r)
		}
	}
	if len(roles) == 0 {
		return nil, usageError{"--roles: name at least one role"}
	}
	return roles, nil
}

// runRoles runs the roles on nc until ctx is done, then stops them
// gracefully: no new requests, in-flight commands finish.
func runRoles(ctx context.Context, nc *nats.Conn, roles []string, lf *ledgerFlags, logger *slog.Logger) error {
	var stops []func(context.Context) error
	for _, role := range roles {
		switch role {
		case roleCommand:
			svc, err := command.NewService(command.Config{
				Conn:   nc,
				Stream: lf.streamConfig(),
				Logger: logger.With("role", roleCommand),
			})
			if err != nil {
				return err
			}
			if err := svc.Start(ctx); err != nil {
				return err
			}
			stops = append(stops, svc.Stop)
		}
	}
	logger.Info("ledger running", "roles", strings.Join(roles, ","), "nats_url", nc.ConnectedUrlRedacted())
	<-ctx.Done()
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs []error
	for _, stop := range slices.Backward(stops) {
		if err := stop(sctx); err != nil {
			errs = append(errs, err)
		}
	}
	if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		errs = append(errs, fmt.Errorf("drain NATS connection: %w", err))
	}
	return errors.Join(errs...)
}
