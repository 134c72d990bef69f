package deploy_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// ledgerRoles are the roles `modledger serve --roles` runs.
var ledgerRoles = []string{"command", "projector", "scheduler", "query"}

// databaseRole is the PostgreSQL role (roles.sql) each ledger process
// connects as; "" for none.
var databaseRole = map[string]string{
	"migrate":   "owner",
	"command":   "",
	"projector": "writer",
	"scheduler": "reader",
	"query":     "reader",
}

// The Kubernetes node configuration parses with the shipped accounts and
// has the cluster's durability settings.
func TestKubernetesNATSConfigParses(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, f := range []string{"kubernetes/nats.conf", "nats/accounts.conf", "nats/permissions.conf"} {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	opts, err := server.ProcessConfigFile(filepath.Join(dir, "nats.conf")) // POD_NAME is set in TestMain
	if err != nil {
		t.Fatal(err)
	}
	if opts.ServerName != podName || !opts.JetStream || !opts.SyncAlways || len(opts.Routes) != 3 ||
		opts.Cluster.Name != "modledger" || len(opts.Nkeys) != len(natsRoles) || opts.MaxPayload != 1<<20 {
		t.Fatalf("server %q, jetstream %v, sync always %v, %d routes, cluster %q, %d users, max payload %d",
			opts.ServerName, opts.JetStream, opts.SyncAlways, len(opts.Routes), opts.Cluster.Name, len(opts.Nkeys), opts.MaxPayload)
	}
}

// Every MODLEDGER_ variable the deployment files set is one the binary
// reads, and every role they run is one it knows.
func TestDeployFilesUseKnownSettings(t *testing.T) {
	t.Parallel()
	known := map[string]bool{}
	sources, err := filepath.Glob("../cmd/modledger/*.go")
	if err != nil {
		t.Fatal(err)
	}
	envName := regexp.MustCompile(`MODLEDGER_[A-Z_]+[A-Z]`)
	for _, f := range sources {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range envName.FindAllString(string(b), -1) {
			known[m] = true
		}
	}
	if len(known) == 0 {
		t.Fatal("found no MODLEDGER_ variables in cmd/modledger")
	}
	// Variables of the deployment, not of the binary.
	deployOnly := map[string]bool{
		"MODLEDGER_PG_OWNER_PASSWORD": true, "MODLEDGER_PG_WRITER_PASSWORD": true, "MODLEDGER_PG_READER_PASSWORD": true,
		// Not a variable: the key stream's name (the ledger stream's name
		// and "_KEYS", see package events/shred) in permission subjects.
		"MODLEDGER_KEYS": true,
	}
	rolesArg := regexp.MustCompile(`--roles[", ]+([a-z,%]+)`)
	files := 0
	err = filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(path, ".go") || strings.HasPrefix(path, "dev/") {
			return err
		}
		files++
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, m := range envName.FindAllString(string(b), -1) {
			if !known[m] && !deployOnly[m] {
				t.Errorf("%s: %s is not a setting of cmd/modledger", path, m)
			}
		}
		for _, m := range rolesArg.FindAllStringSubmatch(string(b), -1) {
			for _, r := range strings.Split(m[1], ",") {
				if r != "%i" && !slices.Contains(ledgerRoles, r) {
					t.Errorf("%s: --roles %s: unknown role %q", path, m[1], r)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 10 {
		t.Fatalf("checked only %d files", files)
	}
}

// The compose file and the Kubernetes manifests are YAML, and each ledger
// process in them runs one role with its own NATS key and the database role
// roles.sql gives it. Needs python3 with PyYAML to read YAML (the module
// has no YAML library); skipped without them.
func TestDeployManifests(t *testing.T) {
	t.Parallel()
	load := yamlLoader(t)

	t.Run("compose", func(t *testing.T) {
		var docs []struct {
			Services map[string]struct {
				Command     []string          `json:"command"`
				Environment map[string]string `json:"environment"`
				Secrets     []struct {
					Source string `json:"source"`
				} `json:"secrets"`
			} `json:"services"`
			Secrets map[string]struct {
				File string `json:"file"`
			} `json:"secrets"`
		}
		load("compose/docker-compose.yml", &docs)
		if len(docs) != 1 {
			t.Fatalf("%d documents", len(docs))
		}
		svcs := docs[0].Services
		for _, name := range []string{"nats-1", "nats-2", "nats-3", "postgres", "migrate"} {
			if _, ok := svcs[name]; !ok {
				t.Errorf("no service %s", name)
			}
		}
		for name, role := range databaseRole {
			s, ok := svcs[name]
			if !ok {
				t.Errorf("no service %s", name)
				continue
			}
			want := []string{"serve", "--roles", name}
			if name == "migrate" {
				want = []string{"migrate"}
			} else {
				if s.Environment["MODLEDGER_NATS_NKEY"] == "" || len(s.Secrets) != 1 || s.Secrets[0].Source != name+"_nkey" {
					t.Errorf("%s: wants its own nkey secret %s_nkey in MODLEDGER_NATS_NKEY, has %+v", name, name, s.Secrets)
				}
				if s.Environment["MODLEDGER_REPLICAS"] != "3" || s.Environment["MODLEDGER_NATS_URL"] == "" {
					t.Errorf("%s: replicas %q, NATS URL %q", name, s.Environment["MODLEDGER_REPLICAS"], s.Environment["MODLEDGER_NATS_URL"])
				}
			}
			if !slices.Equal(s.Command, want) {
				t.Errorf("%s: command %q, want %q", name, s.Command, want)
			}
			checkDatabaseURL(t, name, role, s.Environment["DATABASE_URL"])
		}
	})

	t.Run("kubernetes", func(t *testing.T) {
		type container struct {
			Args []string `json:"args"`
			Env  []struct {
				Name      string `json:"name"`
				Value     string `json:"value"`
				ValueFrom *struct {
					SecretKeyRef *struct {
						Key string `json:"key"`
					} `json:"secretKeyRef"`
				} `json:"valueFrom"`
			} `json:"env"`
			SecurityContext struct {
				ReadOnlyRootFilesystem   bool  `json:"readOnlyRootFilesystem"`
				AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
			} `json:"securityContext"`
		}
		var docs []struct {
			Kind     string `json:"kind"`
			Metadata struct {
				Name string `json:"name"`
			} `json:"metadata"`
			Spec struct {
				Template struct {
					Spec struct {
						Containers []container `json:"containers"`
						Volumes    []struct {
							Secret *struct {
								Items []struct {
									Key string `json:"key"`
								} `json:"items"`
							} `json:"secret"`
						} `json:"volumes"`
					} `json:"spec"`
				} `json:"template"`
			} `json:"spec"`
		}
		load("kubernetes/modledger.yaml", &docs)
		seen := map[string]bool{}
		for _, d := range docs {
			if d.Kind != "Deployment" && d.Kind != "Job" {
				continue
			}
			name := strings.TrimPrefix(d.Metadata.Name, "modledger-")
			seen[name] = true
			role, ok := databaseRole[name]
			if !ok || len(d.Spec.Template.Spec.Containers) != 1 {
				t.Errorf("%s %s: unknown role or not one container", d.Kind, d.Metadata.Name)
				continue
			}
			c := d.Spec.Template.Spec.Containers[0]
			want := []string{"serve", "--roles", name}
			if name == "migrate" {
				want = []string{"migrate"}
			}
			if !slices.Equal(c.Args, want) {
				t.Errorf("%s: args %q, want %q", d.Metadata.Name, c.Args, want)
			}
			if !c.SecurityContext.ReadOnlyRootFilesystem || c.SecurityContext.AllowPrivilegeEscalation == nil || *c.SecurityContext.AllowPrivilegeEscalation {
				t.Errorf("%s: wants a read-only root and no privilege escalation", d.Metadata.Name)
			}
			dbKey, nkey := "", ""
			for _, e := range c.Env {
				if e.Name == "DATABASE_URL" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					dbKey = e.ValueFrom.SecretKeyRef.Key
				}
				if e.Name == "MODLEDGER_NATS_NKEY" {
					nkey = e.Value
				}
			}
			if wantKey := map[string]string{"": "", "owner": "owner-url", "writer": "writer-url", "reader": "reader-url"}[role]; dbKey != wantKey {
				t.Errorf("%s: DATABASE_URL from secret key %q, want %q", d.Metadata.Name, dbKey, wantKey)
			}
			if name != "migrate" {
				var items []string
				for _, v := range d.Spec.Template.Spec.Volumes {
					if v.Secret != nil {
						for _, it := range v.Secret.Items {
							items = append(items, it.Key)
						}
					}
				}
				if nkey == "" || !slices.Equal(items, []string{name + ".nk"}) {
					t.Errorf("%s: wants only its own nkey %s.nk in MODLEDGER_NATS_NKEY, mounts %q", d.Metadata.Name, name, items)
				}
			}
		}
		for name := range databaseRole {
			if !seen[name] {
				t.Errorf("no Deployment or Job for %s", name)
			}
		}
		for _, f := range []string{"kubernetes/nats.yaml", "kubernetes/namespace.yaml", "kubernetes/kustomization.yaml",
			"kubernetes/secrets.example.yaml"} {
			var any []map[string]any
			load(f, &any)
		}
	})
}

// checkDatabaseURL checks that a process connects as its roles.sql role.
func checkDatabaseURL(t *testing.T, name, role, url string) {
	t.Helper()
	if role == "" {
		if url != "" {
			t.Errorf("%s: needs no database, has DATABASE_URL %s", name, url)
		}
		return
	}
	if !strings.HasPrefix(url, "postgres://modledger_"+role+":") {
		t.Errorf("%s: DATABASE_URL %q, want the %s role modledger_%s", name, url, role, role)
	}
}

// yamlLoader returns a function that decodes every document of a YAML file
// into v (a slice) through python3's PyYAML, or skips the test when they
// are not installed.
func yamlLoader(t *testing.T) func(path string, v any) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import yaml").Run()
	}
	if err != nil {
		t.Skip("python3 with PyYAML is not installed: YAML files not checked")
	}
	return func(path string, v any) {
		t.Helper()
		out, err := exec.Command(py, "-c",
			"import sys, json, yaml; json.dump([d for d in yaml.safe_load_all(open(sys.argv[1])) if d is not None], sys.stdout)",
			path).CombinedOutput()
		if err != nil {
			t.Fatalf("%s is not valid YAML: %v\n%s", path, err, out)
		}
		if err := json.Unmarshal(out, v); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
}
