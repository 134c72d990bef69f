package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/internal/wire"
)

// Exit codes of the binary (docs/cli.md lists them; printUsage too).
const (
	exitOK          = 0
	exitError       = 1 // the command failed: an internal or other error
	exitUsage       = 2 // bad flags or arguments; nothing was sent
	exitNotFound    = 3 // the case (or stream) does not exist, or is deleted
	exitRejected    = 4 // the ledger refused the request: invalid_argument or conflict
	exitUnavailable = 5 // NATS, the ledger or the read models could not be reached in time
)

// subcommand is one `modledger <name>` command.
type subcommand struct {
	name     string
	summary  string
	usage    string // the synopsis after "modledger <name>"
	examples string
	// flags registers the command's flags and returns its runner.
	flags func(fs *flag.FlagSet, getenv func(string) string) runner
}

// runner runs a subcommand once its flags are parsed.
type runner interface {
	Run(ctx context.Context, env *cliEnv) error
}

// cliEnv is what a running subcommand may touch: its output streams and
// positional arguments, the environment, and the clock and time zone that
// human output is written in.
type cliEnv struct {
	stdout, stderr io.Writer
	args           []string
	getenv         func(string) string
	now            func() time.Time
	loc            *time.Location
}

func subcommands() []subcommand {
	return []subcommand{
		serveCommand(),
		devCommand(),
		configCommand(),
		migrateCommand(),
		projectionStatusCommand(),
		projectionRebuildCommand(),
		caseOpenCommand(),
		caseShowCommand(),
		caseListCommand(),
		caseUpdateCommand(),
		caseCloseCommand(),
		caseReopenCommand(),
		caseNoteCommand(),
		caseDeleteCommand(),
		caseHistoryCommand(),
		caseImportCommand(),
		userHistoryCommand(),
		userRestrictionsCommand(),
		statsCommand(),
		eventsTailCommand(),
		streamInfoCommand(),
		casesCloseCommand(),
		casesReopenCommand(),
		casesDeleteCommand(),
		casesRedactCommand(),
		casesUpdateCommand(),
		benchCommand(),
	}
}

// usageError marks an error in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, os.Getenv)
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	return runWithClock(ctx, args, stdout, stderr, getenv, time.Now)
}

// runWithClock is runWith with the clock that human output (relative ages,
// --duration, --since 24h) is computed from. Times are shown in the zone of
// TZ (read through getenv), or the local zone.
func runWithClock(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string, now func() time.Time) int {
	cmds := subcommands()
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		if len(args) > 1 {
			for _, c := range cmds {
				if c.name == strings.Join(args[1:], " ") {
					fs := newFlagSet(c, stdout)
					c.flags(fs, getenv)
					fs.Usage()
					return exitOK
				}
			}
			if group := groupCommands(cmds, args[1:]); len(group) > 0 {
				printGroupUsage(stdout, strings.Join(args[1:], " "), group)
				return exitOK
			}
		}
		printUsage(stdout, cmds)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	for _, c := range cmds {
		words := strings.Fields(c.name)
		if len(args) < len(words) || !slices.Equal(args[:len(words)], words) {
			continue
		}
		fs := newFlagSet(c, stderr)
		r := c.flags(fs, getenv)
		if err := fs.Parse(args[len(words):]); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return exitOK
			}
			return exitUsage
		}
		err := r.Run(ctx, &cliEnv{stdout: stdout, stderr: stderr, args: fs.Args(), getenv: getenv, now: now, loc: location(getenv)})
		if err == nil || errors.Is(err, flag.ErrHelp) { // a -h after the arguments printed the help
			return exitOK
		}
		fmt.Fprintf(stderr, "modledger %s: %v\n", c.name, err)
		return exitCode(err)
	}
	// `modledger case` alone lists the group's commands.
	for n := len(args); n > 0; n-- {
		if group := groupCommands(cmds, args[:n]); len(group) > 0 {
			name := strings.Join(args[:n], " ")
			if n == len(args) {
				printGroupUsage(stdout, name, group)
				return exitUsage
			}
			fmt.Fprintf(stderr, "modledger: unknown command %q\n\n", name+" "+args[n])
			printGroupUsage(stderr, name, group)
			return exitUsage
		}
	}
	fmt.Fprintf(stderr, "modledger: unknown command %q\n\n", args[0])
	printUsage(stderr, cmds)
	return exitUsage
}

