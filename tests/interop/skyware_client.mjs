// A Jetstream client from the npm registry (@skyware/jetstream), driven by jetflow's tests.
// Usage: node skyware_client.mjs ENDPOINT COLLECTION[,COLLECTION...] CURSOR
// Prints one JSON line per event it hands to its user, and one per connection open/close.
import { Jetstream } from "@skyware/jetstream";
import WebSocket from "ws";

const [endpoint, collections, cursor] = process.argv.slice(2);
const jetstream = new Jetstream({
  ws: WebSocket,
  endpoint,
  wantedCollections: collections.split(","),
  cursor: Number(cursor),
});
const emit = (line) => process.stdout.write(JSON.stringify(line) + "\n");

jetstream.on("commit", (event) =>
  emit({
    kind: "commit",
    time_us: event.time_us,
    did: event.did,
    rev: event.commit.rev,
    operation: event.commit.operation,
    collection: event.commit.collection,
    rkey: event.commit.rkey,
  }),
);
jetstream.on("identity", (event) => emit({ kind: "identity", time_us: event.time_us, did: event.did }));
jetstream.on("account", (event) => emit({ kind: "account", time_us: event.time_us, did: event.did }));
jetstream.on("open", () => emit({ kind: "open", cursor: jetstream.cursor ?? null }));
jetstream.on("close", () => emit({ kind: "close" }));
jetstream.on("error", (error) => process.stderr.write(`error: ${error}\n`));
process.on("SIGTERM", () => {
  jetstream.close();
  process.exit(0);
});
jetstream.start();
