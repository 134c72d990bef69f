// A moderation bot's loop with modledger, from Node.js, over the wire
// contract alone (docs/commands.md, docs/queries.md, docs/subscribing.md):
//
//  1. open a TEMPBAN that expires in EXPIRES_IN_MS (default 2000 ms);
//  2. follow the case's events with a JetStream ordered consumer;
//  3. when the ledger says "expired", lift the ban (here: log it) and send
//     mark_expiry_processed;
//  4. ask the read side whether the member is still banned, reading our
//     own write with min_seq.
//
// Run: NATS_URL=nats://127.0.0.1:4222 node bot.mjs
// It prints one JSON line per step and exits 0 when the member is free.
import { connect } from "@nats-io/transport-node";
import { jetstream } from "@nats-io/jetstream";
import { randomUUID } from "node:crypto";

const natsUrl = process.env.NATS_URL ?? "nats://127.0.0.1:4222";
const prefix = process.env.MODLEDGER_PREFIX ?? "modledger";
const guild = process.env.GUILD_ID ?? "1128457362048573440";
const user = process.env.USER_ID ?? "934871256019738654";
const moderator = process.env.MODERATOR_ID ?? "272937604339466240";
const botId = process.env.BOT_ID ?? "1097204518803394560";
const expiresIn = Number(process.env.EXPIRES_IN_MS ?? 2000);

const log = (step, data) => console.log(JSON.stringify({ step, ...data }));

// request sends a command or query and returns the JSON reply, throwing the
// ledger's typed error ({code, message, field}) when it answers one.
async function request(nc, subject, body) {
  for (let attempt = 1; ; attempt++) {
    try {
      const msg = await nc.request(subject, JSON.stringify(body), { timeout: 15000 });
      const reply = msg.json();
      if (msg.headers?.get("Nats-Service-Error-Code")) {
        const err = new Error(`${subject}: ${reply.error.code}: ${reply.error.message}`);
        err.code = reply.error.code;
        err.field = reply.error.field;
        throw err;
      }
      return reply;
    } catch (err) {
      // unavailable and no responders are safe to retry with the same
      // command_id; everything else is the answer.
      const retry = err.code === "unavailable" || err.code === "503" || err.name === "NoRespondersError";
      if (!retry || attempt >= 5) throw err;
      await new Promise((r) => setTimeout(r, 200 * attempt));
    }
  }
}

const nc = await connect({ servers: natsUrl, name: "modledger node bot example" });
try {
  // 1. Open the tempban.
  const opened = await request(nc, `${prefix}.cmd.${guild}.open`, {
    command_id: randomUUID(),
    type: "TEMPBAN",
    user_id: user,
    moderator_id: moderator,
    reason: "spam (node example)",
    expires_at: new Date(Date.now() + expiresIn).toISOString(),
  });
  const number = opened.case.case_number;
  log("opened", { case_number: number, seq: opened.seq, expires_at: opened.case.expires_at });

  // 2. Follow the case's events from the start of the case.
  const js = jetstream(nc);
  const consumer = await js.consumers.get("MODLEDGER", {
    filter_subjects: [`${prefix}.case.${guild}.${number}.>`],
  });
  const messages = await consumer.consume();
  let processedSeq = 0;
  for await (const m of messages) {
    const ev = m.json();
    log("event", { event: ev.event, seq: m.seq, case_number: ev.case_number });
    if (ev.event === "expired") {
      // 3. Lift the ban on the platform (a real bot calls Discord here),
      //    then tell the ledger.
      log("unban", { user_id: user });
      const done = await request(nc, `${prefix}.cmd.${guild}.mark_expiry_processed`, {
        command_id: randomUUID(),
        actor_id: botId,
        case_number: number,
      });
      processedSeq = done.seq;
      log("marked_processed", { appended: done.appended, seq: done.seq });
    }
    if (ev.event === "expiry_processed") break;
  }
  await messages.close();

  // 4. The restriction query, reading our own write.
  const r = await request(nc, `${prefix}.query.${guild}.user_restriction`, {
    min_seq: processedSeq,
    user_id: user,
    family: "ban",
  });
  log("restriction", { restricted: r.restricted });
  if (r.restricted) {
    console.error("the member is still banned");
    process.exitCode = 1;
  }
} finally {
  await nc.close();
}
