package subscription

import (
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/modledger/modledger/events"
)

// Filter selects the case events a subscription receives. The zero Filter
// selects every case event of every guild. Claims (<prefix>.claim.>) are
// never selected: every filter lies under <prefix>.case.
type Filter struct {
	// Guild limits the subscription to one guild's events. Defaults to every
	// guild (zero).
	Guild events.Snowflake
	// Case limits the subscription to one case of Guild, by its number; it
	// requires Guild. Defaults to every case (zero).
	Case uint32
	// Events limits the subscription to events of these names. Defaults to
	// every event (empty).
	//
	// CaseOpened and CaseImported are both stored under the subject token
	// "opened", so the server delivers both for either name; the
	// subscription acknowledges the other one without calling the handler.
	Events []events.Name
}

// Subjects returns the NATS filter subjects of f on the ledger whose
// subjects subj builds: one subject without Events, otherwise one per
// distinct subject token,
// <prefix>.case.<guild or *>.<case or *>.<token>, in the order of Events.
func (f Filter) Subjects(subj events.Subjects) []string {
	if len(f.Events) == 0 {
		switch {
		case f.Guild == 0:
			return []string{subj.AllCases()}
		case f.Case == 0:
			return []string{subj.Guild(f.Guild)}
		default:
			return []string{subj.CaseAll(f.Guild, f.Case)}
		}
	}
	guild, number := "*", "*"
	if f.Guild != 0 {
		guild = f.Guild.String()
	}
	if f.Case != 0 {
		number = strconv.FormatUint(uint64(f.Case), 10)
	}
	prefix := subj.Prefix
	if prefix == "" {
		prefix = events.DefaultPrefix
	}
	var out []string
	for _, n := range f.Events {
		s := prefix + ".case." + guild + "." + number + "." + n.SubjectToken()
		// The server refuses overlapping filter subjects; opened and
		// imported share one.
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// Match reports whether e is selected by f. The server already filters by
// subject; Match is what tells CaseOpened from CaseImported, which share a
// subject.
func (f Filter) Match(e events.Event) bool {
	if f.Guild != 0 && e.GuildID != f.Guild {
		return false
	}
	if f.Case != 0 && e.CaseNumber != f.Case {
		return false
	}
	return f.matchName(e.Event)
}

func (f Filter) matchName(n events.Name) bool {
	return len(f.Events) == 0 || slices.Contains(f.Events, n)
}

// needsNameCheck reports whether the server's subject filter can deliver
// events f does not select: one of opened and imported without the other.
func (f Filter) needsNameCheck() bool {
	return slices.Contains(f.Events, events.NameCaseOpened) != slices.Contains(f.Events, events.NameCaseImported)
}

func (f Filter) validate() error {
	var errs []error
	if f.Guild != 0 {
		if err := f.Guild.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("filter guild: %w", err))
		}
	}
	if f.Case != 0 && f.Guild == 0 {
		errs = append(errs, errors.New("filter case: a case number needs its guild"))
	}
	known := events.Names()
	for _, n := range f.Events {
		if !slices.Contains(known, n) {
			errs = append(errs, fmt.Errorf("filter events: %w: %q", events.ErrUnknownEvent, n))
		}
	}
	return errors.Join(errs...)
}
