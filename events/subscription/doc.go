// Package subscription delivers the ledger's case events to bots and
// services: a typed handler receives each decoded event, and the event is
// acknowledged when the handler returns nil and delivered again, after a
// backoff, when it returns an error.
//
//	sub, err := subscription.Subscribe(ctx, js, subscription.Config{
//		Durable: "modlog-poster",
//		Filter:  subscription.Filter{Events: []events.Name{events.NameCaseOpened, events.NameCaseClosed}},
//		Start:   subscription.StartBeginning(),
//	}, func(ctx context.Context, e events.Event) error {
//		return postToModLog(ctx, e)
//	})
//	...
//	err = sub.Stop(shutdownCtx)
//
// docs/subscribing.md describes the subjects, the consumer patterns and how
// to subscribe from other languages.
//
// # Consumers
//
// A subscription reads through a JetStream pull consumer with explicit
// acknowledgements. With [Config.Durable] set it is a durable consumer: the
// server keeps its position while no process runs, so a restarted service
// continues after the last event it acknowledged, and several processes
// that subscribe with the same name share its events. Without it the
// consumer is ephemeral: it lives while the subscription runs, which suits a
// tail of the ledger.
//
// [Config.Start] applies only when the consumer is created. Binding to an
// existing durable keeps its position; [Config.Reset] deletes and recreates
// it at Start. Binding does bring the durable's filter and delivery
// settings (ack wait, max deliver, max ack pending) in line with the Config.
//
// # Order and concurrency
//
// By default one handler runs at a time and the server has at most one
// event outstanding (MaxAckPending 1), so events arrive in stream order and
// an event that fails holds back the ones behind it until it succeeds, is
// given up, or the subscription stops. [Config.Concurrency] runs several
// handlers; events of one case still go to one of them, in the order they
// are delivered. With [Config.MaxAckPending] above 1 the server delivers
// past an event that waits for its retry, so later events, of the same case
// too, may overtake it.
//
// # Delivery guarantees
//
// Delivery is at least once. A handler error, a crash, an acknowledgement
// lost on the way, or a message lost on its way to the subscriber (it comes
// back after [Config.AckWait]) all lead to the event being delivered again,
// so handlers must be idempotent: [events.Event] carries EventID and Seq to
// recognise an event already applied.
//
// # Poison events
//
// An event that cannot be decoded (a schema version newer than this build,
// malformed data), or that the handler gives up on with [Permanent] or on
// its last allowed delivery ([Config.MaxDeliver]), is passed to
// [Config.OnPoison], logged, and terminated, so that the subscription moves
// on. The stream keeps it; replay it later by its sequence.
//
// # Claims
//
// The ledger's stream also holds claim messages under <prefix>.claim.>.
// Every subscription filter lies under <prefix>.case., so a subscriber
// never receives claims.
package subscription
