// Package pgcluster runs a private PostgreSQL cluster for `modledger dev`:
// it creates the cluster with the machine's initdb on first use, starts it
// with pg_ctl on a loopback port remembered in the data directory, and
// stops it. When the process runs as root (initdb and postgres refuse to),
// the cluster is owned by and run as the postgres user through runuser.
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

// Start creates the cluster in dir if it has none, and starts it. A cluster
// already running in dir (a previous run that did not stop) is reused.
func Start(ctx context.Context, dir string) (*Cluster, error) {
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
	opts := fmt.Sprintf("-c listen_addresses=127.0.0.1 -c port=%d -c unix_socket_directories=''", c.port)
	if err := c.run(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", data, "-l", filepath.Join(abs, "postgres.log"), "-o", opts); err != nil {
		return nil, fmt.Errorf("start PostgreSQL in %s (see %s): %w", data, filepath.Join(abs, "postgres.log"), err)
	}
	return c, nil
}

// URL is the cluster's connection URL (user postgres, trust auth on
// loopback).
func (c *Cluster) URL() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

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
