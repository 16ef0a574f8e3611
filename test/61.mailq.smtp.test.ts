// The mail queue server speaks SMTP: conversations over loopback against the
// real server process, replies checked byte for byte; what was queued is
// delivered to the Maildir exactly (dot-unstuffed, CRLF → LF). swaks and
// Postfix's smtp-source, unmodified, when installed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SmtpClient } from '../examples/mailq/smtp-client.js';
import { HOSTNAME, deliveredBody, eventually, killAllMailq, maildirMessages, startMailq, type MailqProcess } from './fixtures/mailq-env.js';
import { closeFixture, openFixture, type VsaFixture } from './helpers/vsa.js';

const MAX = 300 * 1024;
let f: VsaFixture;
let server: MailqProcess;
let dir: string;
let maildir: string;
let queued = 0;
const nextId = () => `0.1.${++queued}`;
const which = (tool: string) => ['/usr/sbin', '/usr/bin', '/usr/local/bin'].map((d) => join(d, tool)).find((p) => existsSync(p));

test.before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'offpath-mailq-smtp-'));
  maildir = join(dir, 'Maildir');
  f = await openFixture(8192, { queues: 2 });
  // The server opens the VSA itself.
  await f.vsa.close();
  server = await startMailq(f.path, ['--shards', '1', '--maildir', maildir, '--slots', '256,128,32', '--extent-bytes', '8M', '--max-message-size', String(MAX)]);
});

test.after(async () => {
  await server?.stop();
  await killAllMailq();
  await closeFixture(f);
  rmSync(dir, { recursive: true, force: true });
});

async function client(): Promise<SmtpClient> {
  return SmtpClient.connect(server.port);
}

/** Waits for a delivered message whose body contains `marker`; returns its body (after the added header lines). */
async function delivered(marker: string): Promise<string> {
  let found = '';
  await eventually(
    () => {
      for (const file of maildirMessages(maildir).values()) if (file.includes(marker)) found = file;
      return found !== '';
    },
    10_000,
    `delivery of ${marker}`,
  );
  return found;
}

test('greeting, EHLO (with its extensions), HELO, and their syntax errors', async () => {
  const c = await client();
  assert.is(c.greeting.raw, `220 ${HOSTNAME} ESMTP offpath-mailq\r\n`);
  c.write('EHLO client.test\r\n');
  assert.is(await c.replies(1), `250-${HOSTNAME}\r\n250-PIPELINING\r\n250-SIZE ${MAX}\r\n250 8BITMIME\r\n`);
  c.write('HELO client.test\r\n');
  assert.is(await c.replies(1), `250 ${HOSTNAME}\r\n`);
  c.write('EHLO\r\nHELO \r\nehlo two words\r\n');
  assert.is(await c.replies(3), '501 Syntax: EHLO hostname\r\n501 Syntax: HELO hostname\r\n501 Syntax: EHLO hostname\r\n');
  c.write('QUIT\r\n');
  assert.is(await c.replies(1), `221 ${HOSTNAME} closing connection\r\n`);
  await eventually(() => c.closed, 5000, 'close after QUIT');
});

test('a transaction with dot-stuffing: queued only when durable, delivered unstuffed', async () => {
  const c = await client();
  c.write('EHLO client.test\r\n');
  await c.replies(1);
  c.write('MAIL FROM:<alice@example.org>\r\n');
  assert.is(await c.replies(1), '250 OK\r\n');
  c.write('RCPT TO:<bob@example.net>\r\n');
  assert.is(await c.replies(1), '250 OK\r\n');
  c.write('DATA\r\n');
  assert.is(await c.replies(1), '354 End data with <CR><LF>.<CR><LF>\r\n');
  // On the wire, already dot-stuffed.
  c.write('Subject: dots\r\nX-Marker: m-dots\r\n\r\n..leading dot\r\n...two\r\n..\r\na.b\r\n.\r\n');
  assert.is(await c.replies(1), `250 OK: queued as ${nextId()}\r\n`);
  c.write('QUIT\r\n');
  assert.is(await c.replies(1), `221 ${HOSTNAME} closing connection\r\n`);
  const file = await delivered('m-dots');
  assert.ok(file.startsWith('Return-Path: <alice@example.org>\nDelivered-To: bob@example.net\nReceived: from client.test (127.0.0.1)\n\tby mx.test.invalid (offpath-mailq) with ESMTP;\n'), file);
  assert.is(deliveredBody(file), 'Subject: dots\nX-Marker: m-dots\n\n.leading dot\n..two\n.\na.b\n');
});

