/**
 * One application of the soak (bench/soak.ts): opens its VSA by capability
 * through the daemon and runs its profile's epochs (soak-plan.ts) until
 * SIGTERM, checking every block it reads against what it wrote.
 *
 * Durability bookkeeping: after each epoch's Flush completes, the state of
 * every block is written to a state file (rename: all or nothing), so a
 * successor started after a SIGKILL knows what its predecessor made durable.
 * The epoch after the recorded one may have been under way: its blocks may
 * hold either state. When the session drops (daemon restart) the process
 * itself knows more: operations it saw acknowledged must have landed.
 *
 * Reports NDJSON on stdout, one object per line, with `type`:
 * opened, ready, stats (deltas, once a second), error, mismatch, final.
 */
import { renameSync, readFileSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { open, StorageError, type Vsa } from '../../libstorage/index.js';
import type { Counters } from './soak-fleet.js';
import { BlockChecker, fillBlock, planEpoch, stateAfter, UNKNOWN, ZERO, type EpochPlan, type Profile, type WriteOp } from './soak-plan.js';

const { values: args } = parseArgs({
  options: {
    app: { type: 'string' },
    profile: { type: 'string' },
    capability: { type: 'string' },
    daemon: { type: 'string' },
    state: { type: 'string' },
    blocks: { type: 'string' },
    'epoch-ms': { type: 'string', default: '250' },
  },
});
const appIndex = Number(args.app);
const profile = args.profile as Profile;
const statePath = args.state!;
const epochMs = Number(args['epoch-ms']);
const blocks = Number(args.blocks);
const tag = appIndex + 1;
/** Registered memory per session: the largest op (256 KiB) × queue depth, plus verification reads. */
const POOL_BYTES = 4 << 20;
const VERIFY_CHUNK_BLOCKS = 128;
const VERIFY_DEPTH = 2;

function emit(message: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify({ ...message, app: appIndex, at: Date.now() })}\n`);
}

function codeOf(error: unknown): string {
  if (error instanceof StorageError) return error.code;
  const code = (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : (error as Error)?.name ?? 'unknown';
}

let stopping = false;
process.on('SIGTERM', () => (stopping = true));
for (const event of ['uncaughtException', 'unhandledRejection'] as const) {
  process.on(event, (error) => {
    emit({ type: 'error', where: 'fatal', code: codeOf(error), message: String((error as Error)?.stack ?? error) });
    process.exit(1);
  });
}

// --- counters, reported as deltas so a killed process loses at most a second --

const counters: Counters = { reads: 0, writes: 0, trims: 0, zeroes: 0, flushes: 0, readBytes: 0, writeBytes: 0, verifyBytes: 0 };
type Counter = keyof Counters;
const count = (key: Counter, n = 1) => (counters[key] += n);
const statsTimer = setInterval(() => {
  emit({ type: 'stats', ...counters });
  for (const key of Object.keys(counters) as Counter[]) counters[key] = 0;
}, 1000);

// --- block state: in memory, and on disk as of the last completed epoch ------

let epoch = -1;
let gens = new Int32Array(0);

function loadState(): void {
  try {
    const bytes = readFileSync(statePath);
    const words = new Int32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength >>> 2);
    epoch = words[0]!;
    gens = words.slice(1);
    if (gens.length !== blocks) throw new Error(`state file has ${gens.length} blocks, the VSA ${blocks}`);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    epoch = -1;
    gens = new Int32Array(blocks).fill(ZERO);
  }
}

function saveState(): void {
  const words = new Int32Array(gens.length + 1);
  words[0] = epoch;
  words.set(gens, 1);
  writeFileSync(`${statePath}.tmp`, words);
  renameSync(`${statePath}.tmp`, statePath);
}

// --- the session -------------------------------------------------------------

async function openVsa(): Promise<Vsa> {
  for (let attempt = 1; ; attempt++) {
    const started = Date.now();
    try {
      const vsa = await open({ capability: args.capability!, daemon: args.daemon! }, { poolBytes: POOL_BYTES, queueEntries: 64 });
      emit({ type: 'opened', attempt, ms: Date.now() - started });
      return vsa;
    } catch (error) {
      emit({ type: 'error', where: 'open', code: codeOf(error), message: (error as Error).message, attempt });
      // Back off: a restarting daemon needs seconds, not a busy loop of 32 clients.
      await sleep(Math.min(2000, 100 * 2 ** Math.min(attempt, 5)));
    }
  }
}

/** Runs `work` over `items` with at most `depth` in flight. */
async function pool<T>(items: readonly T[], depth: number, work: (item: T, slot: number) => Promise<void>): Promise<void> {
  let next = 0;
  const lanes = Array.from({ length: Math.min(depth, items.length) }, async (_, slot) => {
    while (next < items.length) await work(items[next++]!, slot);
  });
  await Promise.all(lanes);
}

class Session {
  readonly checker: BlockChecker;
  private readonly buffers: Uint8Array[];

  constructor(readonly vsa: Vsa) {
    this.checker = new BlockChecker(tag, vsa.blockSize);
    // One buffer per lane, large enough for a verification chunk.
    this.buffers = Array.from({ length: 4 }, () => vsa.alloc(VERIFY_CHUNK_BLOCKS * vsa.blockSize));
  }

  private view(slot: number, blocks: number): Uint8Array {
    return this.buffers[slot]!.subarray(0, blocks * this.vsa.blockSize);
  }

  private block(view: Uint8Array, i: number): Uint8Array {
    return view.subarray(i * this.vsa.blockSize, (i + 1) * this.vsa.blockSize);
  }

  private mismatch(block: number, where: string, expected: number, alternative: number | undefined, found: Uint8Array): void {
    emit({ type: 'mismatch', where, block, epoch, expected, alternative, found: this.checker.describe(found) });
    gens[block] = UNKNOWN;
  }

  /** One epoch; `acked` collects the write ops that completed (the rest may or may not have landed). */
  async runEpoch(plan: EpochPlan, acked: Set<WriteOp>): Promise<void> {
    const bytes = this.vsa.blockSize;
    const ops: Array<{ write?: WriteOp; read?: { block: number; blocks: number } }> = [];
    const longest = Math.max(plan.writes.length, plan.reads.length);
    for (let i = 0; i < longest; i++) {
      if (plan.writes[i]) ops.push({ write: plan.writes[i]! });
      if (plan.reads[i]) ops.push({ read: plan.reads[i]! });
    }
    await pool(ops, plan.queueDepth, async ({ write, read }, slot) => {
      if (write) {
        const offset = write.block * bytes;
        const length = write.blocks * bytes;
        if (write.kind === 'write') {
          const view = this.view(slot, write.blocks);
          for (let i = 0; i < write.blocks; i++) fillBlock(this.block(view, i), tag, write.block + i, plan.epoch);
          await this.vsa.write(offset, view, { fua: write.fua });
          count('writes');
          count('writeBytes', length);
        } else if (write.kind === 'trim') {
          await this.vsa.trim(offset, length);
          count('trims');
        } else {
          await this.vsa.writeZeroes(offset, length);
          count('zeroes');
        }
        acked.add(write);
        gens.fill(stateAfter(write, plan.epoch), write.block, write.block + write.blocks);
      } else if (read) {
        const view = this.view(slot, read.blocks);
        await this.vsa.read(read.block * bytes, view);
        count('reads');
        count('readBytes', view.byteLength);
        for (let i = 0; i < read.blocks; i++) {
          const b = read.block + i;
          if (!this.checker.holds(this.block(view, i), b, gens[b]!)) this.mismatch(b, 'read', gens[b]!, undefined, this.block(view, i));
        }
      }
    });
    await this.flush();
  }

  async flush(): Promise<void> {
    await this.vsa.flush();
    count('flushes');
  }

  /**
   * Reads the whole VSA: every block must hold its recorded state, or the
   * alternative an interrupted operation leaves (adopted as the new state).
   */
  async verifyAll(alternatives: Map<number, number>): Promise<{ checked: number; adopted: number; mismatches: number }> {
    const blocks = this.vsa.blocks;
    const chunks: number[] = [];
    for (let b = 0; b < blocks; b += VERIFY_CHUNK_BLOCKS) chunks.push(b);
    let adopted = 0;
    let mismatches = 0;
    await pool(chunks, VERIFY_DEPTH, async (start, slot) => {
      const n = Math.min(VERIFY_CHUNK_BLOCKS, blocks - start);
      const view = this.view(slot, n);
      await this.vsa.read(start * this.vsa.blockSize, view);
      count('reads');
      count('verifyBytes', view.byteLength);
      for (let i = 0; i < n; i++) {
        const b = start + i;
        const found = this.block(view, i);
        if (this.checker.holds(found, b, gens[b]!)) continue;
        const alternative = alternatives.get(b);
        if (alternative !== undefined && this.checker.holds(found, b, alternative)) {
          gens[b] = alternative;
          adopted++;
          continue;
        }
        mismatches++;
        this.mismatch(b, 'verify', gens[b]!, alternative, found);
      }
    });
    return { checked: blocks, adopted, mismatches };
  }
}

function alternativesOf(ops: Iterable<WriteOp>, opEpoch: number): Map<number, number> {
  const map = new Map<number, number>();
  for (const op of ops) for (let b = op.block; b < op.block + op.blocks; b++) map.set(b, stateAfter(op, opEpoch));
  return map;
}

/**
 * Opens (again), checks the whole VSA against what is known and makes the
 * interrupted epoch's outcome the recorded state. Retries if the session
 * drops meanwhile (a restart during recovery).
 */
async function recover(reason: string, alternatives: Map<number, number>, interrupted: number): Promise<Session> {
  for (;;) {
    const session = new Session(await openVsa());
    const started = Date.now();
    try {
      if (session.vsa.blocks !== blocks) throw new Error(`the VSA has ${session.vsa.blocks} blocks, not ${blocks}`);
      const result = await session.verifyAll(alternatives);
      await session.flush();
      epoch = Math.max(epoch, interrupted);
      saveState();
      emit({ type: 'ready', reason, epoch, ...result, ms: Date.now() - started });
      return session;
    } catch (error) {
      emit({ type: 'error', where: 'recover', code: codeOf(error), message: (error as Error).message });
      await session.vsa.close().catch(() => {});
    }
  }
}

async function main(): Promise<void> {
  // The successor's view: the recorded epoch, and the next one possibly under way.
  loadState();
  const next = planEpoch(appIndex, profile, epoch + 1, blocks);
  let session = await recover(epoch < 0 ? 'start' : 'respawn', alternativesOf(next.writes, next.epoch), next.epoch);

  while (!stopping) {
    const started = Date.now();
    const plan = planEpoch(appIndex, profile, epoch + 1, blocks);
    const acked = new Set<WriteOp>();
    try {
      await session.runEpoch(plan, acked);
      epoch = plan.epoch;
      saveState();
    } catch (error) {
      emit({ type: 'error', where: 'io', code: codeOf(error), message: (error as Error).message, epoch: plan.epoch });
      await session.vsa.close().catch(() => {});
      // What this process saw acknowledged must be there; the rest may be.
      session = await recover('reopen', alternativesOf(plan.writes.filter((op) => !acked.has(op)), plan.epoch), plan.epoch);
      continue;
    }
    const rest = epochMs - (Date.now() - started);
    if (rest > 0) await sleep(rest);
  }

  const final = await session.verifyAll(new Map());
  emit({ type: 'final', epoch, ...final });
  await session.vsa.close();
  clearInterval(statsTimer);
  emit({ type: 'stats', ...counters });
}

await main();
