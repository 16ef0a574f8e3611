/**
 * offpath-mailq as a library: a durable, sharded mail queue on a VSA
 * (docs/mailq.md), an SMTP receiver that fills it, a Maildir delivery
 * worker that drains it, and the server that puts them together.
 *
 *   const vsa = await open({ capability });
 *   const queue = await MailQueue.open(vsa);             // formats a blank VSA
 *   const id = await queue.enqueue({ from, to }, data);  // resolves when durable
 *   const lease = await queue.dequeue({ wait: true });
 *   await deliver(lease.envelope, lease.data);
 *   await lease.ack();                                   // removal is durable
 */
export { crc32c } from './crc32c.js';
export { DeliveryAgent, maildirName } from './delivery.js';
export { ShardHost } from './host.js';
export type { HostOptions, HostStats } from './host.js';
export type { Durability } from './io.js';
export { CLASS_BYTES, EntryState, HEADER_BYTES, planLayout } from './layout.js';
export type { Envelope, LayoutOptions, Superblock } from './layout.js';
export { Maildir, MaildirSink, toUnixLines } from './maildir.js';
export type { MaildirSync } from './maildir.js';
export { MailQueue, formatQueue, prepareQueue, readSuperblock } from './queue.js';
export type { FormatPolicy, MailQueueStats, OpenMailQueueOptions } from './queue.js';
export { MailqServer } from './server.js';
export type { ServeOptions } from './server.js';
export { Lease, MailQueueShard, MailqError, Reservation } from './shard.js';
export type { LeaseInfo, PeekedMessage, ShardOptions, ShardStats } from './shard.js';
export { SmtpSession, commitFailureReply, parsePath } from './smtp.js';
export type { SinkMessage, SmtpOptions, SmtpSink } from './smtp.js';
export { SmtpClient, dotStuff } from './smtp-client.js';
export type { Reply } from './smtp-client.js';
