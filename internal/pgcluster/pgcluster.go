// Package pgcluster runs a private PostgreSQL cluster for `modledger dev`:
// it creates the cluster with the machine's initdb on first use, starts it
// with pg_ctl on a loopback port remembered in the data directory, and
// stops it. When the process runs as root (initdb and postgres refuse to),
// the cluster is owned by and run as the postgres user through runuser.
//
// [StartWith] starts a cluster with TLS ([TLSOpts]): a server certificate,
// optionally a CA for client certificates, and pg_hba.conf lines of the
// caller's (by default only TLS connections are accepted), so tests can
// prove how the ledger connects to a server that requires TLS.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrNoPostgres is returned when initdb or pg_ctl cannot be found.
var ErrNoPostgres = errors.New("PostgreSQL server programs (initdb, pg_ctl) not found: install them (Debian/Ubuntu: apt-get install postgresql) or set DATABASE_URL")

// Cluster is a running private cluster.
type Cluster struct {
	dir, bin string
	port     int
	asUser   string // run the programs as this user when not empty
}

// StartOpts are a cluster's optional settings; nil means the defaults.
type StartOpts struct {
	// TLS, when set, runs the server with TLS (ssl=on) and the host-based
	// authentication of TLSOpts.HBA. Defaults to none: TLS off, every
	// loopback connection trusted.
	TLS *TLSOpts
}

// TLSOpts are the TLS settings of a cluster. The files are copied into the
// cluster's directory (readable by the cluster's user only), so they may
// live where that user cannot read them.
type TLSOpts struct {
	// CertFile is the server's certificate (PEM), ssl_cert_file. Required.
	CertFile string
	// KeyFile is the server certificate's private key (PEM, unencrypted),
	// ssl_key_file. Required.
	KeyFile string
	// CAFile holds the CAs whose client certificates the server accepts,
	// ssl_ca_file; the hba methods cert and clientcert= need it. Defaults
	// to none: clients are not asked for certificates.
	CAFile string
	// HBA are the lines of pg_hba.conf while the cluster runs with these
	// options (the cluster's own pg_hba.conf is left as initdb wrote it).
	// Defaults to HBATLSOnly.
	HBA []string
}

// HBATLSOnly is the default host-based authentication of a TLS cluster:
// TLS connections from loopback are trusted, connections without TLS are
// rejected.
var HBATLSOnly = []string{
	"hostssl all all 127.0.0.1/32 trust",
	"hostnossl all all 0.0.0.0/0 reject",
}

// Start creates the cluster in dir if it has none, and starts it. A cluster
// already running in dir (a previous run that did not stop) is reused.
func Start(ctx context.Context, dir string) (*Cluster, error) {
	return StartWith(ctx, dir, nil)
}

// StartWith is Start with options; opts nil is Start. A cluster already
// running in dir is reused as it runs: stop it first for opts to apply.
func StartWith(ctx context.Context, dir string, opts *StartOpts) (*Cluster, error) {
	if opts == nil {
		opts = &StartOpts{}
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	bin, err := findBin()
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: abs, bin: bin}
	if os.Geteuid() == 0 {
		if _, err := user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, PostgreSQL needs the postgres user to run a cluster: %w", err)
		}
		c.asUser = "postgres"
	}
	if c.asUser != "" {
		probe := exec.CommandContext(ctx, "runuser", "-u", c.asUser, "--", "/bin/sh", "-c", `cd "$1"`, "sh", filepath.Dir(abs))
		if out, err := probe.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("the %s user, which runs the private cluster, cannot reach %s (%s): open its parent directories (chmod o+x) or set DATABASE_URL",
				c.asUser, abs, strings.TrimSpace(string(out)))
		}
	}
	data := filepath.Join(abs, "data")
	if _, err := os.Stat(filepath.Join(data, "PG_VERSION")); errors.Is(err, os.ErrNotExist) {
		if err := c.initdb(ctx, data); err != nil {
			return nil, err
		}
	}
	if c.port, err = c.readPort(); err != nil {
		return nil, err
	}
	if c.running(ctx) {
		return c, nil
	}
	serverOpts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=''", c.port)
	if opts.TLS != nil {
		tlsOpts, err := c.setUpTLS(opts.TLS)
		if err != nil {
			return nil, err
		}
		serverOpts += tlsOpts
	}
	if err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(abs, "postgres.log"), "-o", serverOpts); err != nil {
		return nil, fmt.Errorf("start PostgreSQL in %s (see %s): %w", data, filepath.Join(abs, "postgres.log"), err)
	}
	return c, nil
}

// URL is the cluster's connection URL (user postgres, trust auth on
// loopback). A cluster started with TLS refuses it unless its HBA lines
// accept connections without TLS: build a URL with Port instead.
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

// Port is the cluster's port on 127.0.0.1.
func (c *Cluster) Port() int { return c.port }

// Stop stops the cluster (fast shutdown: sessions are ended, data is kept).
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.run(ctx, "pg_ctl", "stop", "-w", "-m", "fast", "-D", filepath.Join(c.dir, "data")); err != nil {
		return fmt.Errorf("stop PostgreSQL: %w", err)
	}
	return nil
}

