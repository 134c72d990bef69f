package main

import (
	"context"
	"flag"
	"fmt"
	"strings"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
)

// streamInfoCmd describes the ledger's stream.
type streamInfoCmd struct{ humanFlags }

func streamInfoCommand() subcommand {
	return subcommand{
		name:    "stream info",
		summary: "Describe the ledger's stream: subjects, size, sequences, replicas, cluster and durability settings.",
		usage:   "[flags]",
		examples: `  modledger stream info
  modledger stream info --stream MODLEDGER --json | jq .state.last_seq`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &streamInfoCmd{}
			c.register(fs, getenv, needStream)
			return c
		},
	}
}

func (c *streamInfoCmd) Run(ctx context.Context, env *cliEnv) error {
	if _, err := c.args(env, 0, 0, "[flags]"); err != nil {
		return err
	}
	if _, err := c.check(); err != nil {
		return err
	}
	if c.stream == "" {
		return usageError{"--stream must not be empty"}
	}
	s, err := c.connect(ctx, "modledger stream info")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer s.close()
	js, err := jetstream.New(s.nc)
	if err != nil {
		return err
	}
	st, err := js.Stream(s.ctx, c.stream)
	if err != nil {
		return c.failed(env, fmt.Errorf("stream %s: %w", c.stream, err), uuid.Nil)
	}
	info := st.CachedInfo()
	if c.json {
		return printJSON(env.stdout, info)
	}
	clk := env.clock()
	cfg, state := info.Config, info.State
	tw := newTable(env.stdout)
	row := func(k, format string, args ...any) { fmt.Fprintf(tw, "%s\t%s\n", k, fmt.Sprintf(format, args...)) }
	row("Stream:", "%s", cfg.Name)
	if cfg.Description != "" {
		row("Description:", "%s", cfg.Description)
	}
	row("Subjects:", "%s", strings.Join(cfg.Subjects, ", "))
	row("Created:", "%s", clk.stamp(info.Created))
	row("Messages:", "%d on %s", state.Msgs, plural(int(state.NumSubjects), "subject"))
	row("Size:", "%s", byteSize(state.Bytes))
	row("Consumers:", "%d", state.Consumers)
	if state.Msgs > 0 {
		row("First:", "seq %d at %s", state.FirstSeq, clk.stamp(state.FirstTime))
		row("Last:", "seq %d at %s", state.LastSeq, clk.stamp(state.LastTime))
	} else {
		row("Last:", "seq %d (the stream is empty)", state.LastSeq)
	}
	row("Storage:", "%s, %s retention, replicas %d", storageName(cfg.Storage), strings.ToLower(cfg.Retention.String()), cfg.Replicas)
	if cl := info.Cluster; cl != nil && (cl.Name != "" || len(cl.Replicas) > 0) {
		row("Cluster:", "%s, leader %s", cl.Name, cl.Leader)
		for _, p := range cl.Replicas {
			if p == nil {
				continue
			}
			state := "current"
			switch {
			case p.Offline:
				state = "offline"
			case !p.Current:
				state = fmt.Sprintf("catching up, %d behind", p.Lag)
			}
			row("  Replica:", "%s, %s, seen %s ago", p.Name, state, approx(p.Active))
		}
	} else {
		row("Cluster:", "none: a single server")
	}
	row("Duplicate window:", "%s (a retried command id is recognised this long)", cfg.Duplicates)
	row("Protections:", "%s", protections(cfg))
	row("Persistence:", "%s", persistence(cfg.PersistMode))
	row("Limits:", "%s", limits(cfg))
	if name := s.nc.ConnectedServerName(); name != "" {
		row("Server:", "%s, nats-server %s", name, s.nc.ConnectedServerVersion())
	}
	return tw.Flush()
}

func storageName(t jetstream.StorageType) string {
	switch t {
	case jetstream.FileStorage:
		return "file"
	case jetstream.MemoryStorage:
		return "memory"
	}
	return t.String()
}

func protections(cfg jetstream.StreamConfig) string {
	var out []string
	add := func(ok bool, yes, no string) {
		if ok {
			out = append(out, yes)
		} else if no != "" {
			out = append(out, no)
		}
	}
	add(cfg.DenyDelete, "deny delete", "DELETES ALLOWED")
	add(cfg.DenyPurge, "deny purge", "PURGES ALLOWED")
	add(cfg.AllowDirect, "direct gets", "no direct gets")
	add(cfg.AllowAtomicPublish, "atomic batches", "no atomic batches")
	return strings.Join(out, ", ")
}

func persistence(m jetstream.PersistModeType) string {
	if m == jetstream.AsyncPersistMode {
		return "async: acknowledged before it is written (a crash can lose acknowledged commands)"
	}
	return "default: written before the ack, synced to disk per the server's sync_interval"
}

func limits(cfg jetstream.StreamConfig) string {
	var out []string
	if cfg.MaxMsgs > 0 {
		out = append(out, fmt.Sprintf("max %d messages", cfg.MaxMsgs))
	}
	if cfg.MaxBytes > 0 {
		out = append(out, "max "+byteSize(uint64(cfg.MaxBytes)))
	}
	if cfg.MaxAge > 0 {
		out = append(out, fmt.Sprintf("max age %s", cfg.MaxAge))
	}
	if len(out) == 0 {
		return "none (it is the ledger: nothing ages out)"
	}
	return strings.Join(out, ", ") + " (a ledger should have none)"
}

// byteSize writes n bytes in binary units: 512 B, 3.4 KiB, 12.0 MiB.
func byteSize(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
