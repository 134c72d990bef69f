package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/events"
)

// clock writes times for people: in one zone, with ages relative to one
// instant, so that a whole command's output agrees with itself.
type clock struct {
	now time.Time
	loc *time.Location
}

func (env *cliEnv) clock() clock {
	now, loc := time.Now, env.loc
	if env.now != nil {
		now = env.now
	}
	if loc == nil {
		loc = time.Local
	}
	return clock{now: now(), loc: loc}
}

// Layouts of human output.
const (
	layoutMinute = "2006-01-02 15:04"
	layoutSecond = "2006-01-02 15:04:05"
)

// when writes t to the minute with its age: "2026-12-02 13:04 (3h ago)".
func (c clock) when(t time.Time) string {
	return t.In(c.loc).Format(layoutMinute) + " (" + c.age(t) + ")"
}

// stamp writes t to the second with its zone and age:
// "2026-12-02 13:04:05 CET (3h ago)".
func (c clock) stamp(t time.Time) string {
	return t.In(c.loc).Format(layoutSecond+" MST") + " (" + c.age(t) + ")"
}

// age writes how long ago (or how far ahead) t is: "3h ago", "in 2d".
func (c clock) age(t time.Time) string {
	d := t.Sub(c.now)
	switch {
	case d > -time.Second && d < time.Second:
		return "now"
	case d < 0:
		return approx(-d) + " ago"
	}
	return "in " + approx(d)
}

// approx writes d in its largest sensible unit, rounded: 45s, 12m, 3h, 36h,
// 7d, 2y.
func approx(d time.Duration) string {
	const day = 24 * time.Hour
	if s := d.Round(time.Second); s < time.Minute {
		return fmt.Sprintf("%ds", s/time.Second)
	}
	if m := d.Round(time.Minute); m < time.Hour {
		return fmt.Sprintf("%dm", m/time.Minute)
	}
	if h := d.Round(time.Hour); h < 48*time.Hour {
		return fmt.Sprintf("%dh", h/time.Hour)
	}
	if days := d.Round(day); days < 365*day {
		return fmt.Sprintf("%dd", days/day)
	}
	return fmt.Sprintf("%dy", d.Round(365*day)/(365*day))
}

// plural writes "1 event", "2 events".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// newTable returns a writer that aligns tab-separated columns.
func newTable(w io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
}

// truncate shortens s to at most n characters, on one line.
func truncate(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-1]) + "…"
}

// reasonText is the reason as a person reads it.
func reasonText(c *aggregate.Case) string {
	switch {
	case c.Reason != "":
		return c.Reason
	case c.Redacted:
		return "(redacted)"
	}
	return "No reason provided"
}

// statusText is the case's status, deleted included.
func statusText(c *aggregate.Case) string {
	if c.Deleted {
		return "deleted"
	}
	return string(c.Status)
}

// expiryText is a case's expiry in a table: "-", "in 7d", "passed 2h ago",
// "lifted".
func (c clock) expiryText(cs *aggregate.Case) string {
	switch {
	case cs.ExpiresAt == nil:
		return "-"
	case cs.ExpiryProcessed:
		return "lifted"
	case !cs.ExpiresAt.After(c.now):
		return "passed " + c.age(*cs.ExpiresAt)
	}
	return c.age(*cs.ExpiresAt)
}

// writeCaseTable writes cases as an aligned table.
func writeCaseTable(w io.Writer, clk clock, cases []aggregate.Case) error {
	tw := newTable(w)
	fmt.Fprintln(tw, "CASE\tTYPE\tUSER\tMODERATOR\tSTATUS\tCREATED\tEXPIRES\tNOTES\tREASON")
	for i := range cases {
		c := &cases[i]
		fmt.Fprintf(tw, "#%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\t%s\n", c.CaseNumber, c.Type, c.UserID, c.ModeratorID,
			statusText(c), clk.when(c.CreatedAt), clk.expiryText(c), c.NoteCount, truncate(reasonText(c), 60))
	}
	return tw.Flush()
}