// exitCode maps a subcommand's error to the exit code that says what kind
// of failure it was: the wire error codes of the ledger (command.Error and
// projection.QueryError are wire.Error), and failures to reach NATS.
func exitCode(err error) int {
	var (
		ue usageError
		we *wire.Error
	)
	switch {
	case errors.As(err, &ue):
		return exitUsage
	case errors.As(err, &we):
		switch we.Code {
		case wire.CodeNotFound:
			return exitNotFound
		case wire.CodeInvalidArgument, wire.CodeConflict:
			return exitRejected
		case wire.CodeUnavailable:
			return exitUnavailable
		}
		return exitError
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return exitNotFound
	case errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, nats.ErrNoServers),
		errors.Is(err, nats.ErrTimeout),
		errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, nats.ErrConnectionClosed),
		errors.Is(err, jetstream.ErrJetStreamNotEnabled),
		errors.Is(err, jetstream.ErrNoStreamResponse):
		return exitUnavailable
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return exitUnavailable
	}
	return exitError
}

// location is the zone human output is written in: TZ when it names a
// zone, else the local zone.
func location(getenv func(string) string) *time.Location {
	if tz := getenv("TZ"); tz != "" {
		if loc, err := time.LoadLocation(strings.TrimPrefix(tz, ":")); err == nil {
			return loc
		}
	}
	return time.Local
}

// groupCommands returns the commands whose names start with the words.
func groupCommands(cmds []subcommand, words []string) []subcommand {
	var out []subcommand
	for _, c := range cmds {
		if w := strings.Fields(c.name); len(w) > len(words) && slices.Equal(w[:len(words)], words) {
			out = append(out, c)
		}
	}
	return out
}

func printGroupUsage(w io.Writer, group string, cmds []subcommand) {
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	fmt.Fprintf(w, "Usage:\n  modledger %s <command> [flags]\n\nCommands:\n", group)
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun `modledger help %s <command>` for its flags and examples.\n", group)
}

func newFlagSet(c subcommand, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("modledger "+c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintf(out, "%s\n\nUsage:\n  modledger %s %s\n\nFlags:\n", c.summary, c.name, c.usage)
		fs.PrintDefaults()
		if c.examples != "" {
			fmt.Fprintf(out, "\nExamples:\n%s\n", strings.TrimRight(c.examples, "\n"))
		}
	}
	return fs
}

func printUsage(w io.Writer, cmds []subcommand) {
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].name < cmds[j].name })
	fmt.Fprintln(w, "modledger: an event-sourced moderation ledger on NATS JetStream.")
	fmt.Fprintln(w, "\nUsage:\n  modledger <command> [flags]\n\nCommands:")
	for _, c := range cmds {
		fmt.Fprintf(w, "  %-20s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `modledger help <command>` for its flags and examples.")
	fmt.Fprintln(w, "\nExit codes:")
	fmt.Fprintln(w, "  0  ok")
	fmt.Fprintln(w, "  1  internal or other error")
	fmt.Fprintln(w, "  2  usage: bad flags or arguments; nothing was sent")
	fmt.Fprintln(w, "  3  not found: the case does not exist or is deleted")
	fmt.Fprintln(w, "  4  rejected by the ledger: invalid argument or conflict")
	fmt.Fprintln(w, "  5  unavailable: NATS, the ledger or the read models did not answer in time")
}

// envDefault returns the environment variable's value, or def.
func envDefault(getenv func(string) string, name, def string) string {
	if v := getenv(name); v != "" {
		return v
	}
	return def
}

// durationEnv reads a duration from the environment for a flag default.
func durationEnv(getenv func(string) string, name string, def time.Duration) time.Duration {
	if v := getenv(name); v != "" {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

// newLogger returns the process logger: text or JSON on stderr.
func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, usageError{fmt.Sprintf("--log-level %q: want debug, info, warn or error", level)}
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, usageError{fmt.Sprintf("--log-format %q: want text or json", format)}
}
