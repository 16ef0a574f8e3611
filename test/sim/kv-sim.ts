// Seeded power-loss simulation of the KV store (examples/kv/store.ts) on a
// real VSA (test/sim/powered-vsa.ts): a random workload — bursts of SETs,
// MSETs, DELs (one key or several in one atomic group) and now and then a
// FLUSHDB, reads checked against the model, and in `crash` mode Flushes of
// the VSA — on a log small enough to wrap, compact and trim, until the power
// fails; then recovery through KvStore.open and the checks (docs/kv.md,
// "Durability and acknowledgement", and docs/emulator-store.md, the
// simulation section):
//   - the recovered keys are exactly the state after some prefix of the log
//     — whole frames, so whole commands: nothing half-applied, no value that
//     was never written, nothing deleted brought back out of order — and that
//     prefix reaches at least
//       `power` durability, or a cut that is a process kill: every
//       acknowledged write;
//       `crash` durability and a power failure: every write acknowledged
//       before a Flush that completed (the mode promises nothing else then);
//   - recovery never fails;
//   - the recovered store works: more writes, a clean shutdown and a reopen
//     find exactly what was written.
import { recordBytes } from '../../examples/kv/format.js';
import { KvError, KvStore, type Durability, type KvOptions } from '../../examples/kv/store.js';
import { AppSimulation } from './app-sim.js';
import { PAYLOAD_HEADER_BYTES, decodePayload, encodePayload } from './payloads.js';
import type { CutOptions, CutOutcome } from './target.js';

const KiB = 1024;

function keyName(key: number): string {
  return `key-${key}`;
}

/** Key → the write that gave it its value (absent: no value). */
type State = Map<number, number>;

/** One staged command: its frame's sequence number and what it changes (write 0: deleted). */
interface Op {
  seq: number;
  changes: Array<{ key: number; write: number }> | 'clear';
}

function apply(state: State, op: Op): void {
  if (op.changes === 'clear') return state.clear();
  for (const { key, write } of op.changes) {
    if (write === 0) state.delete(key);
    else state.set(key, write);
  }
}

class KvSimulation extends AppSimulation {
  readonly durability: Durability;
  /** A long run on the smallest log: it fills, compacts, trims and wraps before the cut. */
  readonly heavy: boolean;
  readonly logBytes: number;
  readonly keys: number;
  readonly storeOptions: KvOptions;
  kv!: KvStore;
  /** The state the last recovery found, and the commands staged since, in order. */
  base: State = new Map();
  ops: Op[] = [];
  /** The newest state the store was told (what reads must return before a cut). */
  current: State = new Map();
  writes = 0;
  /** Highest seq acknowledged to a client, and the highest acknowledged before a Flush that completed. */
  acked = 0;
  flushed = 0;

  constructor(seed: number, options: CutOptions) {
    const durability: Durability = (seed & 1) === 0 ? 'power' : 'crash';
    // In `crash` mode a process kill is the failure the mode is made for.
    super(seed, options, durability === 'crash' ? 0.35 : 0.15);
    this.durability = durability;
    this.heavy = this.chance(0.25);
    this.logBytes = this.heavy ? 256 * KiB : this.pick([256, 384, 640, 1024]) * KiB;
    this.keys = 4 + this.int(28);
    this.storeOptions = {
      durability,
      cacheBytes: this.chance(0.3) ? 0 : 1 << 20,
      maxInflight: 1 + this.int(4),
      gather: durability === 'power' && this.chance(0.5),
      compactAt: this.pick([0.3, 0.5, 0.5]),
      compactStepBytes: this.pick([8 * KiB, 32 * KiB, 4096 * KiB]),
    };
  }

  protected settings(): string {
    const { cacheBytes, maxInflight, gather, compactAt, compactStepBytes } = this.storeOptions;
    return `durability ${this.durability}${this.heavy ? ' (heavy)' : ''}, ${this.blockBytes}-byte blocks, log ${this.logBytes / KiB} KiB, ${this.keys} keys, cache ${cacheBytes}, inflight ${maxInflight}, gather ${gather}, compact at ${compactAt} step ${compactStepBytes}`;
  }

