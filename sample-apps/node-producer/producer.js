// node-producer: writes one plaintext JSON record per interval to a Kafka topic with kafkajs and
// prints each record it sent, one line each, for ./meshcrypt demo to show.
//
// Environment: KAFKA_BOOTSTRAP (required), TOPIC (default meshcrypt-demo), INTERVAL_MS (default 1000),
// COUNT (records to send, 0 = until SIGINT/SIGTERM; default 0).
'use strict';
const { Kafka, Partitioners, logLevel } = require('kafkajs');

function envInt(name, def) {
  const raw = process.env[name] ?? String(def);
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0) {
    console.error(`node-producer: ${name}=${JSON.stringify(raw)} is not a non-negative number`);
    process.exit(2);
  }
  return n;
}

const bootstrap = process.env.KAFKA_BOOTSTRAP;
if (!bootstrap) {
  console.error('node-producer: KAFKA_BOOTSTRAP is not set');
  process.exit(2);
}
const topic = process.env.TOPIC || 'meshcrypt-demo';
const intervalMs = envInt('INTERVAL_MS', 1000);
const count = envInt('COUNT', 0);

const kafka = new Kafka({ clientId: 'node-producer', brokers: bootstrap.split(','), logLevel: logLevel.WARN });
const producer = kafka.producer({ allowAutoTopicCreation: true, createPartitioner: Partitioners.DefaultPartitioner });
let stopping = false;

async function main() {
  await producer.connect();
  for (let seq = 1; !stopping && (count === 0 || seq <= count); seq++) {
    const key = `node-${seq}`;
    const value = JSON.stringify({ from: 'node', seq, email: `user${seq}@example.com` });
    // awaited: a line is printed only once the broker acknowledged the record
    await producer.send({ topic, acks: -1, messages: [{ key, value }] });
    console.log(`sent ${key} ${value}`);
    if (!stopping) await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  await producer.disconnect();
}

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    stopping = true;
    producer.disconnect().finally(() => process.exit(0));
  });
}

main().catch((err) => {
  console.error(`node-producer: ${err.stack || err}`);
  process.exit(1);
});
