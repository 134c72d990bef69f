package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"regexp"
	"text/tabwriter"
)

// configCmd prints the configuration `modledger serve` would run with.
type configCmd struct {
	serve  *serveCmd
	fs     *flag.FlagSet
	getenv func(string) string
	json   bool
}

func configCommand() subcommand {
	return subcommand{
		name:    "config",
		summary: "Print the configuration `modledger serve` would run with, where each value comes from, secrets masked.",
		usage:   "[serve flags] [--json]",
		examples: `  modledger config
  MODLEDGER_ROLES=projector,query DATABASE_URL=postgres://modledger:secret@db/modledger modledger config
  modledger config --roles command --json`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &configCmd{serve: newServeCmd(fs, getenv), fs: fs, getenv: getenv}
			fs.BoolVar(&c.json, "json", false, "print JSON: one object per setting")
			return c
		},
	}
}

// setting is one configuration value and where it came from.
type setting struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Source string `json:"source"` // "flag", "env NAME" or "default"
}

var envInUsage = regexp.MustCompile(`\(env ([A-Z_]+)\)`)

// maskedFlags hold URLs that may carry a password.
var maskedFlags = map[string]func(string) string{
	"nats-url":     redactURLs,
	"database-url": func(s string) string { return redactURL(s) },
}

func (c *configCmd) Run(_ context.Context, env *cliEnv) error {
	if len(env.args) > 0 {
		return usageError{fmt.Sprintf("unexpected arguments %q", env.args)}
	}
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	var out []setting
	c.fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "json" {
			return
		}
		s := setting{Name: f.Name, Value: f.Value.String(), Source: "default"}
		if m := envInUsage.FindStringSubmatch(f.Usage); m != nil && c.getenv(m[1]) != "" {
			s.Source = "env " + m[1]
		}
		if set[f.Name] {
			s.Source = "flag"
		}
		if mask := maskedFlags[f.Name]; mask != nil && s.Value != "" {
			s.Value = mask(s.Value)
		}
		out = append(out, s)
	})
	// Print first, then judge: an operator fixing a setting wants to see
	// them all.
	if c.json {
		enc := json.NewEncoder(env.stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	} else {
		tw := tabwriter.NewWriter(env.stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "SETTING\tVALUE\tSOURCE")
		for _, s := range out {
			v := s.Value
			if v == "" {
				v = "-"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\n", s.Name, v, s.Source)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := c.serve.validate()
	return err
}
