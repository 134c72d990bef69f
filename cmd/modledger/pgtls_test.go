package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/internal/pgcluster"
	"github.com/modledger/modledger/internal/testenv"
	"github.com/modledger/modledger/projection"
)

// pgTLSURL is a URL for the TLS cluster on port: user and password (none
// when empty), and the query's ssl* parameters.
func pgTLSURL(user, password string, port int, database string, q url.Values) string {
	u := &url.URL{Scheme: "postgres", Host: fmt.Sprintf("127.0.0.1:%d", port), Path: "/" + database, RawQuery: q.Encode()}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// keySecrets returns what of a PEM key file must never be printed: each
// line of its base64 body.
func keySecrets(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "-----") {
			out = append(out, line)
		}
	}
	return out
}

// checkNoSecret fails the test if out holds any of secrets.
func checkNoSecret(t *testing.T, what, out string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("%s printed a secret (%.12s...):\n%s", what, s, out)
		}
	}
	if strings.Contains(out, "PRIVATE KEY") {
		t.Errorf("%s printed a private key:\n%s", what, out)
	}
}

// TestPostgresTLS runs a private PostgreSQL cluster that accepts TLS
// connections only (hostnossl reject) and the ledger's user only with a
// password and a client certificate whose name is the user's
// (scram-sha-256 clientcert=verify-full). Every role of `modledger serve`
// connects through DATABASE_URL's ssl parameters
// (sslmode=verify-full&sslrootcert=...&sslcert=...&sslkey=...), projects a
// case and answers a query about it over TLS; connections without TLS,
// without a client certificate, or trusting another CA are refused with a
// clear error; and neither `modledger config` nor serve's logs (at debug)
// nor those errors print the password or the key.
func TestPostgresTLS(t *testing.T) {
	pki := newTestPKI(t)
	caFile := filepath.Join(pki.dir, "ca.pem")
	serverCert, serverKey, _ := pki.issue(t, "server", 10, x509.ExtKeyUsageServerAuth, "localhost", "127.0.0.1")
	// The cert method takes the certificate's common name as the user.
	adminCert, adminKey, _ := pki.issue(t, "postgres", 11, x509.ExtKeyUsageClientAuth)
	clientCert, clientKey, _ := pki.issue(t, "modledger_tls", 12, x509.ExtKeyUsageClientAuth)

	cluster, err := pgcluster.StartWith(t.Context(), filepath.Join(testenv.ReachableTempDir(t), "pg"), &pgcluster.StartOpts{
		TLS: &pgcluster.TLSOpts{CertFile: serverCert, KeyFile: serverKey, CAFile: caFile, HBA: []string{
			"hostssl all postgres 127.0.0.1/32 cert",
			"hostssl all all 127.0.0.1/32 scram-sha-256 clientcert=verify-full",
			"hostnossl all all 0.0.0.0/0 reject",
		}},
	})
	if errors.Is(err, pgcluster.ErrNoPostgres) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop(context.Background()) })
	port := cluster.Port()

	// The administrator, by certificate, makes the ledger's user and its
	// database.
	pwBytes := make([]byte, 12)
	if _, err := rand.Read(pwBytes); err != nil {
		t.Fatal(err)
	}
	password := "pw-" + hex.EncodeToString(pwBytes)
	admin, err := pgx.Connect(t.Context(), pgTLSURL("postgres", "", port, "postgres", url.Values{
		"sslmode": {"verify-full"}, "sslrootcert": {caFile}, "sslcert": {adminCert}, "sslkey": {adminKey}}))
	if err != nil {
		t.Fatalf("connect as the administrator with a client certificate: %v", err)
	}
	defer admin.Close(context.Background())
	for _, q := range []string{
		fmt.Sprintf(`CREATE ROLE modledger_tls LOGIN PASSWORD '%s'`, password), // hex: nothing to escape
		`CREATE DATABASE modledger OWNER modledger_tls`,
	} {
		if _, err := admin.Exec(t.Context(), q); err != nil {
			t.Fatal(err)
		}
	}
	secrets := append([]string{password}, keySecrets(t, clientKey)...)
	full := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}, "sslcert": {clientCert}, "sslkey": {clientKey}}
	dbURL := pgTLSURL("modledger_tls", password, port, "modledger", full)

	// runDB runs the CLI with DATABASE_URL set to dsn.
	runDB := func(t *testing.T, dsn, natsURL string, args ...string) (int, string, string) {
		t.Helper()
		var out, errOut bytes.Buffer
		getenv := func(k string) string {
			switch k {
			case "DATABASE_URL":
				return dsn
			case "MODLEDGER_NATS_URL":
				return natsURL
			case "MODLEDGER_METRICS_ADDR":
				return "127.0.0.1:0"
			}
			return ""
		}
		code := runWith(t.Context(), args, &out, &errOut, getenv)
		return code, out.String(), errOut.String()
	}

	t.Run("serve_over_tls", func(t *testing.T) {
		if code, out, errOut := runDB(t, dbURL, "", "migrate"); code != exitOK {
			t.Fatalf("migrate over TLS exited %d: %s%s", code, out, errOut)
		}
		env := testenv.NATS(t)
		// The test server asks for no credentials and ignores these: they
		// are there to be kept out of the logs.
		natsWithPassword := strings.Replace(env.URL, "nats://", "nats://ledger:nats-"+password+"@", 1)
		getenv := func(k string) string {
			switch k {
			case "DATABASE_URL":
				return dbURL
			case "MODLEDGER_NATS_URL":
				return natsWithPassword
			case "MODLEDGER_METRICS_ADDR":
				return "127.0.0.1:0"
			}
			return ""
		}
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var stdout, stderr syncBuffer
		code := make(chan int, 1)
		go func() {
			code <- runWith(ctx, []string{"serve", "--roles", "command,projector,scheduler,query", "--log-level", "debug"}, &stdout, &stderr, getenv)
		}()
		testenv.Eventually(t, 20*time.Second, func() bool { return strings.Contains(stderr.String(), "ledger running") }, "serve did not start: %s", &stderr)
		r := openWarn(t, env.URL)
		nc, err := nats.Connect(env.URL)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		qc, err := projection.NewQueryClient(nc)
		if err != nil {
			t.Fatal(err)
		}
		got, err := qc.CaseGet(t.Context(), 1234, projection.CaseGetParams{QueryMeta: projection.QueryMeta{MinSeq: r.Seq}, CaseNumber: r.Case.CaseNumber})
		if err != nil || got.Case.Reason != "first warning" {
			t.Fatalf("query the case just opened, over TLS: %+v %v", got, err)
		}
		// Every session of the ledger's user uses TLS, with its certificate.
		var withTLS, without int
		var dn string
		if err := admin.QueryRow(t.Context(), `SELECT count(*) FILTER (WHERE s.ssl), count(*) FILTER (WHERE NOT s.ssl), coalesce(max(s.client_dn), '')
			FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.usename = 'modledger_tls'`).Scan(&withTLS, &without, &dn); err != nil {
			t.Fatal(err)
		}
		if withTLS == 0 || without != 0 || !strings.Contains(dn, "CN=modledger_tls") {
			t.Fatalf("sessions of the ledger's user: %d with TLS, %d without; client certificate %q", withTLS, without, dn)
		}
		cancel()
		if c := <-code; c != exitOK {
			t.Fatalf("serve exited %d: %s", c, stderr.String())
		}
		checkNoSecret(t, "serve's log", stdout.String()+stderr.String(), secrets...)
		if !strings.Contains(stderr.String(), "nats://ledger:xxxxx@") {
			t.Errorf("serve did not log the NATS URL, masked:\n%s", stderr.String())
		}
		t.Logf("%d sessions over TLS (client certificate %s); serve logged %d lines at debug, none with a secret",
			withTLS, dn, strings.Count(stderr.String(), "\n"))
	})

	t.Run("without_tls_refused", func(t *testing.T) {
		plain := pgTLSURL("modledger_tls", password, port, "modledger", url.Values{"sslmode": {"disable"}})
		_, err := pgx.Connect(t.Context(), plain)
		if err == nil || !strings.Contains(err.Error(), "no encryption") {
			t.Fatalf("a connection without TLS: %v, want the server's refusal (no pg_hba.conf entry ... no encryption)", err)
		}
		code, out, errOut := runDB(t, plain, "", "migrate")
		if code == exitOK || !strings.Contains(errOut, "no encryption") {
			t.Fatalf("migrate without TLS exited %d: %s%s", code, out, errOut)
		}
		checkNoSecret(t, "migrate's error", out+errOut, secrets...)
		t.Logf("without TLS: %s", strings.TrimSpace(errOut))
	})

	t.Run("without_client_certificate_refused", func(t *testing.T) {
		noCert := pgTLSURL("modledger_tls", password, port, "modledger", url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}})
		code, out, errOut := runDB(t, noCert, "", "migrate")
		if code == exitOK || !strings.Contains(errOut, "certificate") {
			t.Fatalf("migrate without a client certificate exited %d: %s%s", code, out, errOut)
		}
		checkNoSecret(t, "migrate's error", out+errOut, secrets...)
		t.Logf("without a client certificate: %s", strings.TrimSpace(errOut))
	})

	t.Run("another_ca_refused", func(t *testing.T) {
		other := newTestPKI(t)
		wrongCA := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {filepath.Join(other.dir, "ca.pem")}, "sslcert": {clientCert}, "sslkey": {clientKey}}
		code, out, errOut := runDB(t, pgTLSURL("modledger_tls", password, port, "modledger", wrongCA), "", "migrate")
		if code == exitOK || !strings.Contains(errOut, "certificate signed by unknown authority") {
			t.Fatalf("migrate trusting another CA exited %d: %s%s", code, out, errOut)
		}
		checkNoSecret(t, "migrate's error", out+errOut, secrets...)
		t.Logf("trusting another CA: %s", strings.TrimSpace(errOut))
	})

	t.Run("wrong_host_name_refused", func(t *testing.T) {
		// The certificate names localhost and 127.0.0.1, not 127.0.0.2.
		u := pgTLSURL("modledger_tls", password, port, "modledger", full)
		u = strings.Replace(u, "@127.0.0.1:", "@127.0.0.2:", 1)
		code, out, errOut := runDB(t, u, "", "migrate")
		if code == exitOK || !strings.Contains(errOut, "127.0.0.2") {
			t.Fatalf("migrate to a host the certificate does not name exited %d: %s%s", code, out, errOut)
		}
		checkNoSecret(t, "migrate's error", out+errOut, secrets...)
	})

	t.Run("localhost", func(t *testing.T) {
		u := strings.Replace(dbURL, "@127.0.0.1:", "@localhost:", 1)
		conn, err := pgx.Connect(t.Context(), u)
		if err != nil {
			t.Fatalf("verify-full through localhost: %v", err)
		}
		conn.Close(context.Background())
	})

	t.Run("config_masks_secrets", func(t *testing.T) {
		q := url.Values{"sslmode": {"verify-full"}, "sslrootcert": {caFile}, "sslcert": {clientCert}, "sslkey": {clientKey}, "sslpassword": {"key-" + password}}
		withQuery := url.Values{"password": {password}}
		for k, v := range q {
			withQuery[k] = v
		}
		for name, dsn := range map[string]string{
			"user info":          pgTLSURL("modledger_tls", password, port, "modledger", q),
			"password parameter": pgTLSURL("modledger_tls", "", port, "modledger", withQuery),
			"keyword/value":      fmt.Sprintf("host=127.0.0.1 port=%d user=modledger_tls password=%s sslmode=verify-full sslkey=%s", port, password, clientKey),
		} {
			for _, args := range [][]string{{"config", "--roles", "projector"}, {"config", "--roles", "projector", "--json"}} {
				code, out, errOut := runDB(t, dsn, "nats://bot:nats-"+password+"@127.0.0.1:4222", args...)
				if code != exitOK {
					t.Fatalf("%s: config exited %d: %s", name, code, errOut)
				}
				checkNoSecret(t, name+": config", out+errOut, secrets...)
				if !strings.Contains(out, "database-url") || !strings.Contains(out, filepath.Base(clientKey)) {
					t.Errorf("%s: config does not show the URL with its key file's path:\n%s", name, out)
				}
			}
		}
	})
}