  protected async openApp(): Promise<void> {
    this.kv = await KvStore.open(this.pv.vsa, this.storeOptions);
  }

  protected async phases(): Promise<void> {
    if (await this.powerOn(2 + this.logBytes / this.blockBytes)) await this.runUntilCut(this.heavy ? 60 + this.int(90) : 5 + this.int(30));
    // What must survive: every acknowledged write — except that in `crash`
    // mode a power failure keeps only what a completed Flush covered.
    const promised = this.durability === 'power' || this.cutKind === 'kill' ? this.acked : this.flushed;
    if (!(await this.recover(await this.cut(), true))) return;
    await this.verify('after the cut', promised);

    await this.moreSteps();
    await this.kv.close();
    if (!(await this.recover(await this.shutdown(), false))) return;
    await this.verify('after more commands and a clean shutdown', Infinity);
  }

  // ---- the workload ----------------------------------------------------------

  protected async step(): Promise<void> {
    const roll = this.random() * 100;
    if (roll < 8) return this.flush();
    if (roll < 16) return this.readBack();
    // A burst in one turn of the event loop: group commit gathers it into one frame or a few.
    const count = 1 + this.int(6);
    for (let i = 0; i < count && !this.pv.powerLost; i++) this.mutate();
    await this.endBurst(0.8);
  }

  valueLength(max = 48 * KiB): number {
    const roll = this.random();
    const length = roll < 0.6 ? 16 + this.int(100) : roll < 0.85 ? 100 + this.int(3000) : roll < 0.97 ? 3000 + this.int(20000) : this.int(max);
    return Math.max(PAYLOAD_HEADER_BYTES, Math.min(length, max, this.kv.maxValueBytes));
  }

  newValue(key: number, max?: number): { write: number; value: Buffer } {
    const write = ++this.writes;
    return { write, value: encodePayload(write, key, this.valueLength(max)) };
  }

  distinctKeys(count: number): number[] {
    const keys = new Set<number>();
    while (keys.size < Math.min(count, this.keys)) keys.add(this.int(this.keys));
    return [...keys];
  }

  /** Stages one command (nothing when the log is full); its acknowledgement joins `pending`. */
  mutate(): void {
    const roll = this.random() * 100;
    let op: Op;
    try {
      if (roll < 60) {
        const key = this.int(this.keys);
        const { write, value } = this.newValue(key);
        const name = keyName(key);
        op = { seq: this.kv.put(name, Buffer.from(name), value, 0), changes: [{ key, write }] };
      } else if (roll < 75) {
        const pairs = this.distinctKeys(2 + this.int(3)).map((key) => ({ key, ...this.newValue(key, 2 * KiB) }));
        const bytes = pairs.reduce((sum, p) => sum + recordBytes(keyName(p.key).length, p.value.length), 0);
        const seq = this.kv.atomic(bytes, () => Math.max(...pairs.map((p) => this.kv.put(keyName(p.key), Buffer.from(keyName(p.key)), p.value, 0))));
        op = { seq, changes: pairs.map(({ key, write }) => ({ key, write })) };
      } else if (roll < 98) {
        const keys = this.distinctKeys(roll < 92 ? 1 : 2 + this.int(3));
        const bytes = keys.reduce((sum, key) => sum + recordBytes(keyName(key).length, 0), 0);
        const seqs = this.kv.atomic(bytes, () => keys.map((key) => this.kv.remove(keyName(key), Buffer.from(keyName(key)))), true);
        // The store deletes exactly the keys it holds: it must agree with the model about which those are.
        keys.forEach((key, i) => {
          if ((seqs[i] !== 0) !== this.current.has(key))
            this.problems.note('lost', `before any cut: DEL ${keyName(key)} found it ${seqs[i] !== 0 ? 'present' : 'absent'}, the model ${this.current.has(key) ? 'present' : 'absent'}`);
        });
        const seq = Math.max(...seqs);
        if (seq === 0) return;
        op = { seq, changes: keys.filter((_, i) => seqs[i] !== 0).map((key) => ({ key, write: 0 })) };
      } else {
        op = { seq: this.kv.clear(), changes: 'clear' };
      }
    } catch (error) {
      // Full (compaction has been started) or too big: nothing was staged.
      if (error instanceof KvError && (error.code === 'FULL' || error.code === 'TOOBIG')) return;
      if (this.pv.powerLost) return;
      throw error;
    }
    this.ops.push(op);
    apply(this.current, op);
    const seq = op.seq;
    this.pending.push(this.kv.durable(seq).then(() => void (this.acked = Math.max(this.acked, seq)), this.unlessCut('a write')));
  }

