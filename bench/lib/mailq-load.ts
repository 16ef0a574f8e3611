/**
 * An SMTP load generator: N concurrent connections, each sending messages of
 * a fixed size back to back over one session (EHLO once, then MAIL, RCPT,
 * DATA — pipelined in one write when `pipelining` — and the data), counting
 * a message only when the server's final 250 arrives: for the servers
 * measured here that reply means "durable". Messages are built once per
 * connection and get a unique Message-ID patched in place, so the generator
 * spends as little CPU as possible per message.
 *
 *   const result = await runLoad({ port, connections: 16, messageBytes: 1024, durationMs: 5000 });
 *
 * Also usable on its own:
 *   node --import tsx bench/lib/mailq-load.ts --port 2525 [--connections 16] [--size 1024]
 *        [--messages N | --duration 5] [--no-pipelining] [--json]
 */
import { connect, type Socket } from 'node:net';
import { parseArgs } from 'node:util';

export interface LoadOptions {
  port: number;
  host?: string;
  connections: number;
  /** Bytes of message data per message (headers included, before dot-stuffing; at least 200). */
  messageBytes: number;
  /** Stop after this many messages in total... */
  messages?: number;
  /** ...or after this long (whichever comes first; one of them is required). */
  durationMs?: number;
  /** Send MAIL, RCPT and DATA in one write (the server must offer PIPELINING). Default true. */
  pipelining?: boolean;
  /** Distinguishes the Message-IDs of different runs. */
  runTag?: string;
}

export interface LoadResult {
  connections: number;
  messageBytes: number;
  pipelining: boolean;
  /** Messages whose data got a 250 (accepted: durable). */
  accepted: number;
  /** Messages answered with anything else. */
  rejected: number;
  errors: string[];
  elapsedMs: number;
  /** Accepted messages per second. */
  rate: number;
  /** Transaction latency (MAIL sent → 250 after the data), microseconds. */
  latencyUs: { p50: number; p90: number; p99: number; max: number };
}

const CRLF = '\r\n';

/** A message of exactly `bytes` bytes of data (CRLF lines), then the end-of-data line; the id sits at `idAt` (10 digits). */
function buildMessage(bytes: number, connection: number, runTag: string): { data: Buffer; idAt: number } {
  const head =
    `From: <load@bench.invalid>${CRLF}To: <sink@bench.invalid>${CRLF}Subject: load ${runTag}${CRLF}` +
    `Message-ID: <${runTag}.c${String(connection).padStart(4, '0')}.`;
  const idTail = `@bench.invalid>${CRLF}${CRLF}`;
  const fixed = head.length + 10 + idTail.length;
  if (bytes < fixed + 2) throw new RangeError(`message size must be at least ${fixed + 2} bytes`);
  let body = '';
  let left = bytes - fixed;
  let line = 0;
  while (left > 0) {
    // Lines of up to 78 characters + CRLF; every line (the last too) ends in CRLF.
    const take = left <= 80 ? left : left - 80 < 2 ? left - 2 : 80;
    const width = take - 2;
    body += `line ${line++} `.padEnd(width, 'abcdefghijklmnopqrstuvwxyz').slice(0, width) + CRLF;
    left -= take;
  }
  const data = Buffer.from(`${head}0000000000${idTail}${body}.${CRLF}`, 'latin1');
  return { data, idAt: head.length };
}

function writeId(data: Buffer, at: number, id: number): void {
  for (let i = 9; i >= 0; i--) {
    data[at + i] = 0x30 + (id % 10);
    id = Math.floor(id / 10);
  }
}

