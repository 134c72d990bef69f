package deploy_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/nats-io/nkeys"
	"go.uber.org/goleak"
)

// natsRoles are the roles of accounts.conf, by the suffix of their
// NATS_NKEY_<ROLE> environment variable.
var natsRoles = []string{"COMMAND", "PROJECTOR", "SCHEDULER", "QUERY", "SUBSCRIBER", "ADMIN", "SYS"}

// roleKeys holds a key pair per role, made once for the test binary; their
// public keys are in the environment, where the shipped configuration reads
// them.
var roleKeys = map[string]nkeys.KeyPair{}

// podName is the POD_NAME the Kubernetes node configuration reads.
const podName = "nats-0"

func TestMain(m *testing.M) {
	for _, role := range natsRoles {
		kp, err := nkeys.CreateUser()
		if err != nil {
			fmt.Fprintln(os.Stderr, "create nkey:", err)
			os.Exit(1)
		}
		pub, err := kp.PublicKey()
		if err != nil {
			fmt.Fprintln(os.Stderr, "public nkey:", err)
			os.Exit(1)
		}
		roleKeys[role] = kp
		os.Setenv("NATS_NKEY_"+role, pub)
	}
	os.Setenv("POD_NAME", podName)
	goleak.VerifyTestMain(m)
}