test('commands out of sequence, unknown and unimplemented commands, bad syntax', async () => {
  const c = await client();
  c.write('MAIL FROM:<a@example.org>\r\n');
  assert.is(await c.replies(1), '503 Error: send HELO/EHLO first\r\n');
  c.write('EHLO client.test\r\n');
  await c.replies(1);
  c.write('RCPT TO:<b@example.net>\r\nDATA\r\n');
  assert.is(await c.replies(2), '503 Error: need MAIL command\r\n503 Error: need MAIL command\r\n');
  c.write('MAIL FROM:<a@example.org>\r\nMAIL FROM:<a@example.org>\r\nDATA\r\n');
  assert.is(await c.replies(3), '250 OK\r\n503 Error: nested MAIL command\r\n503 Error: need RCPT command\r\n');
  c.write('RCPT TO:<>\r\nRCPT bob\r\nRCPT TO:<b@example.net> NOTIFY=NEVER\r\n');
  assert.is(await c.replies(3), '501 Syntax: RCPT TO:<address>\r\n501 Syntax: RCPT TO:<address>\r\n555 Unsupported option: NOTIFY=NEVER\r\n');
  c.write('RSET\r\nRCPT TO:<b@example.net>\r\n');
  assert.is(await c.replies(2), '250 OK\r\n503 Error: need MAIL command\r\n');
  c.write('MAIL FROM:<a@example.org> FOO=1\r\nMAIL TO:<a@example.org>\r\nMAIL FROM:<a@example.org\r\n');
  assert.is(await c.replies(3), '555 Unsupported option: FOO=1\r\n501 Syntax: MAIL FROM:<address>\r\n501 Syntax: MAIL FROM:<address>\r\n');
  c.write('NOOP\r\nnoop\r\nVRFY bob\r\nEXPN list\r\nSTARTTLS\r\nRSET now\r\n\r\nDATA please\r\n');
  assert.is(
    await c.replies(8),
    '250 OK\r\n250 OK\r\n502 Error: command not implemented\r\n502 Error: command not implemented\r\n' +
      '500 Error: command not recognized\r\n501 Syntax: RSET\r\n500 Error: bad syntax\r\n501 Syntax: DATA\r\n',
  );
  c.write(`NOOP ${'x'.repeat(5000)}\r\nNOOP\r\n`);
  assert.is(await c.replies(2), '500 Error: line too long\r\n250 OK\r\n');
  c.write('QUIT\r\n');
  assert.is(await c.replies(1), `221 ${HOSTNAME} closing connection\r\n`);
});

test('PIPELINING: a whole session in a few writes, replies in order', async () => {
  const c = await client();
  c.write('EHLO pipe.test\r\nMAIL FROM:<p@example.org>\r\nRCPT TO:<q@example.net>\r\nRCPT TO:<r@example.net>\r\nDATA\r\n');
  assert.is(
    await c.replies(5),
    `250-${HOSTNAME}\r\n250-PIPELINING\r\n250-SIZE ${MAX}\r\n250 8BITMIME\r\n250 OK\r\n250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n`,
  );
  // Message content, then the next transaction, in one write.
  c.write('X-Marker: m-pipe-1\r\n\r\none\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<s@example.net>\r\nDATA\r\n');
  assert.is(await c.replies(4), `250 OK: queued as ${nextId()}\r\n250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n`);
  c.write('X-Marker: m-pipe-2\r\n\r\ntwo\r\n.\r\nRSET\r\nNOOP\r\nQUIT\r\n');
  assert.is(await c.replies(4), `250 OK: queued as ${nextId()}\r\n250 OK\r\n250 OK\r\n221 ${HOSTNAME} closing connection\r\n`);
  const first = await delivered('m-pipe-1');
  assert.ok(first.startsWith('Return-Path: <p@example.org>\nDelivered-To: q@example.net\nDelivered-To: r@example.net\n'), first);
  const second = await delivered('m-pipe-2');
  assert.ok(second.startsWith('Return-Path: <>\nDelivered-To: s@example.net\n'), second);
  assert.is(deliveredBody(second), 'X-Marker: m-pipe-2\n\ntwo\n');
});

