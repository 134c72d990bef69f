package natsserver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// logAdapter implements the nats-server Logger interface on top of slog. It
// also reports the first fatal error, because the server's own loggers exit
// the process on Fatalf and this one must not.
type logAdapter struct {
	logger *slog.Logger
	fatal  chan error
}

func newLogAdapter(logger *slog.Logger) *logAdapter {
	return &logAdapter{logger: logger, fatal: make(chan error, 1)}
}

func (a *logAdapter) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !a.logger.Enabled(ctx, level) {
		return
	}
	a.logger.Log(ctx, level, fmt.Sprintf(format, v...))
}

// Noticef logs at debug: notices are the server's routine chatter.
func (a *logAdapter) Noticef(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

// Warnf logs at warn.
func (a *logAdapter) Warnf(format string, v ...any) { a.log(slog.LevelWarn, format, v) }

// Errorf logs at error.
func (a *logAdapter) Errorf(format string, v ...any) { a.log(slog.LevelError, format, v) }

// Debugf logs at debug.
func (a *logAdapter) Debugf(format string, v ...any) { a.log(slog.LevelDebug, format, v) }

// Tracef drops the line; tracing is never enabled.
func (a *logAdapter) Tracef(string, ...any) {}

// Fatalf logs at error and hands the error to Start instead of exiting.
func (a *logAdapter) Fatalf(format string, v ...any) {
	msg := fmt.Sprintf(format, v...)
	a.logger.Error(msg)
	select {
	case a.fatal <- errors.New(msg):
	default:
	}
}
