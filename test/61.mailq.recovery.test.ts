// kill -9 of the mail queue server at random points while SMTP clients send
// mail and the delivery worker drains into a Maildir. After every kill:
// every message the server acknowledged (250) is in the queue or already
// delivered, and everything in the queue is whole (byte for byte what was
// sent). At the end: every acknowledged message is in the Maildir exactly
// once, every delivered file is whole, and no message whose removal was
// acknowledged was delivered again.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { open } from '../libstorage/index.js';
import { MailQueue } from '../examples/mailq/queue.js';
import { SmtpClient } from '../examples/mailq/smtp-client.js';
import { deliveredBody, eventually, killAllMailq, maildirMessages, startMailq, type MailqProcess } from './fixtures/mailq-env.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const ROUNDS = 4;
const CONNECTIONS = 8;
const seed = Number(process.env.MAILQ_SEED ?? Date.now() % 1_000_000);
let state = seed;
const random = () => ((state = (state * 1103515245 + 12345) >>> 0) / 2 ** 32);
const why = `(seed ${seed}: rerun with MAILQ_SEED=${seed})`;

let f: VsaFixture;
let dir: string;
let maildir: string;
let journal: string;
let server: MailqProcess | undefined;

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offpath-mailq-crash-'));
  maildir = join(dir, 'Maildir');
  journal = join(dir, 'journal');
  f = await openFixture(16384, { queues: 3 });
  await f.vsa.close();
});

test.after(async () => {
  await killAllMailq();
  await closeFixture(f);
  rmSync(dir, { recursive: true, force: true });
});

function serve(): Promise<MailqProcess> {
  return startMailq(f.path, [
    '--shards',
    '2',
    '--maildir',
    maildir,
    '--journal',
    journal,
    '--slots',
    '1024,512,64',
    '--extent-bytes',
    '8M',
    '--lease',
    '3s',
    '--retry-base',
    '50ms',
  ]);
}

/** The message data for a test id: its size class and content follow from the id. */
function bodyOf(id: string): string {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619) >>> 0;
  const pick = h % 100;
  const size = pick < 75 ? 150 + (h % 700) : pick < 95 ? 2000 + (h % 12_000) : 40_000 + (h % 30_000);
  let body = `X-Test-Id: ${id}\r\nSubject: ${id}\r\n\r\n`;
  for (let line = 0; body.length < size; line++) {
    // Some lines start with a dot: they travel dot-stuffed.
    body += `${line % 7 === 3 ? '.' : ''}${id} line ${line} ${'abcdefghij'.repeat(1 + ((h >>> line % 24) % 5))}\r\n`;
  }
  return body;
}

const idOf = (text: string) => /X-Test-Id: (\S+)/.exec(text)?.[1];

/** Strips the Received: header the server prepends to what the client sent. */
function sentPart(data: string): string {
  const at = data.indexOf('\r\nX-Test-Id: ');
  return at < 0 ? data : data.slice(at + 2);
}

const acked = new Set<string>();
const attempted = new Set<string>();

/** SMTP clients sending until their connection dies. */
async function load(port: number, round: number): Promise<void> {
  await Promise.all(
    Array.from({ length: CONNECTIONS }, async (_, connection) => {
      let client: SmtpClient;
      try {
        client = await SmtpClient.connect(port);
        if ((await client.command('EHLO load.test')).code !== 250) return;
      } catch {
        return;
      }
      for (let n = 0; n < 100_000; n++) {
        const id = `t${round}-${connection}-${n}`;
        attempted.add(id);
        try {
          const reply = await client.send('load@example.org', ['sink@example.net'], bodyOf(id), { pipelining: true });
          if (reply.code === 250) acked.add(id);
        } catch {
          return; // the server is gone
        }
      }
    }),
  );
}