/** Runs the load; resolves when every connection has finished (QUIT sent). */
export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  if (options.messages === undefined && options.durationMs === undefined) throw new RangeError('give messages or durationMs');
  const pipelining = options.pipelining ?? true;
  const runTag = options.runTag ?? `r${process.pid}x${Date.now().toString(36)}`;
  const limit = options.messages ?? Infinity;
  const latencies: number[] = [];
  const errors: string[] = [];
  let started = 0;
  let accepted = 0;
  let rejected = 0;
  let stop = false;
  const t0 = performance.now();
  const timer = options.durationMs !== undefined ? setTimeout(() => (stop = true), options.durationMs) : null;

  const envelope = pipelining
    ? Buffer.from(`MAIL FROM:<load@bench.invalid>${CRLF}RCPT TO:<sink@bench.invalid>${CRLF}DATA${CRLF}`, 'latin1')
    : null;
  const commands = [`MAIL FROM:<load@bench.invalid>${CRLF}`, `RCPT TO:<sink@bench.invalid>${CRLF}`, `DATA${CRLF}`].map((c) => Buffer.from(c, 'latin1'));

  const one = (connection: number) =>
    new Promise<void>((resolve) => {
      const { data, idAt } = buildMessage(options.messageBytes, connection, runTag);
      const socket: Socket = connect(options.port, options.host ?? '127.0.0.1');
      socket.setNoDelay(true);
      let pending = '';
      // Phases: 0 greeting, 1 EHLO, 2 envelope replies, 3 data reply, 4 QUIT sent.
      let phase = 0;
      let expect = 1;
      let step = 0;
      let sentAt = 0;
      let ok = true;
      const next = () => {
        if (stop || started >= limit) {
          phase = 4;
          socket.end(`QUIT${CRLF}`);
          return;
        }
        started++;
        writeId(data, idAt, started);
        sentAt = performance.now();
        phase = 2;
        ok = true;
        if (envelope) {
          expect = 3;
          socket.write(envelope);
        } else {
          expect = 1;
          step = 0;
          socket.write(commands[0]!);
        }
      };
      const onReply = (code: number) => {
        switch (phase) {
          case 0:
            if (code !== 220) return fail(`greeting ${code}`);
            phase = 1;
            socket.write(`EHLO load.bench.invalid${CRLF}`);
            return;
          case 1:
            if (code !== 250) return fail(`EHLO ${code}`);
            return next();
          case 2: {
            const wanted = envelope ? (expect === 1 ? 354 : 250) : step === 2 ? 354 : 250;
            if (code !== wanted) ok = false;
            if (!envelope) {
              step++;
              if (code !== wanted) {
                rejected++;
                socket.write(`RSET${CRLF}`);
                phase = 5;
                return;
              }
              if (step < 3) {
                socket.write(commands[step]!);
                return;
              }
            } else if (--expect > 0) {
              return;
            }
            if (!ok) {
              // DATA was refused (or an envelope command was): start over.
              rejected++;
              if (code === 354) {
                socket.write(`.${CRLF}`);
                phase = 6;
                return;
              }
              return next();
            }
            phase = 3;
            socket.write(data);
            return;
          }
          case 3:
            if (code === 250) {
              accepted++;
              latencies.push((performance.now() - sentAt) * 1000);
            } else {
              rejected++;
              if (errors.length < 10) errors.push(`data reply ${code}`);
            }
            return next();
          case 5: // after RSET
          case 6: // after an empty message sent to close a refused transaction
            return next();
        }
      };
      const fail = (why: string) => {
        if (errors.length < 10) errors.push(why);
        socket.destroy();
      };
      socket.on('data', (chunk: Buffer) => {
        pending += chunk.toString('latin1');
        let at = 0;
        for (;;) {
          const end = pending.indexOf(CRLF, at);
          if (end < 0) break;
          const final = pending.charCodeAt(at + 3) !== 0x2d; // not '-'
          const code = final ? Number(pending.slice(at, at + 3)) : 0;
          at = end + 2;
          if (final) onReply(code);
        }
        pending = pending.slice(at);
      });
      socket.on('error', (error) => {
        if (errors.length < 10) errors.push(String(error));
      });
      socket.on('close', () => resolve());
    });

  await Promise.all(Array.from({ length: options.connections }, (_, i) => one(i)));
  if (timer) clearTimeout(timer);
  const elapsedMs = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  const pick = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! : NaN);
  return {
    connections: options.connections,
    messageBytes: options.messageBytes,
    pipelining,
    accepted,
    rejected,
    errors,
    elapsedMs,
    rate: (accepted / elapsedMs) * 1000,
    latencyUs: { p50: pick(0.5), p90: pick(0.9), p99: pick(0.99), max: latencies.length ? latencies[latencies.length - 1]! : NaN },
  };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      host: { type: 'string', default: '127.0.0.1' },
      connections: { type: 'string', default: '16' },
      size: { type: 'string', default: '1024' },
      messages: { type: 'string' },
      duration: { type: 'string' },
      'no-pipelining': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (!values.port) throw new Error('--port is required');
  const result = await runLoad({
    port: Number(values.port),
    host: values.host,
    connections: Number(values.connections),
    messageBytes: Number(values.size),
    ...(values.messages ? { messages: Number(values.messages) } : {}),
    durationMs: values.duration ? Number(values.duration) * 1000 : values.messages ? undefined : 5000,
    pipelining: !values['no-pipelining'],
  });
  if (values.json) process.stdout.write(`${JSON.stringify(result)}\n`);
  else {
    const us = (v: number) => `${(v / 1000).toFixed(2)} ms`;
    process.stdout.write(
      `${result.accepted} accepted, ${result.rejected} rejected in ${(result.elapsedMs / 1000).toFixed(2)} s: ${Math.round(result.rate)} msg/s; ` +
        `latency p50 ${us(result.latencyUs.p50)} p99 ${us(result.latencyUs.p99)}${result.errors.length ? `; errors: ${result.errors.join(', ')}` : ''}\n`,
    );
  }
}