// Kill stops the cluster at once, as a crash would (immediate shutdown:
// no checkpoint; the next start recovers from the write-ahead log).
func (c *Cluster) Kill(ctx context.Context) error {
	if err := c.run(ctx, "pg_ctl", "stop", "-w", "-m", "immediate", "-D", filepath.Join(c.dir, "data")); err != nil {
		return fmt.Errorf("kill PostgreSQL: %w", err)
	}
	return nil
}

func (c *Cluster) initdb(ctx context.Context, data string) error {
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	if c.asUser != "" {
		u, err := user.Lookup(c.asUser)
		if err != nil {
			return err
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, d := range []string{c.dir, data} {
			if err := os.Chown(d, uid, gid); err != nil {
				return fmt.Errorf("give %s to the postgres user: %w", d, err)
			}
		}
	}
	if err := c.run(ctx, "initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-instructions"); err != nil {
		return fmt.Errorf("create a PostgreSQL cluster in %s: %w", data, err)
	}
	return nil
}

// setUpTLS copies the TLS files and writes the hba file into the cluster's
// tls directory, owned by the cluster's user, and returns the server
// options that use them.
func (c *Cluster) setUpTLS(o *TLSOpts) (string, error) {
	if o.CertFile == "" || o.KeyFile == "" {
		return "", errors.New("pgcluster: TLS needs a certificate and a key file")
	}
	hba := o.HBA
	if len(hba) == 0 {
		hba = HBATLSOnly
	}
	dir := filepath.Join(c.dir, "tls")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	files := map[string][]byte{"pg_hba.conf": []byte(strings.Join(hba, "\n") + "\n")}
	for name, src := range map[string]string{"server.crt": o.CertFile, "server.key": o.KeyFile, "ca.crt": o.CAFile} {
		if src == "" {
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return "", fmt.Errorf("pgcluster: TLS: %w", err)
		}
		files[name] = b
	}
	uid, gid := -1, -1
	if c.asUser != "" {
		u, err := user.Lookup(c.asUser)
		if err != nil {
			return "", err
		}
		uid, _ = strconv.Atoi(u.Uid)
		gid, _ = strconv.Atoi(u.Gid)
	}
	for name, b := range files {
		path := filepath.Join(dir, name)
		// The server refuses a key file others may read.
		if err := os.WriteFile(path, b, 0o600); err != nil {
			return "", err
		}
		if err := os.Chmod(path, 0o600); err != nil {
			return "", err
		}
		if err := os.Chown(path, uid, gid); err != nil {
			return "", fmt.Errorf("give %s to the %s user: %w", path, c.asUser, err)
		}
	}
	if err := os.Chown(dir, uid, gid); err != nil {
		return "", fmt.Errorf("give %s to the %s user: %w", dir, c.asUser, err)
	}
	// pg_ctl passes the options through a shell: quote the paths.
	if strings.ContainsAny(dir, "'\\") {
		return "", fmt.Errorf("pgcluster: TLS: the cluster directory %s contains a quote or a backslash", dir)
	}
	q := func(name string) string { return "'" + filepath.Join(dir, name) + "'" }
	opts := fmt.Sprintf(" -c ssl=on -c ssl_cert_file=%s -c ssl_key_file=%s -c hba_file=%s", q("server.crt"), q("server.key"), q("pg_hba.conf"))
	if o.CAFile != "" {
		opts += " -c ssl_ca_file=" + q("ca.crt")
	}
	return opts, nil
}

// readPort returns the port remembered in the cluster directory, picking
// and remembering a free one the first time.
func (c *Cluster) readPort() (int, error) {
	f := filepath.Join(c.dir, "port")
	if b, err := os.ReadFile(f); err == nil {
		if p, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && p > 0 {
			return p, nil
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	p := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	if err := os.WriteFile(f, []byte(strconv.Itoa(p)+"\n"), 0o644); err != nil {
		return 0, err
	}
	return p, nil
}

// running reports whether a server already runs in the cluster.
func (c *Cluster) running(ctx context.Context) bool {
	return c.run(ctx, "pg_ctl", "status", "-D", filepath.Join(c.dir, "data")) == nil
}

// run runs one of the server programs, as the cluster's user.
func (c *Cluster) run(ctx context.Context, prog string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.asUser != "" {
		cmd = exec.CommandContext(ctx, "runuser", append([]string{"-u", c.asUser, "--", path}, args...)...)
	} else {
		cmd = exec.CommandContext(ctx, path, args...)
	}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w: %s", prog, strings.Join(args, " "), err, strings.TrimSpace(out.String()))
	}
	return nil
}

// findBin returns the directory of initdb and pg_ctl: PATH first, then the
// newest /usr/lib/postgresql/<version>/bin.
func findBin() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		if _, err := exec.LookPath("pg_ctl"); err == nil {
			if r, err := filepath.EvalSymlinks(p); err == nil {
				return filepath.Dir(r), nil
			}
			return filepath.Dir(p), nil
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[i])))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(dirs[j])))
		return vi > vj
	})
	for _, d := range dirs {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", ErrNoPostgres
}
