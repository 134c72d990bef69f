package command

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/modledger/modledger/events"
	"github.com/modledger/modledger/internal/testenv"
)

// newTestLedger makes the ledger's stream on a fresh server.
func newTestLedger(t *testing.T) *ledger {
	t.Helper()
	env := testenv.NATS(t)
	cfg := StreamConfig{}.WithDefaults()
	if _, err := EnsureStream(t.Context(), env.JetStream(t), cfg); err != nil {
		t.Fatal(err)
	}
	codec, err := events.NewCodec()
	if err != nil {
		t.Fatal(err)
	}
	return &ledger{nc: env.Conn(t), stream: cfg.Name, subjects: events.Subjects{Prefix: cfg.Prefix}, codec: codec,
		window: cfg.DuplicateWindow, apiTimeout: 5 * time.Second}
}

// opened is an opened message of case n of guild g expecting the guild's
// register to be at seq.
func (l *ledger) testOpened(g events.Snowflake, n uint32, seq uint64) []outMsg {
	s := l.subjects.Case(g, n, events.NameCaseOpened)
	return []outMsg{{subject: s, data: []byte(`{}`), expectSet: true, expect: seq, expectSubject: l.subjects.GuildOpened(g)}}
}

func TestGroupCommitSplitsAFailedBatch(t *testing.T) {
	l := newTestLedger(t)
	c := newCommitter(l)
	reqs := []*commitReq{
		{ctx: t.Context(), msgs: l.testOpened(1, 1, 0), done: make(chan commitRes, 1)},
		{ctx: t.Context(), msgs: l.testOpened(2, 1, 7), done: make(chan commitRes, 1)}, // a stale check
		{ctx: t.Context(), msgs: l.testOpened(3, 1, 0), done: make(chan commitRes, 1)},
	}
	c.send(reqs, 3)
	var got []commitRes
	for _, r := range reqs {
		got = append(got, <-r.done)
	}
	// The combined batch failed on guild 2's check; alone, guilds 1 and 3
	// are stored and guild 2 learns that its check was lost.
	if got[0].err != nil || got[2].err != nil || got[0].ack.Seq == 0 || got[2].ack.Seq != got[0].ack.Seq+1 {
		t.Fatalf("members 1 and 3: %+v %+v", got[0], got[2])
	}
	if !errors.Is(got[1].err, errWrongLastSeq) {
		t.Fatalf("member 2: %+v, want a lost check", got[1])
	}
}

func TestGroupCommitCombinesConcurrentAppends(t *testing.T) {
	l := newTestLedger(t)
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	l.metrics = m
	c := newCommitter(l)
	// 200 guilds open their first case at once: every append succeeds at
	// its own sequence, and fewer round trips than appends were made.
	const n = 200
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ack, err := c.append(t.Context(), l.testOpened(events.Snowflake(i+1), 1, 0))
			if err != nil {
				t.Error(err)
				return
			}
			seqs[i] = ack.Seq
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for i, s := range seqs {
		if s == 0 || s > n || seen[s] {
			t.Fatalf("guild %d got seq %d", i+1, s)
		}
		seen[s] = true
		// The ack's sequence is this guild's own message.
		m, err := l.getOne(t.Context(), directGetRequest{Seq: s})
		if err != nil || m.Subject != l.subjects.Case(events.Snowflake(i+1), 1, events.NameCaseOpened) {
			t.Fatalf("seq %d holds %q (%v), want guild %d's case", s, m.Subject, err, i+1)
		}
	}
	groups := counterValue(t, reg, "modledger_group_commits_total", "ok")
	appends := counterValue(t, reg, "modledger_appends_total", appendOK)
	if groups == 0 || appends >= n {
		t.Fatalf("%v combined batches, %v appends to the server for %d appends: nothing was combined", groups, appends, n)
	}
	t.Logf("%d appends went to the server in %v round trips, %v of them combined", n, appends, groups)
}

// counterValue reads the counter name{outcome} from reg.
func counterValue(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
