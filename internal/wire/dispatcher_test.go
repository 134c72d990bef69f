package wire

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/modledger/modledger/internal/testenv"
)

// dispatcherBundle is a dispatcher on a fresh NATS server with endpoints
// that echo, fail, block and fail to encode.
type dispatcherBundle struct {
	d    *Dispatcher
	conn *nats.Conn // the client's connection

	// in counts the block requests being served, max the most at once.
	in, max atomic.Int64
	// release lets the block requests finish.
	release chan struct{}
	// cancelled is closed by a block request that saw its context end.
	cancelled     chan struct{}
	cancelledOnce sync.Once
}

func setupDispatcher(t *testing.T, maxInFlight int) *dispatcherBundle {
	t.Helper()
	env := testenv.NATS(t)
	b := &dispatcherBundle{conn: env.Conn(t), release: make(chan struct{}), cancelled: make(chan struct{})}
	eps := []Endpoint{
		{Name: "echo", Subject: "test.echo", Serve: func(_ context.Context, req Request) (any, *Error) {
			return map[string]string{"subject": req.Subject, "data": string(req.Data)}, nil
		}},
		{Name: "fail", Subject: "test.fail", Serve: func(_ context.Context, req Request) (any, *Error) {
			var e Error
			if err := json.Unmarshal(req.Data, &e); err != nil {
				return nil, Invalidf("", "bad test request: %v", err)
			}
			return nil, &e
		}},
		{Name: "block", Subject: "test.block", Serve: func(ctx context.Context, _ Request) (any, *Error) {
			n := b.in.Add(1)
			defer b.in.Add(-1)
			for m := b.max.Load(); n > m; m = b.max.Load() {
				if b.max.CompareAndSwap(m, n) {
					break
				}
			}
			select {
			case <-b.release:
				return "released", nil
			case <-ctx.Done():
				b.cancelledOnce.Do(func() { close(b.cancelled) })
				return nil, &Error{Code: CodeUnavailable, Message: "cancelled"}
			}
		}},
		{Name: "unencodable", Subject: "test.unencodable", Serve: func(context.Context, Request) (any, *Error) {
			return func() {}, nil
		}},
	}
	b.d = NewDispatcher(DispatcherConfig{
		Conn:        env.Conn(t),
		Service:     micro.Config{Name: "wiretest", Version: "0.0.1"},
		Endpoints:   eps,
		Kind:        "test",
		MaxInFlight: maxInFlight,
		Logger:      testenv.Logger(t),
	})
	if err := b.d.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b.releaseAll()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := b.d.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return b
}

func (b *dispatcherBundle) releaseAll() {
	select {
	case <-b.release:
	default:
		close(b.release)
	}
}

func (b *dispatcherBundle) request(t *testing.T, subject string, body []byte) *nats.Msg {
	t.Helper()
	msg, err := b.conn.Request(subject, body, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return msg
}

// requestAsync sends a request from another goroutine; the channel gets
// the reply, or a message holding the request's error.
func (b *dispatcherBundle) requestAsync(subject string) <-chan *nats.Msg {
	reply := make(chan *nats.Msg, 1)
	go func() {
		msg, err := b.conn.Request(subject, nil, 20*time.Second)
		if err != nil {
			msg = &nats.Msg{Data: []byte(err.Error())}
		}
		reply <- msg
	}()
	return reply
}

func TestDispatcherRepliesJSON(t *testing.T) {
	t.Parallel()
	b := setupDispatcher(t, 0)
	msg := b.request(t, "test.echo", []byte(`{"x":1}`))
	if e := ReplyError(msg); e != nil {
		t.Fatalf("error reply %v", e)
	}
	if want := `{"data":"{\"x\":1}","subject":"test.echo"}`; string(msg.Data) != want {
		t.Fatalf("reply %s, want %s", msg.Data, want)
	}
}

func TestDispatcherRepliesErrors(t *testing.T) {
	t.Parallel()
	b := setupDispatcher(t, 0)
	long := strings.Repeat("é", MaxErrorMessage) // two bytes each
	for _, tc := range []struct {
		name        string
		err         Error
		status      string
		header      string
		wantMessage string
	}{
		{"invalid with field", Error{Code: CodeInvalidArgument, Field: "user_id", Message: "bad"}, "400", "bad", "bad"},
		{"not found deleted", Error{Code: CodeNotFound, Message: "case 7", Deleted: true}, "404", "case 7", "case 7"},
		{"conflict", Error{Code: CodeConflict, Message: "exists"}, "409", "exists", "exists"},
		{"unavailable", Error{Code: CodeUnavailable, Message: "later"}, "503", "later", "later"},
		{"internal", Error{Code: CodeInternal, Message: "oops"}, "500", "oops", "oops"},
		{"line breaks are spaces in the header", Error{Code: CodeInvalidArgument, Message: "a\r\nb\nc"}, "400", "a  b c", "a\r\nb\nc"},
		{"long messages are cut on a character boundary", Error{Code: CodeInvalidArgument, Message: long}, "400",
			strings.Repeat("é", (MaxErrorMessage-len("…"))/2) + "…", strings.Repeat("é", (MaxErrorMessage-len("…"))/2) + "…"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			req, _ := json.Marshal(tc.err)
			msg := b.request(t, "test.fail", req)
			if got := msg.Header.Get(micro.ErrorCodeHeader); got != tc.status {
				t.Errorf("status header %q, want %q", got, tc.status)
			}
			if got := msg.Header.Get(micro.ErrorHeader); got != tc.header {
				t.Errorf("message header %q, want %q", got, tc.header)
			}
			got := ReplyError(msg)
			want := tc.err
			want.Message = tc.wantMessage
			if got == nil || *got != want {
				t.Fatalf("reply %s reads as %+v, want %+v", msg.Data, got, want)
			}
			if len(got.Message) > MaxErrorMessage {
				t.Errorf("message of %d bytes", len(got.Message))
			}
		})
	}
}

