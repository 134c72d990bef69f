package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/events"
)

// benchProblemsMax bounds the problems a report lists.
const benchProblemsMax = 10

// verifyNumbers checks invariant 1 on what the run did: in every guild the
// numbers the replies gave are exactly 1..n, each once, and the stream
// holds exactly one opened event for each of them and no other.
func verifyNumbers(ctx context.Context, t *benchTarget, guilds []events.Snowflake, replies [][]uint32) numbersReport {
	rep := numbersReport{Exact: true, Guilds: len(guilds)}
	problem := func(format string, args ...any) {
		rep.Exact = false
		if len(rep.Problems) < benchProblemsMax {
			rep.Problems = append(rep.Problems, fmt.Sprintf(format, args...))
		}
	}
	for g, nums := range replies {
		rep.Cases += len(nums)
		sorted := slices.Clone(nums)
		slices.Sort(sorted)
		for i, n := range sorted {
			if n != uint32(i+1) {
				problem("guild %d: the replies' numbers are not 1..%d: number %d at place %d", guilds[g], len(sorted), n, i+1)
				break
			}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	st, err := t.js.Stream(ctx, t.stream)
	if err != nil {
		rep.StreamError = err.Error()
		return rep
	}
	for g, guild := range guilds {
		got, err := openedInStream(ctx, st, t.subj, guild)
		if err != nil {
			rep.StreamError = err.Error()
			return rep
		}
		if len(got) != len(replies[g]) {
			problem("guild %d: the stream has %d opened events, the replies %d cases", guild, len(got), len(replies[g]))
			continue
		}
		for n := uint32(1); n <= uint32(len(got)); n++ {
			if c := got[n]; c != 1 {
				problem("guild %d: case %d has %d opened events in the stream", guild, n, c)
				break
			}
		}
	}
	rep.StreamChecked = true
	return rep
}

// openedInStream counts the stream's opened events of each case number of
// guild.
func openedInStream(ctx context.Context, st jetstream.Stream, subj events.Subjects, guild events.Snowflake) (map[uint32]uint64, error) {
	info, err := st.Info(ctx, jetstream.WithSubjectFilter(subj.GuildOpened(guild)))
	if err != nil {
		return nil, fmt.Errorf("stream subjects of guild %d: %w", guild, err)
	}
	out := make(map[uint32]uint64, len(info.State.Subjects))
	for s, count := range info.State.Subjects {
		cs, err := subj.ParseCase(s)
		if err != nil {
			return nil, err
		}
		out[cs.CaseNumber] += count
	}
	return out, nil
}
