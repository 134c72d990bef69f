package testenv

import (
	"os"
	"path/filepath"
	"testing"
)

// ReachableTempDir returns a temporary directory that other users (the
// postgres user that runs a private PostgreSQL cluster when tests run as
// root) can reach: it and its parents up to the system's temporary
// directory are made traversable. It is removed when t ends.
func ReachableTempDir(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	for d := dir; d != os.TempDir() && d != "/" && d != "."; d = filepath.Dir(d) {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