func TestDispatcherEncodeFailureIsInternal(t *testing.T) {
	t.Parallel()
	b := setupDispatcher(t, 0)
	msg := b.request(t, "test.unencodable", nil)
	if got := ReplyError(msg); got == nil || got.Code != CodeInternal || got.Message != "internal error" {
		t.Fatalf("reply %+v", got)
	}
}

func TestDispatcherBoundsInFlight(t *testing.T) {
	t.Parallel()
	const maxInFlight, n = 3, 10
	b := setupDispatcher(t, maxInFlight)
	replies := make([]<-chan *nats.Msg, n)
	for i := range replies {
		replies[i] = b.requestAsync("test.block")
	}
	testenv.Eventually(t, 10*time.Second, func() bool { return b.in.Load() == maxInFlight }, "%d requests in flight", maxInFlight)
	b.releaseAll()
	for _, reply := range replies {
		if msg := <-reply; string(msg.Data) != `"released"` {
			t.Fatalf("reply %s", msg.Data)
		}
	}
	if got := b.max.Load(); got != maxInFlight {
		t.Fatalf("%d requests in flight at most, want %d", got, maxInFlight)
	}
}

func TestDispatcherStopWaitsForRequests(t *testing.T) {
	t.Parallel()
	b := setupDispatcher(t, 0)
	reply := b.requestAsync("test.block")
	testenv.Eventually(t, 10*time.Second, func() bool { return b.in.Load() == 1 }, "the request in flight")
	stopped := make(chan error, 1)
	go func() { stopped <- b.d.Stop(context.Background()) }()
	<-b.d.Stopped()
	select {
	case err := <-stopped:
		t.Fatalf("Stop returned %v with a request in flight", err)
	default:
	}
	// No new requests once stopped (the unsubscription reaches the server
	// a little after Stop returns).
	testenv.Eventually(t, 10*time.Second, func() bool {
		_, err := b.conn.Request("test.echo", nil, 5*time.Second)
		return errors.Is(err, nats.ErrNoResponders)
	}, "no responders after Stop")
	b.releaseAll()
	if err := <-stopped; err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if msg := <-reply; string(msg.Data) != `"released"` {
		t.Fatalf("the request in flight got %s", msg.Data)
	}
}

func TestDispatcherStopCancelsWhenItsContextEnds(t *testing.T) {
	t.Parallel()
	b := setupDispatcher(t, 0)
	reply := b.requestAsync("test.block")
	testenv.Eventually(t, 10*time.Second, func() bool { return b.in.Load() == 1 }, "the request in flight")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.d.Stop(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Stop with a done context: %v", err)
	}
	<-b.cancelled
	if got := ReplyError(<-reply); got == nil || got.Code != CodeUnavailable {
		t.Fatalf("the cancelled request got %+v", got)
	}
	// Stop may be called again.
	if err := b.d.Stop(context.Background()); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
}

func TestDispatcherStartStop(t *testing.T) {
	t.Parallel()
	b := setupDispatcher(t, 0)
	if err := b.d.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "already started") {
		t.Fatalf("second Start: %v", err)
	}
	if err := b.d.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := b.d.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "stopped") {
		t.Fatalf("Start after Stop: %v", err)
	}
}

func TestDispatcherStopBeforeStart(t *testing.T) {
	t.Parallel()
	env := testenv.NATS(t)
	d := NewDispatcher(DispatcherConfig{Conn: env.Conn(t), Service: micro.Config{Name: "wiretest", Version: "0.0.1"}})
	if err := d.Stop(t.Context()); err != nil {
		t.Fatalf("Stop before Start: %v", err)
	}
	select {
	case <-d.Stopped():
		t.Fatal("Stopped closed by a Stop before Start")
	default:
	}
	if err := d.Start(t.Context()); err != nil {
		t.Fatalf("Start after an early Stop: %v", err)
	}
	if err := d.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func TestDispatcherStartFails(t *testing.T) {
	t.Parallel()
	env := testenv.NATS(t)
	d := NewDispatcher(DispatcherConfig{Conn: env.Conn(t), Service: micro.Config{Name: "wiretest", Version: "0.0.1"},
		Endpoints: []Endpoint{{Name: "bad name!", Subject: "test.x", Serve: func(context.Context, Request) (any, *Error) { return nil, nil }}}})
	if err := d.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "add endpoint bad name!") {
		t.Fatalf("Start with a bad endpoint: %v", err)
	}
	d = NewDispatcher(DispatcherConfig{Conn: env.Conn(t), Service: micro.Config{Name: "bad name!"}})
	if err := d.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "add micro service") {
		t.Fatalf("Start with a bad service name: %v", err)
	}
}
