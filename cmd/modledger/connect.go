package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/nats-io/nats.go"

	"github.com/modledger/modledger/projection"
)

// natsFlags are how a command reaches NATS.
type natsFlags struct {
	url     string
	creds   string
	nkey    string
	tlsCA   string
	tlsCert string
	tlsKey  string
	inbox   string
}

func (f *natsFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.url, "nats-url", envDefault(getenv, "MODLEDGER_NATS_URL", nats.DefaultURL), "NATS server URL(s), comma separated; tls:// for TLS (env MODLEDGER_NATS_URL)")
	fs.StringVar(&f.creds, "nats-creds", envDefault(getenv, "MODLEDGER_NATS_CREDS", ""), "NATS credentials file: user JWT and nkey seed (env MODLEDGER_NATS_CREDS)")
	fs.StringVar(&f.nkey, "nats-nkey", envDefault(getenv, "MODLEDGER_NATS_NKEY", ""), "NATS nkey seed file, for a server that lists the user's public nkey (env MODLEDGER_NATS_NKEY)")
	fs.StringVar(&f.tlsCA, "nats-tls-ca", envDefault(getenv, "MODLEDGER_NATS_TLS_CA", ""), "CA certificate file that signed the NATS server's certificate (env MODLEDGER_NATS_TLS_CA)")
	fs.StringVar(&f.tlsCert, "nats-tls-cert", envDefault(getenv, "MODLEDGER_NATS_TLS_CERT", ""), "client certificate file, for a NATS server that verifies clients (env MODLEDGER_NATS_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "nats-tls-key", envDefault(getenv, "MODLEDGER_NATS_TLS_KEY", ""), "client certificate's key file (env MODLEDGER_NATS_TLS_KEY)")
	fs.StringVar(&f.inbox, "nats-inbox-prefix", envDefault(getenv, "MODLEDGER_NATS_INBOX_PREFIX", ""), "prefix of reply subjects, for a NATS user allowed only its own inboxes (a bot user: _INBOX.bot.<guild>) (env MODLEDGER_NATS_INBOX_PREFIX)")
}

// options returns the connection options the flags ask for.
func (f *natsFlags) options(name string) ([]nats.Option, error) {
	opts := []nats.Option{nats.Name(name), nats.MaxReconnects(-1)}
	if f.creds != "" && f.nkey != "" {
		return nil, usageError{"--nats-creds and --nats-nkey: give one of them"}
	}
	if f.creds != "" {
		opts = append(opts, nats.UserCredentials(f.creds))
	}
	if f.nkey != "" {
		o, err := nats.NkeyOptionFromSeed(f.nkey)
		if err != nil {
			return nil, usageError{fmt.Sprintf("--nats-nkey: %v", err)}
		}
		opts = append(opts, o)
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return nil, usageError{"--nats-tls-cert and --nats-tls-key go together"}
	}
	if f.inbox != "" {
		opts = append(opts, nats.CustomInboxPrefix(f.inbox))
	}
	if f.tlsCA != "" {
		opts = append(opts, nats.RootCAs(f.tlsCA))
	}
	if f.tlsCert != "" {
		opts = append(opts, nats.ClientCert(f.tlsCert, f.tlsKey))
	}
	return opts, nil
}

func (f *natsFlags) connect(name string) (*nats.Conn, error) {
	opts, err := f.options(name)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(f.url, opts...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", redactURLs(f.url), err)
	}
	return nc, nil
}

// dbFlags are how a command reaches the read side's PostgreSQL.
type dbFlags struct {
	url    string
	schema string
}

func (f *dbFlags) register(fs *flag.FlagSet, getenv func(string) string) {
	fs.StringVar(&f.url, "database-url", envDefault(getenv, "DATABASE_URL", ""), "PostgreSQL URL of the read models; PG* variables fill what it leaves out; TLS with sslmode=verify-full&sslrootcert=... (env DATABASE_URL)")
	fs.StringVar(&f.schema, "schema", envDefault(getenv, "MODLEDGER_SCHEMA", projection.SchemaDefault), "PostgreSQL schema of the read models (env MODLEDGER_SCHEMA)")
}

// statementTimeout bounds every statement the binary runs.
const statementTimeout = 30 * time.Second

// pool opens a pool named after the role, with a statement timeout.
func (f *dbFlags) pool(ctx context.Context, app string) (*pgxpool.Pool, error) {
	if err := projection.ValidateSchema(f.schema); err != nil {
		return nil, usageError{"--schema: " + err.Error()}
	}
	cfg, err := pgxpool.ParseConfig(f.url)
	if err != nil {
		return nil, usageError{fmt.Sprintf("--database-url: %v", err)}
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = app
	}
	if cfg.ConnConfig.RuntimeParams["statement_timeout"] == "" {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(statementTimeout.Milliseconds())
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := pool.Ping(pctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("connect to PostgreSQL at %s: %w", cfg.ConnConfig.Host, err)
	}
	return pool, nil
}
