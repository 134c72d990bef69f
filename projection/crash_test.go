package projection

import (
	"math/rand/v2"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/modledger/modledger/aggregate"
)

// projectorProcess is a projector running in a child process.
type projectorProcess struct {
	cmd  *exec.Cmd
	done chan error
}

func (b *ledgerBundle) spawnProjector(t *testing.T) *projectorProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), envChildNATS+"="+b.env.URL, envChildDSN+"="+b.dsn)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start projector process: %v", err)
	}
	p := &projectorProcess{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait() }()
	return p
}

func (p *projectorProcess) kill(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

func TestProjectionSurvivesProjectorKills(t *testing.T) {
	t.Parallel()
	b := setupLedger(t)
	// Activate first, so the child processes need only project.
	if _, err := b.store.Activate(t.Context(), NewCasesProjection(nil)); err != nil {
		t.Fatal(err)
	}
	proc := b.spawnProjector(t)
	w := newWorkload(b.client, b.clock, 20)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		w.run(t.Context(), t, 5000, 16, 2)
	}()
	// Kill the projector with SIGKILL at 20 random points of the workload
	// and start it again each time.
	r := rand.New(rand.NewPCG(7, 7))
	kills := 0
	for ; kills < 20; kills++ {
		time.Sleep(time.Duration(50+r.IntN(400)) * time.Millisecond)
		proc.kill(t)
		proc = b.spawnProjector(t)
	}
	wg.Wait()
	b.waitCaughtUp(t, 90*time.Second)
	proc.kill(t)
	t.Logf("workload: %d commands; projector killed %d times", w.sent, kills)
	verifyReadModel(t, b.pool, SchemaDefault, aggregate.DefaultRegistry(), streamEvents(t, b.js))
}
