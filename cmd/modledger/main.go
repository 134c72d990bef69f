// Command modledger is the event-sourced moderation ledger's one binary:
// `modledger dev` runs a complete ledger with zero configuration, `modledger
// serve` runs the production roles. Run `modledger help` for the rest.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}
