/**
 * The benchmark's baseline: the same SMTP receiver as the mail queue, but
 * every message goes straight into a Maildir with an fsync per message
 * before the 250 reply (tmp/ file, fsync, rename into new/, and with
 * `--sync file+dir` an fsync of new/ too).
 *
 *   node --import tsx bench/lib/mailq-maildir-server.ts --maildir DIR [--sync file+dir|file|none] [--port 0]
 *
 * Prints `listening HOST:PORT`; SIGTERM stops it.
 */
import { createServer, type AddressInfo } from 'node:net';
import { parseArgs } from 'node:util';
import { MaildirSink, type MaildirSync } from '../../examples/mailq/maildir.js';
import { SmtpSession } from '../../examples/mailq/smtp.js';

const { values } = parseArgs({
  options: {
    maildir: { type: 'string' },
    sync: { type: 'string', default: 'file+dir' },
    port: { type: 'string', default: '0' },
    host: { type: 'string', default: '127.0.0.1' },
  },
});
if (!values.maildir) throw new Error('--maildir is required');
if (!['file+dir', 'file', 'none'].includes(values.sync!)) throw new Error('--sync must be file+dir, file or none');
const sink = new MaildirSink(values.maildir, values.sync as MaildirSync);
const server = createServer((socket) => {
  new SmtpSession(socket, sink, { hostname: 'maildir.bench.invalid', maxMessageBytes: 10 << 20 });
});
server.listen(Number(values.port), values.host, () => {
  const { address, port } = server.address() as AddressInfo;
  process.stdout.write(`listening ${address}:${port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  process.exit(0);
});
