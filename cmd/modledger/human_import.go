package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/google/uuid"

	"github.com/modledger/modledger/aggregate"
	"github.com/modledger/modledger/command"
)

// importNamespace derives the command ids of an import's chunks (UUIDv5),
// so that running the same file again resumes it: the chunks stored
// already get their first reply, the rest are imported.
var importNamespace = uuid.MustParse("6d0c5a5e-6f1b-4b8e-9a55-0c2a3c0e1f70")

// caseImportCmd brings cases over from another system.
type caseImportCmd struct {
	humanFlags
	chunk int
}

func caseImportCommand() subcommand {
	return subcommand{
		name:    "case import",
		summary: "Import cases from another bot's table (JSON lines), with their numbers and times; safe to run again.",
		usage:   "FILE [--chunk N]",
		examples: `  modledger case import cases.jsonl
  modledger case import cases.jsonl --chunk 200 --json
  # each line: {"case_number": 1, "created_at": "2024-03-01T12:00:00Z", "type": "BAN", "user_id": "42", "moderator_id": "7", "reason": "raid"}`,
		flags: func(fs *flag.FlagSet, getenv func(string) string) runner {
			c := &caseImportCmd{}
			c.register(fs, getenv, needGuild|needActor)
			fs.IntVar(&c.chunk, "chunk", 500, fmt.Sprintf("cases per import command, 1 to %d: each chunk is stored all or none", command.MaxCasesPerBatch))
			return c
		},
	}
}

// importSummary is what `case import --json` prints.
type importSummary struct {
	File     string `json:"file"`
	Cases    int    `json:"cases"`
	Chunks   int    `json:"chunks"`
	Appended int    `json:"appended"`
	LastCase uint32 `json:"last_case_number"`
	LastSeq  uint64 `json:"seq"`
}

func (c *caseImportCmd) Run(ctx context.Context, env *cliEnv) error {
	pos, err := c.args(env, 1, 1, "FILE [--chunk N]")
	if err != nil {
		return err
	}
	guild, err := c.check()
	if err != nil {
		return err
	}
	if c.chunk < 1 || c.chunk > command.MaxCasesPerBatch {
		return usageError{fmt.Sprintf("--chunk %d: want 1 to %d", c.chunk, command.MaxCasesPerBatch)}
	}
	actor, err := c.actorID(false)
	if err != nil {
		return err
	}
	raw, err := os.ReadFile(pos[0])
	if err != nil {
		return usageError{err.Error()}
	}
	cases, err := readImportFile(raw)
	if err != nil {
		return usageError{fmt.Sprintf("%s: %v", pos[0], err)}
	}
	if len(cases) == 0 {
		return usageError{pos[0] + ": no cases"}
	}
	chunks := importChunks(cases, c.chunk)
	sum := sha256.Sum256(raw)
	nc, err := c.nats.connect("modledger case import")
	if err != nil {
		return c.failed(env, err, uuid.Nil)
	}
	defer nc.Close()
	cl, err := command.NewClient(nc, command.WithPrefix(c.prefix))
	if err != nil {
		return err
	}
	out := importSummary{File: pos[0], Cases: len(cases), Chunks: len(chunks)}
	start := time.Now()
	done := 0
	for i, ch := range chunks {
		id := uuid.NewSHA1(importNamespace, fmt.Appendf(nil, "%d/%x/%d", guild, sum, i))
		cctx, cancel := context.WithTimeout(ctx, c.timeout)
		r, err := cl.CaseImport(cctx, guild, command.ImportParams{Meta: command.Meta{CommandID: id, ActorID: actor}, Cases: ch})
		cancel()
		if err != nil {
			fmt.Fprintf(env.stderr, "chunk %d of %d (cases #%d to #%d) failed; %d cases imported before it. Run the same command again to resume.\n",
				i+1, len(chunks), ch[0].CaseNumber, ch[len(ch)-1].CaseNumber, done)
			return c.failed(env, err, id)
		}
		done += len(ch)
		out.Appended += r.Appended
		out.LastCase, out.LastSeq = ch[len(ch)-1].CaseNumber, r.Seq
		if !c.json {
			fmt.Fprintf(env.stderr, "imported %d/%d cases (chunk %d/%d, up to case #%d) in %s\n",
				done, len(cases), i+1, len(chunks), out.LastCase, time.Since(start).Round(time.Millisecond))
		}
	}
	if c.json {
		return printJSON(env.stdout, out)
	}
	// A chunk an earlier run stored answers with its first reply, so a
	// second run reads the same as the first.
	fmt.Fprintf(env.stdout, "Imported %s into guild %d, up to case #%d (seq %d).\n", plural(len(cases), "case"), guild, out.LastCase, out.LastSeq)
	return nil
}

// readImportFile reads JSON lines (or one JSON array) of cases, strictly:
// unknown fields are errors naming the line.
func readImportFile(raw []byte) ([]aggregate.ImportCase, error) {
	trimmed := bytes.TrimSpace(raw)
	if len(trimmed) > 0 && trimmed[0] == '[' {
		dec := json.NewDecoder(bytes.NewReader(trimmed))
		dec.DisallowUnknownFields()
		var cases []aggregate.ImportCase
		if err := dec.Decode(&cases); err != nil {
			return nil, err
		}
		return cases, checkRising(cases, nil)
	}
	var cases []aggregate.ImportCase
	var lines []int
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 64<<10), 4<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.DisallowUnknownFields()
		var ic aggregate.ImportCase
		if err := dec.Decode(&ic); err != nil {
			return nil, fmt.Errorf("line %d: %v", n, err)
		}
		cases = append(cases, ic)
		lines = append(lines, n)
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	return cases, checkRising(cases, lines)
}

// checkRising checks that case numbers rise, as import needs.
func checkRising(cases []aggregate.ImportCase, lines []int) error {
	for i := range cases {
		if cases[i].CaseNumber == 0 || i > 0 && cases[i].CaseNumber <= cases[i-1].CaseNumber {
			where := fmt.Sprintf("case %d", i+1)
			if lines != nil {
				where = fmt.Sprintf("line %d", lines[i])
			}
			return fmt.Errorf("%s: case_number %d: numbers must start at 1 or above and rise", where, cases[i].CaseNumber)
		}
	}
	return nil
}

// importChunks splits cases into chunks of at most size cases whose
// messages (a case, and a claim per external id) fit one atomic batch.
func importChunks(cases []aggregate.ImportCase, size int) [][]aggregate.ImportCase {
	var out [][]aggregate.ImportCase
	var cur []aggregate.ImportCase
	msgs := 0
	for _, c := range cases {
		m := 1
		if c.ExternalID != "" {
			m = 2
		}
		if len(cur) == size || msgs+m > command.MaxCasesPerBatch {
			out = append(out, cur)
			cur, msgs = nil, 0
		}
		cur = append(cur, c)
		msgs += m
	}
	return append(out, cur)
}
