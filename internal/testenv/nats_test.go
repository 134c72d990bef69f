package testenv_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/internal/testenv"
)

func TestNATS(t *testing.T) {
	t.Parallel()

	env := testenv.NATS(t)
	if !env.Server.Inner().JetStreamConfig().SyncAlways {
		t.Fatal("test server runs without sync_interval: always")
	}

	// Core NATS between two connections.
	subConn := env.Conn(t)
	sub, err := subConn.SubscribeSync("testenv.ping")
	if err != nil {
		t.Fatal(err)
	}
	// The server must have the subscription before the other connection
	// publishes.
	if err := subConn.Flush(); err != nil {
		t.Fatal(err)
	}
	pub := env.Conn(t)
	if err := pub.Publish("testenv.ping", []byte("pong")); err != nil {
		t.Fatal(err)
	}
	msg, err := sub.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if string(msg.Data) != "pong" {
		t.Fatalf("data = %q, want pong", msg.Data)
	}

	// JetStream, with the stream options the ledger relies on.
	js := env.JetStream(t)
	stream, err := js.CreateStream(t.Context(), jetstream.StreamConfig{
		Name:               "TESTENV",
		Subjects:           []string{"testenv.js.>"},
		Storage:            jetstream.FileStorage,
		AllowAtomicPublish: true,
		AllowDirect:        true,
		DenyDelete:         true,
		DenyPurge:          true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "testenv.js.a", []byte("1"), jetstream.WithExpectLastSequence(0)); err != nil {
		t.Fatal(err)
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		info, err := stream.Info(t.Context())
		return err == nil && info.State.Msgs == 1
	}, "stream TESTENV holds one message")
}

func TestNATSServersAreIndependent(t *testing.T) {
	t.Parallel()

	a, b := testenv.NATS(t), testenv.NATS(t)
	if a.URL == b.URL {
		t.Fatalf("two environments share %s", a.URL)
	}
	if _, err := a.JetStream(t).CreateStream(t.Context(), jetstream.StreamConfig{Name: "ONLY_A", Subjects: []string{"a"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.JetStream(t).Stream(t.Context(), "ONLY_A"); err == nil {
		t.Fatal("a stream created on one server is visible on another")
	}
}