  /** Everything acknowledged so far, then a Flush of the VSA: from then on it survives power loss in either mode. */
  async flush(): Promise<void> {
    try {
      await this.kv.sync();
      const covered = this.acked;
      await this.pv.vsa.flush();
      this.flushed = Math.max(this.flushed, covered);
    } catch (error) {
      if (!this.pv.powerLost) throw error;
    }
  }

  /** While the power is on a read returns the newest value, from memory or from the log. */
  async readBack(): Promise<void> {
    const key = this.int(this.keys);
    let value: Buffer | null;
    try {
      value = await this.kv.get(keyName(key));
    } catch (error) {
      if (this.pv.powerLost) return;
      throw error;
    }
    const got = value === null ? 0 : decodePayload(value, key);
    const expected = this.current.get(key) ?? 0;
    if (got !== expected) this.problems.note('lost', `before any cut: ${keyName(key)} read ${describe(got)}, expected ${describe(expected)}`);
  }

  // ---- the checks ----------------------------------------------------------------

  /**
   * The recovered keys must be the state after a prefix of the staged
   * commands (whole frames) that includes every command of seq ≤ `promised`.
   * Then the model starts again from what was found.
   */
  async verify(when: string, promised: number): Promise<void> {
    const found: State = new Map();
    try {
      for (let key = 0; key < this.keys; key++) {
        const value = await this.kv.get(keyName(key));
        if (value !== null) found.set(key, decodePayload(value, key));
      }
    } catch (error) {
      this.problems.note('unrecoverable', `${when}: reading the recovered keys failed: ${error instanceof Error ? error.message : String(error)}`);
      return;
    }
    const strangers = this.kv.stats().keys - found.size;
    if (strangers !== 0) this.problems.note('lost', `${when}: ${strangers} keys that were never written`, strangers);
    const state = new Map(this.base);
    let next = 0;
    while (next < this.ops.length && this.ops[next]!.seq <= promised) apply(state, this.ops[next++]!);
    const atPromise = differences(state, found);
    let best = atPromise.length;
    while (best > 0 && next < this.ops.length) {
      const seq = this.ops[next]!.seq;
      while (next < this.ops.length && this.ops[next]!.seq === seq) apply(state, this.ops[next++]!);
      best = Math.min(best, differences(state, found).length);
    }
    if (best > 0) {
      const promise = promised === Infinity ? 'everything written' : `everything up to frame ${promised}`;
      this.problems.note('lost', `${when}: the keys match no prefix of the log that holds ${promise} (${best} keys off at best); against that: ${atPromise.slice(0, 3).join('; ')}`, best);
    }
    this.base = new Map([...found].filter(([, write]) => write > 0));
    this.current = new Map(this.base);
    this.ops = [];
    this.acked = this.flushed = 0;
  }
}

function describe(write: number): string {
  return write === 0 ? 'nothing' : write === -1 ? 'a value no write made' : `write ${write}`;
}

/** The keys on which two states differ, described. */
function differences(expected: State, found: State): string[] {
  const out: string[] = [];
  for (const key of new Set([...expected.keys(), ...found.keys()])) {
    const want = expected.get(key) ?? 0;
    const got = found.get(key) ?? 0;
    if (want !== got) out.push(`${keyName(key)} holds ${describe(got)}, expected ${describe(want)}`);
  }
  return out;
}

/** One seeded cut of the KV store; `durability` alternates with the seed's parity. */
export function runKvCut(seed: number, options: CutOptions = {}): Promise<CutOutcome> {
  return new KvSimulation(seed >>> 0, options).run();
}
