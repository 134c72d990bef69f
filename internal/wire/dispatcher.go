package wire

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// Dispatcher defaults and limits.
const (
	// MaxInFlightDefault bounds the requests a dispatcher serves at once.
	MaxInFlightDefault = 1024
	// FlushTimeoutDefault bounds the flush of the endpoints' subscriptions
	// in Start.
	FlushTimeoutDefault = 10 * time.Second
	// MaxErrorMessage bounds the message of an error reply, in bytes: it is
	// sent in a header and in the body, and may quote the caller's input.
	MaxErrorMessage = 512
)

// Request is what an endpoint needs of a NATS request. The dispatcher
// copies it out of the micro.Request, which micro's own goroutine still
// reads after the handler returns, so that the worker never touches it.
type Request struct {
	Subject string
	Reply   string
	Data    []byte
}

// Endpoint is one endpoint of a micro service.
type Endpoint struct {
	// Name is the endpoint's name, as `nats micro info` shows it.
	Name string
	// Subject is the subject the endpoint listens on; it may hold
	// wildcards.
	Subject string
	// Serve answers one request with a result, sent as JSON, or with an
	// error reply. ctx is the dispatcher's: it is cancelled by Stop.
	Serve func(ctx context.Context, req Request) (any, *Error)
}

// DispatcherConfig configures a Dispatcher.
type DispatcherConfig struct {
	// Conn is the NATS connection. Required.
	Conn *nats.Conn
	// Service is the micro service's configuration. Required.
	Service micro.Config
	// Endpoints are the service's endpoints, in the order `nats micro
	// info` shows.
	Endpoints []Endpoint
	// Kind names what the endpoints serve ("command", "query"): a request
	// refused while stopping is answered "<kind> service is stopping", and
	// logs carry the endpoint's name under this key. Defaults to "request".
	Kind string
	// MaxInFlight bounds the requests served at once; when all are taken
	// an endpoint waits, which pushes back on NATS. Defaults to 1024.
	MaxInFlight int
	// FlushTimeout bounds the flush that makes sure the server has the
	// endpoints' subscriptions before Start returns. Defaults to 10s.
	FlushTimeout time.Duration
	// Logger receives replies that could not be sent or encoded. Defaults
	// to discarding them.
	Logger *slog.Logger
	// Metrics counts and times the requests. Nil records nothing.
	Metrics *RequestMetrics
}

// Dispatcher runs the endpoints of a NATS micro service: it registers them,
// serves each request in its own goroutine, at most MaxInFlight at once,
// publishes the reply (JSON, or an error reply with micro's error headers)
// and on Stop waits for the requests in flight.
//
// Replies are published by the worker itself, so micro's statistics count
// requests but not their errors or processing time.
type Dispatcher struct {
	cfg     DispatcherConfig
	slots   chan struct{}
	running sync.WaitGroup
	stopped chan struct{}

	mu     sync.Mutex
	svc    micro.Service
	cancel context.CancelFunc
}

