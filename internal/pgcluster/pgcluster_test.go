package pgcluster_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/modledger/modledger/internal/pgcluster"
	"github.com/modledger/modledger/internal/testenv"
)

func TestStartCreatesReusesAndStops(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "pg")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The postgres user must reach the directory when the test runs as
	// root: open up the test's own directories, up to the system's temp
	// directory (left as it is).
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, err := pgcluster.Start(t.Context(), dir)
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	conn, err := pgx.Connect(t.Context(), c.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(t.Context(), `CREATE TABLE kept (v int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
	// Starting again while it runs reuses it.
	again, err := pgcluster.Start(t.Context(), dir)
	if err != nil || again.URL() != c.URL() {
		t.Fatalf("second start: %v %v", again, err)
	}
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	// A restart keeps the data and the port.
	third, err := pgcluster.Start(t.Context(), dir)
	if err != nil || third.URL() != c.URL() {
		t.Fatalf("restart: %v %v", third, err)
	}
	conn, err = pgx.Connect(t.Context(), third.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(t.Context())
	var v int
	if err := conn.QueryRow(t.Context(), `SELECT v FROM kept`).Scan(&v); err != nil || v != 42 {
		t.Fatalf("data after a restart: %d %v", v, err)
	}
}

// TestStartWithTLS starts a cluster with a self-signed server certificate
// and the default host-based authentication: TLS connections are accepted,
// others refused. A cluster started without options again (after a stop)
// is back to trust without TLS.
func TestStartWithTLS(t *testing.T) {
	dir := filepath.Join(testenv.ReachableTempDir(t), "pg")
	if _, err := pgcluster.StartWith(t.Context(), dir, &pgcluster.StartOpts{TLS: &pgcluster.TLSOpts{CertFile: "server.pem"}}); err == nil {
		t.Fatal("a TLS cluster without a key file started")
	}
	certFile, keyFile := selfSigned(t)
	c, err := pgcluster.StartWith(t.Context(), dir, &pgcluster.StartOpts{TLS: &pgcluster.TLSOpts{CertFile: certFile, KeyFile: keyFile}})
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop(context.Background()) })
	if _, err := pgx.Connect(t.Context(), c.URL()); err == nil || !strings.Contains(err.Error(), "no encryption") {
		t.Fatalf("without TLS: %v, want a refusal", err)
	}
	conn, err := pgx.Connect(t.Context(), fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=require", c.Port()))
	if err != nil {
		t.Fatalf("with TLS: %v", err)
	}
	var ssl bool
	if err := conn.QueryRow(t.Context(), `SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()`).Scan(&ssl); err != nil || !ssl {
		t.Fatalf("session uses TLS: %v %v", ssl, err)
	}
	conn.Close(t.Context())
	if err := c.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	plain, err := pgcluster.Start(t.Context(), dir)
	if err != nil {
		t.Fatal(err)
	}
	conn, err = pgx.Connect(t.Context(), plain.URL())
	if err != nil {
		t.Fatalf("restarted without options: %v", err)
	}
	conn.Close(t.Context())
}

// selfSigned writes a self-signed server certificate for 127.0.0.1 and its
// key, and returns their files.
func selfSigned(t *testing.T) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, typ string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("server.pem", "CERTIFICATE", der), write("server-key.pem", "EC PRIVATE KEY", kder)
}