/** Opens the VSA read-only (server down) and checks the queue: acked ⊆ queue ∪ Maildir, and all of it whole. */
async function checkQueue(round: number): Promise<number> {
  const vsa = await open(f.path);
  try {
    const queue = await MailQueue.open(vsa, { format: 'never', readOnly: true });
    const messages = await queue.peek();
    await queue.close();
    const inQueue = new Set<string>();
    for (const m of messages) {
      assert.ok(m.valid, `round ${round}: ${m.id} fails its checksum ${why}`);
      const data = Buffer.from(m.data).toString('latin1');
      const id = idOf(data);
      assert.ok(id && attempted.has(id), `round ${round}: queue holds a message nobody sent: ${data.slice(0, 80)} ${why}`);
      assert.is(sentPart(data), bodyOf(id!), `round ${round}: ${id} is not whole in the queue ${why}`);
      inQueue.add(id!);
    }
    const delivered = new Set([...maildirMessages(maildir).values()].map((file) => idOf(file)));
    for (const id of acked) assert.ok(inQueue.has(id) || delivered.has(id), `round ${round}: acknowledged ${id} is lost ${why}`);
    return messages.length;
  } finally {
    await vsa.close();
  }
}

test('SIGKILL at random points under SMTP load with delivery running: nothing acknowledged lost, nothing half-visible, nothing acked delivered twice', async () => {
  const queuedAfterKill: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    server = await serve();
    const port = server.port;
    const traffic = load(port, round);
    // Anywhere from right after start-up (recovery, first commits) to well into the load.
    const delay = round === 0 ? 20 + random() * 60 : 100 + random() * 600;
    await new Promise((resolve) => setTimeout(resolve, delay));
    await server.kill();
    await traffic;
    queuedAfterKill.push(await checkQueue(round));
  }
  assert.ok(acked.size > 0, `no message was acknowledged at all ${why}`);

  // A last run drains the queue into the Maildir.
  server = await serve();
  await eventually(
    () => {
      const delivered = new Set([...maildirMessages(maildir).values()].map((file) => idOf(file)));
      return [...acked].every((id) => delivered.has(id));
    },
    20_000,
    `delivery of all ${acked.size} acknowledged messages ${why}`,
  );
  // Let the retries of anything else queued finish too, then stop gracefully.
  let last = -1;
  await eventually(
    () => {
      const count = maildirMessages(maildir).size;
      const stable = count === last;
      last = count;
      return stable;
    },
    10_000,
    'the Maildir to settle',
  );
  assert.is(await server.stop(), 0, server.stderr());
  const leftover = await checkQueue(ROUNDS);

  // Every delivered file is whole and was sent; every acknowledged message is there exactly once.
  const seen = new Map<string, number>();
  for (const [name, file] of maildirMessages(maildir)) {
    const id = idOf(file);
    assert.ok(id && attempted.has(id), `${name} was never sent ${why}`);
    assert.is(deliveredBody(file), bodyOf(id!).replace(/\r\n/g, '\n'), `${name} (${id}) is not whole ${why}`);
    seen.set(id!, (seen.get(id!) ?? 0) + 1);
  }
  for (const id of acked) assert.is(seen.get(id), 1, `${id}: delivered ${seen.get(id) ?? 0} times ${why}`);
  for (const [id, count] of seen) assert.is(count, 1, `${id} is in the Maildir ${count} times ${why}`);

  // The delivery journal: once a removal was acknowledged (A), the message is never delivered (D) again.
  const removed = new Set<string>();
  let deliveries = 0;
  for (const line of readFileSync(journal, 'utf8').split('\n')) {
    const [event, queueId] = line.split(' ');
    if (!queueId) continue;
    if (event === 'D') {
      deliveries++;
      assert.not.ok(removed.has(queueId), `${queueId} delivered again after its removal was acknowledged ${why}`);
    }
    if (event === 'A') removed.add(queueId);
  }
  assert.ok(deliveries >= acked.size);
  console.log(
    `  seed ${seed}: ${attempted.size} sent, ${acked.size} acknowledged, ${seen.size} delivered, ` +
      `queued after each kill ${queuedAfterKill.join('/')}, ${leftover} left, ${deliveries - removed.size} deliveries not acknowledged before a kill`,
  );
});

test.run();
