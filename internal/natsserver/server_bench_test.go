package natsserver_test

import (
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/modledger/modledger/internal/natsserver"
)

// BenchmarkStart measures starting a server with an empty store and shutting
// it down again: the cost of one testenv.NATS.
func BenchmarkStart(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(syncName(sync), func(b *testing.B) {
			for b.Loop() {
				srv, err := natsserver.Start(b.Context(), natsserver.Config{StoreDir: b.TempDir(), SyncAlways: sync})
				if err != nil {
					b.Fatal(err)
				}
				srv.Shutdown()
			}
		})
	}
}

// BenchmarkPublish measures one synchronous JetStream publish to a file
// stream, with and without fsync before the acknowledgement.
func BenchmarkPublish(b *testing.B) {
	for _, sync := range []bool{true, false} {
		b.Run(syncName(sync), func(b *testing.B) {
			srv, err := natsserver.Start(b.Context(), natsserver.Config{StoreDir: b.TempDir(), SyncAlways: sync})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(srv.Shutdown)
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(nc.Close)
			js, err := jetstream.New(nc)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := js.CreateStream(b.Context(), jetstream.StreamConfig{Name: "BENCH", Subjects: []string{"bench"}}); err != nil {
				b.Fatal(err)
			}
			payload := make([]byte, 256)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := js.Publish(b.Context(), "bench", payload); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func syncName(always bool) string {
	if always {
		return "sync_always"
	}
	return "sync_default"
}