// writeCase writes one case as a block of labelled lines; full adds its
// notes and reason history.
func writeCase(w io.Writer, clk clock, c *aggregate.Case, full bool) error {
	fmt.Fprintf(w, "Case #%d: %s of user %s, %s\n", c.CaseNumber, c.Type, c.UserID, statusText(c))
	tw := newTable(w)
	row := func(k, v string) { fmt.Fprintf(tw, "  %s\t%s\n", k, v) }
	row("Reason:", reasonText(c))
	row("Moderator:", c.ModeratorID.String())
	row("Created:", clk.stamp(c.CreatedAt))
	if !c.UpdatedAt.Equal(c.CreatedAt) {
		row("Updated:", clk.stamp(c.UpdatedAt))
	}
	if c.ExpiresAt != nil {
		exp := clk.stamp(*c.ExpiresAt)
		switch {
		case c.ExpiryProcessed && c.ExpiryProcessedAt != nil:
			exp += fmt.Sprintf(", lifted %s by %s", clk.age(*c.ExpiryProcessedAt), c.ExpiryProcessedBy)
		case c.ExpiredAt != nil:
			exp += ", passed; not lifted yet"
		}
		row("Expires:", exp)
	}
	if c.Deleted && c.DeletedAt != nil {
		row("Deleted:", clk.stamp(*c.DeletedAt))
	}
	if c.Redacted {
		row("Redacted:", "yes: its personal text was removed")
	}
	if len(c.UserRoles) > 0 {
		roles := make([]string, len(c.UserRoles))
		for i, r := range c.UserRoles {
			roles[i] = r.String()
		}
		row("User roles:", strings.Join(roles, ", "))
	}
	if m := compactJSON(c.Metadata); m != "" && m != "{}" {
		row("Metadata:", m)
	}
	src := c.Source
	if c.ExternalID != "" {
		src += ", external id " + c.ExternalID
	}
	row("Source:", src)
	if c.ModLogMessageID != 0 {
		ml := "message " + c.ModLogMessageID.String()
		if c.ModLogChannelID != 0 {
			ml += " in channel " + c.ModLogChannelID.String()
		}
		row("Mod log:", ml)
	}
	row("Case id:", c.CaseID.String())
	row("Version:", fmt.Sprintf("seq %d, %s, %s", c.Version, plural(c.Events, "event"), plural(c.NoteCount, "note")))
	if err := tw.Flush(); err != nil {
		return err
	}
	if !full {
		return nil
	}
	if len(c.Notes) > 0 {
		fmt.Fprintf(w, "Notes:\n")
		for _, n := range c.Notes {
			fmt.Fprintf(w, "  %s  by %s: %s\n", clk.when(n.CreatedAt), n.AuthorID, n.Text)
			for _, u := range n.EvidenceURLs {
				fmt.Fprintf(w, "    %s\n", u)
			}
		}
	}
	if len(c.ReasonHistory) > 1 {
		fmt.Fprintf(w, "Reason history:\n")
		for _, r := range c.ReasonHistory {
			text := r.Reason
			if text == "" {
				text = "(none)"
			}
			fmt.Fprintf(w, "  %s  by %s: %s\n", clk.when(r.ChangedAt), r.ChangedBy, text)
		}
	}
	return nil
}

// compactJSON writes raw JSON on one line, "" when there is none.
func compactJSON(raw json.RawMessage) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if json.Unmarshal(raw, &v) != nil {
		return string(raw)
	}
	b, _ := json.Marshal(v)
	return string(b)
}

// eventSummary says in a few words what an event did.
func (c clock) eventSummary(e events.Event) string {
	withReason := func(what, reason string) string {
		if reason == "" {
			return what
		}
		return what + ": " + truncate(reason, 80)
	}
	switch p := e.Data.(type) {
	case events.CaseOpened:
		return c.openedSummary("", p.CaseFields)
	case events.CaseImported:
		s := c.openedSummary("imported ", p.CaseFields)
		if p.ImportedFrom != "" {
			s += " (from " + p.ImportedFrom + ")"
		}
		return s
	case events.CaseReasonAmended:
		return withReason("reason changed", p.Reason)
	case events.CaseNoteAdded:
		s := fmt.Sprintf("note by %s: %s", p.AuthorID, truncate(p.Text, 80))
		if n := len(p.EvidenceURLs); n > 0 {
			s += " [" + plural(n, "link") + "]"
		}
		return s
	case events.CaseExpiryChanged:
		if p.ExpiresAt == nil {
			return "expiry removed"
		}
		return "expires " + c.when(*p.ExpiresAt)
	case events.CaseClosed:
		return withReason("closed", p.Reason)
	case events.CaseReopened:
		return withReason("reopened", p.Reason)
	case events.ModLogMessageLinked:
		s := "mod-log message " + p.MessageID.String()
		if p.ChannelID != 0 {
			s += " in channel " + p.ChannelID.String()
		}
		return s
	case events.CaseMetadataUpdated:
		return "metadata " + truncate(compactJSON(p.Metadata), 80)
	case events.CaseExpired:
		return "expiry passed (" + c.when(p.ExpiresAt) + ")"
	case events.CaseExpiryProcessed:
		return "restriction lifted after the expiry"
	case events.CaseDeleted:
		return withReason("deleted", p.Reason)
	case events.CaseRedacted:
		return withReason("personal text redacted", p.Reason)
	}
	return string(e.Event)
}

func (c clock) openedSummary(prefix string, f events.CaseFields) string {
	s := fmt.Sprintf("%s%s of user %s by %s", prefix, f.Type, f.UserID, f.ModeratorID)
	if f.ExpiresAt != nil {
		s += ", expires " + c.when(*f.ExpiresAt)
	}
	if f.Reason != "" {
		s += ": " + truncate(f.Reason, 80)
	}
	return s
}

// wireEvent is an event as the case_history query and `events tail --json`
// write it: the envelope, the payload in "data", the stream sequence in
// "seq".
type wireEvent struct {
	Seq uint64 `json:"seq"`
	events.Envelope
	Data json.RawMessage `json:"data"`
}

func toWireEvent(e events.Event) (wireEvent, error) {
	data, err := json.Marshal(e.Data)
	if err != nil {
		return wireEvent{}, fmt.Errorf("encode event %d: %w", e.Seq, err)
	}
	return wireEvent{Seq: e.Seq, Envelope: e.Envelope, Data: data}, nil
}