// NewDispatcher returns a dispatcher; Start registers its endpoints.
func NewDispatcher(cfg DispatcherConfig) *Dispatcher {
	if cfg.Kind == "" {
		cfg.Kind = "request"
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = MaxInFlightDefault
	}
	if cfg.FlushTimeout <= 0 {
		cfg.FlushTimeout = FlushTimeoutDefault
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return &Dispatcher{cfg: cfg, slots: make(chan struct{}, cfg.MaxInFlight), stopped: make(chan struct{})}
}

// Start adds the micro service and its endpoints, and returns once the
// server has their subscriptions, so that a request sent right after finds
// a responder. Requests are served with a context that outlives ctx and
// ends with Stop. A stopped dispatcher does not start again.
func (d *Dispatcher) Start(ctx context.Context) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	select {
	case <-d.stopped:
		return errors.New("stopped; make a new one")
	default:
	}
	if d.svc != nil {
		return errors.New("already started")
	}
	svc, err := micro.AddService(d.cfg.Conn, d.cfg.Service)
	if err != nil {
		return fmt.Errorf("add micro service: %w", err)
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	fail := func(err error) error {
		_ = svc.Stop()
		cancel()
		return err
	}
	for _, ep := range d.cfg.Endpoints {
		if err := svc.AddEndpoint(ep.Name, d.handler(sctx, ep), micro.WithEndpointSubject(ep.Subject)); err != nil {
			return fail(fmt.Errorf("add endpoint %s: %w", ep.Name, err))
		}
	}
	fctx, fcancel := context.WithTimeout(ctx, d.cfg.FlushTimeout)
	err = d.cfg.Conn.FlushWithContext(fctx)
	fcancel()
	if err != nil {
		return fail(fmt.Errorf("flush subscriptions: %w", err))
	}
	d.svc, d.cancel = svc, cancel
	return nil
}

// Stop stops taking requests and waits, until ctx is done, for the
// requests in flight; then it cancels their context, and returns ctx's
// error if it was done first. It may be called again.
func (d *Dispatcher) Stop(ctx context.Context) error {
	d.mu.Lock()
	svc, cancel := d.svc, d.cancel
	if svc != nil {
		d.svc = nil
		_ = svc.Stop()
		close(d.stopped)
	}
	d.mu.Unlock()
	done := make(chan struct{})
	go func() { d.running.Wait(); close(done) }()
	var err error
	select {
	case <-done:
	case <-ctx.Done():
		err = ctx.Err()
	}
	if cancel != nil {
		cancel()
	}
	return err
}

// Stopped is closed once Stop has stopped a started dispatcher.
func (d *Dispatcher) Stopped() <-chan struct{} { return d.stopped }

// handler hands each request to a goroutine, at most MaxInFlight at once;
// when all slots are taken the endpoint waits, which pushes back on NATS.
func (d *Dispatcher) handler(ctx context.Context, ep Endpoint) micro.Handler {
	return micro.HandlerFunc(func(mr micro.Request) {
		req := Request{Subject: mr.Subject(), Reply: mr.Reply(), Data: mr.Data()}
		select {
		case d.slots <- struct{}{}:
		case <-ctx.Done():
			e := &Error{Code: CodeUnavailable, Message: d.cfg.Kind + " service is stopping"}
			d.cfg.Metrics.Observe(ep.Name, e, 0)
			d.respondError(req, e)
			return
		}
		d.running.Add(1)
		go func() {
			defer func() { <-d.slots; d.running.Done() }()
			d.serve(ctx, ep, req)
		}()
	})
}

func (d *Dispatcher) serve(ctx context.Context, ep Endpoint, req Request) {
	start := time.Now()
	res, werr := ep.Serve(ctx, req)
	defer func() { d.cfg.Metrics.Observe(ep.Name, werr, time.Since(start)) }()
	if werr != nil {
		d.respondError(req, werr)
		return
	}
	body, err := json.Marshal(res)
	if err != nil {
		d.cfg.Logger.Error("encode reply", d.cfg.Kind, ep.Name, "subject", req.Subject, "error", err)
		werr = &Error{Code: CodeInternal, Message: "internal error"}
		d.respondError(req, werr)
		return
	}
	if err := d.cfg.Conn.Publish(req.Reply, body); err != nil {
		d.cfg.Logger.Warn("reply failed", d.cfg.Kind, ep.Name, "subject", req.Subject, "error", err)
	}
}

// respondError sends an error reply the way micro does: the status and
// message in the Nats-Service-Error-Code and Nats-Service-Error headers,
// and {"error": e} as the body. The message is cut to MaxErrorMessage.
func (d *Dispatcher) respondError(req Request, e *Error) {
	r := *e
	r.Message = Truncate(r.Message, MaxErrorMessage)
	body, _ := json.Marshal(ErrorReply{Error: &r})
	m := nats.NewMsg(req.Reply)
	m.Header.Set(micro.ErrorCodeHeader, strconv.Itoa(r.Code.Status()))
	m.Header.Set(micro.ErrorHeader, strings.Map(headerSafe, r.Message))
	m.Data = body
	if err := d.cfg.Conn.PublishMsg(m); err != nil {
		d.cfg.Logger.Warn("error reply failed", "subject", req.Subject, "error", err)
	}
}

// Truncate cuts s to at most n bytes on a character boundary, ending it
// with "…" when it cuts.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := max(n-len("…"), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

// headerSafe replaces the characters a NATS header value cannot hold.
func headerSafe(r rune) rune {
	if r == '\r' || r == '\n' {
		return ' '
	}
	return r
}