test('SIZE: refused at MAIL when declared too big, at the end of DATA when it is; the session goes on', async () => {
  const c = await client();
  c.write('EHLO size.test\r\n');
  await c.replies(1);
  c.write(`MAIL FROM:<big@example.org> SIZE=${MAX + 1}\r\n`);
  assert.is(await c.replies(1), '552 Message size exceeds fixed maximum message size\r\n');
  c.write('MAIL FROM:<big@example.org> SIZE=100 BODY=8BITMIME\r\nRCPT TO:<x@example.net>\r\nDATA\r\n');
  assert.is(await c.replies(3), '250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n');
  const line = `${'y'.repeat(998)}\r\n`;
  c.write(line.repeat(Math.ceil((MAX + 1000) / line.length)) + '.\r\n');
  assert.is(await c.replies(1), '552 Message size exceeds fixed maximum message size\r\n');
  c.write('NOOP\r\nQUIT\r\n');
  assert.is(await c.replies(2), `250 OK\r\n221 ${HOSTNAME} closing connection\r\n`);
});

test('end of data is CRLF.CRLF only: a bare-LF dot line is data; every size class and an extent', async () => {
  const c = await client();
  c.write('EHLO lf.test\r\n');
  await c.replies(1);
  const reply = await c.send('a@example.org', ['b@example.net'], Buffer.from('X-Marker: m-lf\r\n\r\nx\n.\ny\r\n', 'latin1'), { pipelining: true });
  assert.is(reply.raw, `250 OK: queued as ${nextId()}\r\n`);
  assert.is(deliveredBody(await delivered('m-lf')), 'X-Marker: m-lf\n\nx\n.\ny\n');
  // 1 KiB, 4 KiB and 16 KiB entries, and a 200 KiB message in an extent.
  for (const size of [300, 3000, 12000, 200 * 1024]) {
    const body = `X-Marker: m-size-${size}\r\n\r\n` + `${'z'.repeat(70)}\r\n`.repeat(Math.floor(size / 72));
    const r = await c.send('a@example.org', ['b@example.net'], body, { pipelining: true, size: body.length });
    assert.is(r.raw, `250 OK: queued as ${nextId()}\r\n`);
    assert.is(deliveredBody(await delivered(`m-size-${size}`)), body.replace(/\r\n/g, '\n'));
  }
  await c.quit();
});

test('swaks, unmodified, with PIPELINING and dot lines', async () => {
  const swaks = which('swaks');
  if (!swaks) {
    console.log('  (swaks is not installed: skipped)');
    return;
  }
  const run = spawnSync(
    swaks,
    ['--server', `127.0.0.1:${server.port}`, '--from', 'swaks@example.org', '--to', 'one@example.net,two@example.net', '--pipeline', '--header', 'X-Marker: m-swaks', '--body', 'first\n.second\n..third\n.'],
    { encoding: 'utf8', timeout: 15_000 },
  );
  assert.is(run.status, 0, run.stdout + run.stderr);
  assert.match(run.stdout, /<- {2}250 OK: queued as 0\.1\.\d+/);
  const file = await delivered('m-swaks');
  assert.ok(file.startsWith('Return-Path: <swaks@example.org>\nDelivered-To: one@example.net\nDelivered-To: two@example.net\n'), file);
  assert.match(deliveredBody(file), /\n\nfirst\n\.second\n\.\.third\n\.\n/);
  queued++;
});

test("Postfix's smtp-source, unmodified: 40 messages over 4 sessions", async () => {
  const source = which('smtp-source');
  if (!source) {
    console.log('  (smtp-source is not installed: skipped)');
    return;
  }
  const before = maildirMessages(maildir).size;
  const run = spawnSync(source, ['-d', '-s', '4', '-m', '40', '-l', '2048', '-f', 'source@example.org', '-t', 'sink@example.net', `127.0.0.1:${server.port}`], {
    encoding: 'utf8',
    timeout: 20_000,
  });
  assert.is(run.status, 0, run.stdout + run.stderr);
  queued += 40;
  await eventually(() => maildirMessages(maildir).size === before + 40, 15_000, '40 deliveries');
  const files = [...maildirMessages(maildir).values()].filter((file) => file.includes('Return-Path: <source@example.org>'));
  assert.is(files.length, 40);
});

test.run();
