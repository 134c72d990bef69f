package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sort"
	"strings"
	"time"
)

// Exit codes of the binary.
const (
	exitOK    = 0
	exitError = 1 // the command failed
	exitUsage = 2 // bad flags or arguments
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
// positional arguments.
type cliEnv struct {
	stdout, stderr io.Writer
	args           []string
	getenv         func(string) string
}

func subcommands() []subcommand {
	return []subcommand{serveCommand(), devCommand(), migrateCommand(), projectionStatusCommand(), projectionRebuildCommand()}
}

// usageError marks an error in the command line.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

// run executes the command line args and returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, stdout, stderr, os.Getenv)
}

func runWith(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
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
		err := r.Run(ctx, &cliEnv{stdout: stdout, stderr: stderr, args: fs.Args(), getenv: getenv})
		var ue usageError
		switch {
		case err == nil:
			return exitOK
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "modledger %s: %v\n", c.name, err)
			return exitUsage
		default:
			fmt.Fprintf(stderr, "modledger %s: %v\n", c.name, err)
			return exitError
		}
	}
	fmt.Fprintf(stderr, "modledger: unknown command %q\n\n", args[0])
	printUsage(stderr, cmds)
	return exitUsage
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
