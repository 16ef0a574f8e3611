/**
 * Micro-benchmarks (benchmark.js) of the per-I/O pieces of the data plane, in
 * isolation and without an emulator: the controller is faked in JS — this
 * file reads the SQ ring and writes CQEs with the right phase tag into the CQ
 * ring itself (registered memory from native.dmaAlloc, a 16 KiB ArrayBuffer
 * as the BAR). What is measured:
 *
 *  - SQE encoding: the QueuePair reserve()/commit() path with in-place u32
 *    stores (what VsaQueue does) against writeSqe() from nvme/spec.ts;
 *  - a command's trip through the rings (submit, doorbell, CQE, reap) on a
 *    bare QueuePair, one at a time and in batches of 32;
 *  - the whole library path on a VsaQueue (request pool, validation, SQE,
 *    PRP/SGL/bounce, completion, callback or Promise): 4 KiB, 128 KiB (a PRP
 *    list of 31 entries), 32 separate pages (PRP list from pieces), and a
 *    plain Buffer (bounced through registered memory);
 *  - what a completion costs to deliver: a callback against a Promise, and
 *    the event-loop primitives the queue uses (queueMicrotask, setImmediate).
 *
 *   node --import tsx bench/micro.ts [--quick] [--json] [--filter REGEX]
 *        [--quiet-wait S] [--max-others PCT] [--retries N]
 *
 * Each case starts once the machine is quiet (at most --quiet-wait seconds
 * of waiting) and is run again (up to --retries times) when other processes
 * used more than --max-others % of a core meanwhile: on a 2-core machine
 * someone else's burst halves a result.
 * Output: a table on stdout (ops/s, ns/op, and ns per I/O where an op is a
 * batch); with --json the table goes to stderr and stdout is one JSON line.
 */
import Benchmark from 'benchmark';
import { cpus, release } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { DmaRegion, type DmaBuffer } from '../libstorage/dma.js';
import { VsaQueue, queueRegionLayout } from '../libstorage/io/vsa-queue.js';
import { native } from '../libstorage/native.js';
import { NvmOpcode, SQE_SIZE_BYTES, writeSqe } from '../libstorage/nvme/spec.js';
import { QueuePair } from '../libstorage/queue/queue-pair.js';
import { machineBusyNs, waitForQuiet } from './lib/machine-load.js';
import { processCpuNs } from './lib/proc-cpu.js';
import { formatTable, type Cell } from './lib/report.js';

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    json: { type: 'boolean', default: false },
    filter: { type: 'string' },
    'quiet-wait': { type: 'string', default: '10' },
    'max-others': { type: 'string', default: '25' },
    retries: { type: 'string', default: '2' },
  },
});
const quietWaitMs = Math.round(Number(args['quiet-wait']) * 1000);
const maxOthersPercent = Number(args['max-others']);
const retries = Number(args.retries);
const maxTime = args.quick ? 0.5 : 2;
const filter = args.filter ? new RegExp(args.filter, 'i') : undefined;

const BAR_BYTES = 16 * 1024;
const ENTRIES = 256;
const BLOCK = 4096;
const BLOCKS = 1 << 16;
const BATCH = 32;
/**
 * The fake controller never dereferences IOVAs, but their size matters to
 * the JIT (above 2^31 they are doubles): use where the emulator transport
 * starts its IOVA space.
 */
const IOVA_BASE = 0x1_0000_0000;

// ---------------------------------------------------------------------------
// Fake controller

/** Registered memory as a worker thread would see it: allocated, mapped, never sent to a controller. */
function fakeRegion(bytes: number): DmaRegion {
  const allocation = native.dmaAlloc(bytes, { hugepage: 'none' });
  return DmaRegion.adopt(allocation.fd, IOVA_BASE, allocation.lengthBytes);
}

/**
 * Completes commands the way a controller does: takes SQEs in ring order,
 * writes a CQE (DW2: SQ head, SQ id; DW3: command id, status with the phase
 * tag — stored last) and flips its phase when the CQ wraps.
 */
class FakeController {
  private sqHead = 0;
  private cqTail = 0;
  private phase = 1;
  private readonly sq16: Uint16Array;
  private readonly cq32: Uint32Array;

  constructor(
    sqRing: DmaBuffer,
    cqRing: DmaBuffer,
    private readonly entries: number,
    private readonly sqid: number,
  ) {
    this.sq16 = new Uint16Array(sqRing.bytes.buffer, sqRing.bytes.byteOffset, (entries * SQE_SIZE_BYTES) / 2);
    this.cq32 = new Uint32Array(cqRing.bytes.buffer, cqRing.bytes.byteOffset, entries * 4);
  }

  /** Completes the next `count` submitted commands successfully. */
  complete(count: number): void {
    for (let i = 0; i < count; i++) {
      const cid = this.sq16[this.sqHead * 32 + 1]!;
      this.sqHead = this.sqHead + 1 === this.entries ? 0 : this.sqHead + 1;
      const at = this.cqTail * 4;
      this.cq32[at] = 0;
      this.cq32[at + 1] = 0;
      this.cq32[at + 2] = (this.sqHead | (this.sqid << 16)) >>> 0;
      Atomics.store(this.cq32, at + 3, (cid | (this.phase << 16)) >>> 0);
      if (++this.cqTail === this.entries) {
        this.cqTail = 0;
        this.phase ^= 1;
      }
    }
  }
}

function newQueuePair(): { queue: QueuePair; controller: FakeController; data: DmaBuffer } {
  const region = fakeRegion(1 << 20);
  const sqRing = region.alloc(ENTRIES * SQE_SIZE_BYTES);
  const cqRing = region.alloc(ENTRIES * 16);
  const data = region.alloc(BLOCK);
  const queue = new QueuePair({ sqid: 1, cqid: 1, entries: ENTRIES, sqRing, cqRing, bar: new ArrayBuffer(BAR_BYTES), dstrd: 0, notify: () => {} });
  queue.onCompletion = () => {};
  return { queue, controller: new FakeController(sqRing, cqRing, ENTRIES, 1), data };
}

function newVsaQueue(): { vsa: VsaQueue; controller: FakeController } {
  const layout = queueRegionLayout(ENTRIES, 8 << 20);
  const vsa = new VsaQueue({
    geometry: { name: 'micro', nsid: 1, blockBytes: BLOCK, blocks: BLOCKS, maxTransferBytes: 256 * 1024, sgl: true },
    bar: new ArrayBuffer(BAR_BYTES),
    dstrd: 0,
    notify: () => {},
    region: fakeRegion(layout.regionBytes),
    sqid: 1,
    entries: ENTRIES,
    interruptFd: -1,
    lifelineFd: -1,
  });
  return { vsa, controller: new FakeController(vsa.queue.sqRing, vsa.queue.cqRing, ENTRIES, 1) };
}

// ---------------------------------------------------------------------------
// The cases

interface Case {
  name: string;
  group: string;
  /** I/Os (or items) per benchmark op, to report ns per I/O. */
  perOp: number;
  fn: () => void;
  /** An async case: fn receives benchmark.js's deferred. */
  defer?: (deferred: { resolve(): void }) => void;
}

const cases: Case[] = [];
let lba = 0;
const nextLba = () => (lba = (lba + 7919) & (BLOCKS - 1));

// --- SQE encoding -------------------------------------------------------------
{
  const { queue, data } = newQueuePair();
  const sq32 = queue.sq32;
  const q = queue as unknown as { freeCids: Uint16Array; freeCidCount: number };
  // The command id goes straight back, so the ring never fills and only encoding is timed.
  cases.push({
    group: 'SQE encoding',
    name: 'QueuePair reserve() + in-place u32 stores + commit()',
    perOp: 1,
    fn: () => {
      const cid = queue.reserve();
      const at = queue.sqeOffset >> 2;
      sq32[at] = (sq32[at]! | NvmOpcode.READ) >>> 0;
      sq32[at + 1] = 1;
      sq32[at + 6] = data.iova % 0x1_0000_0000;
      sq32[at + 7] = Math.floor(data.iova / 0x1_0000_0000);
      const l = nextLba();
      sq32[at + 10] = l;
      sq32[at + 11] = 0;
      sq32[at + 12] = 0;
      queue.commit();
      q.freeCids[q.freeCidCount++] = cid;
    },
  });
  let slot = 0;
  cases.push({
    group: 'SQE encoding',
    name: 'writeSqe(view, offset, { opc, cid, nsid, prp1, cdw10..12 }) (nvme/spec.ts)',
    perOp: 1,
    fn: () => {
      slot = slot + 1 === ENTRIES ? 0 : slot + 1;
      writeSqe(queue.sqView, slot * SQE_SIZE_BYTES, { opc: NvmOpcode.READ, cid: slot, nsid: 1, prp1: data.iova, cdw10: nextLba(), cdw11: 0, cdw12: 0 });
    },
  });
}

// --- rings: submit, doorbell, CQE, reap ----------------------------------------
for (const batch of [1, BATCH]) {
  const { queue, controller, data } = newQueuePair();
  const sq32 = queue.sq32;
  cases.push({
    group: 'ring submit/reap (fake controller)',
    name: `QueuePair: ${batch} × (reserve, SQE, commit), ring, ${batch} CQEs, reap`,
    perOp: batch,
    fn: () => {
      for (let i = 0; i < batch; i++) {
        queue.reserve();
        const at = queue.sqeOffset >> 2;
        sq32[at] = (sq32[at]! | NvmOpcode.READ) >>> 0;
        sq32[at + 1] = 1;
        sq32[at + 6] = data.iova % 0x1_0000_0000;
        sq32[at + 7] = Math.floor(data.iova / 0x1_0000_0000);
        sq32[at + 10] = nextLba();
        queue.commit();
      }
      queue.ring();
      controller.complete(batch);
      queue.reap();
    },
  });
}
{
  const { controller } = newQueuePair();
  cases.push({
    group: 'ring submit/reap (fake controller)',
    name: `the fake controller alone: ${BATCH} CQEs (included above)`,
    perOp: BATCH,
    fn: () => controller.complete(BATCH),
  });
}

// --- the library path on a VsaQueue ------------------------------------------------
{
  const { vsa, controller } = newVsaQueue();
  const page = vsa.alloc(BLOCK);
  const pages = Array.from({ length: BATCH }, () => vsa.alloc(BLOCK));
  const big = vsa.alloc(128 * 1024);
  const plain = Buffer.alloc(BLOCK);
  const ranges128 = [{ offset: 0, length: 128 * 1024 }];
  let completions = 0;
  const done = (error: Error | null) => {
    if (error) throw error;
    completions++;
  };
  const oneCallback = (buffer: Uint8Array) => () => {
    vsa.readCallback(nextLba() * BLOCK, buffer, done);
    controller.complete(1);
    vsa.poll();
  };
  cases.push({ group: 'library path (VsaQueue, fake controller)', name: 'readCallback 4 KiB DMA buffer → CQE → poll → callback', perOp: 1, fn: oneCallback(page) });
  cases.push({
    group: 'library path (VsaQueue, fake controller)',
    name: `${BATCH} × readCallback 4 KiB → ${BATCH} CQEs → one poll`,
    perOp: BATCH,
    fn: () => {
      for (let i = 0; i < BATCH; i++) vsa.readCallback(nextLba() * BLOCK, pages[i]!, done);
      controller.complete(BATCH);
      vsa.poll();
    },
  });
  cases.push({
    group: 'PRP lists',
    name: 'readCallback 128 KiB, one DMA buffer (PRP1 + list of 31 entries)',
    perOp: 1,
    fn: () => {
      vsa.readCallback((nextLba() & ~31) * BLOCK, big, done);
      controller.complete(1);
      vsa.poll();
    },
  });
  cases.push({
    group: 'PRP lists',
    name: `readv 128 KiB into ${BATCH} separate 4 KiB DMA pages (PRP list from pieces)`,
    perOp: 1,
    fn: () => {
      ranges128[0]!.offset = (nextLba() & ~31) * BLOCK;
      vsa.readv(pages, ranges128).catch(() => {});
      controller.complete(1);
      vsa.poll();
    },
  });
  cases.push({ group: 'PRP lists', name: 'readCallback 4 KiB plain Buffer (bounced through registered memory)', perOp: 1, fn: oneCallback(plain) });
  // Promise forms: the I/O completes in the same turn; awaiting costs the microtask hops.
  const IOS = 256;
  cases.push({
    group: 'completion delivery',
    name: `await vsa.read 4 KiB, one at a time (${IOS} per op)`,
    perOp: IOS,
    fn: () => {},
    defer: async (deferred) => {
      for (let i = 0; i < IOS; i++) {
        const p = vsa.read(nextLba() * BLOCK, page);
        controller.complete(1);
        vsa.poll();
        await p;
      }
      deferred.resolve();
    },
  });
  cases.push({
    group: 'completion delivery',
    name: `readCallback 4 KiB, one at a time (${IOS} per op, same harness)`,
    perOp: IOS,
    fn: () => {},
    defer: async (deferred) => {
      for (let i = 0; i < IOS; i++) {
        vsa.readCallback(nextLba() * BLOCK, page, done);
        controller.complete(1);
        vsa.poll();
      }
      await undefined;
      deferred.resolve();
    },
  });
  const promises: Promise<void>[] = new Array(BATCH);
  cases.push({
    group: 'completion delivery',
    name: `${BATCH} × vsa.read 4 KiB → one poll → await each (${BATCH} per op)`,
    perOp: BATCH,
    fn: () => {},
    defer: async (deferred) => {
      for (let i = 0; i < BATCH; i++) promises[i] = vsa.read(nextLba() * BLOCK, pages[i]!);
      controller.complete(BATCH);
      vsa.poll();
      for (let i = 0; i < BATCH; i++) await promises[i];
      deferred.resolve();
    },
  });
  process.on('exit', () => {
    if (completions === 0 && !filter) process.stderr.write('no callback completed: the fake controller is broken\n');
  });
}

// --- primitives ------------------------------------------------------------------
{
  let sink = 0;
  const callback = (value: number) => {
    sink += value;
  };
  const N = 256;
  cases.push({
    group: 'primitives',
    name: `plain callback call (${N} per op)`,
    perOp: N,
    fn: () => {
      for (let i = 0; i < N; i++) callback(i);
    },
  });
  cases.push({
    group: 'primitives',
    name: `new Promise + resolve + await (${N} per op)`,
    perOp: N,
    fn: () => {},
    defer: async (deferred) => {
      for (let i = 0; i < N; i++) {
        let resolve!: (value: number) => void;
        const p = new Promise<number>((r) => (resolve = r));
        resolve(i);
        sink += await p;
      }
      deferred.resolve();
    },
  });
  cases.push({
    group: 'primitives',
    name: `queueMicrotask (Node's, async-hooks aware) (${N} per op)`,
    perOp: N,
    fn: () => {},
    defer: (deferred) => {
      let left = N;
      const step = () => (--left === 0 ? deferred.resolve() : queueMicrotask(step));
      queueMicrotask(step);
    },
  });
  cases.push({
    group: 'primitives',
    name: `Promise.resolve().then (a V8 microtask) (${N} per op)`,
    perOp: N,
    fn: () => {},
    defer: (deferred) => {
      let left = N;
      const resolved = Promise.resolve();
      const step = (): void => {
        if (--left === 0) deferred.resolve();
        else void resolved.then(step);
      };
      void resolved.then(step);
    },
  });
  cases.push({
    group: 'primitives',
    name: `setImmediate (one event-loop turn: what a poll costs) (${N} per op)`,
    perOp: N,
    fn: () => {},
    defer: (deferred) => {
      let left = N;
      const step = () => (--left === 0 ? deferred.resolve() : setImmediate(step));
      setImmediate(step);
    },
  });
  cases.push({ group: 'primitives', name: 'performance.now() (the bench clock)', perOp: 1, fn: () => void (sink += performance.now()) });
  process.on('exit', () => {
    if (sink === -1) process.stderr.write('');
  });
}

// ---------------------------------------------------------------------------

interface Result {
  group: string;
  name: string;
  opsPerSecond: number;
  nsPerOp: number;
  perOp: number;
  nsPerItem: number;
  rmePercent: number;
  samples: number;
  /** CPU other processes used while the case ran, % of one core. */
  othersCpuPercentOfCore: number;
}

function run(c: Case): Promise<Result> {
  return new Promise((resolve, reject) => {
    const options: Benchmark.Options = {
      maxTime,
      minSamples: 10,
      onComplete(this: Benchmark) {
        if (this.error) reject(this.error);
        const nsPerOp = 1e9 / this.hz;
        resolve({
          othersCpuPercentOfCore: NaN,
          group: c.group,
          name: c.name,
          opsPerSecond: this.hz,
          nsPerOp,
          perOp: c.perOp,
          nsPerItem: nsPerOp / c.perOp,
          rmePercent: this.stats.rme,
          samples: this.stats.sample.length,
        });
      },
      onError(this: Benchmark, event: Benchmark.Event) {
        reject((event.target as unknown as Benchmark).error);
      },
    };
    const bench = c.defer ? new Benchmark(c.name, { ...options, defer: true, fn: c.defer }) : new Benchmark(c.name, c.fn, options);
    bench.run({ async: true });
  });
}

async function main(): Promise<void> {
  const selected = cases.filter((c) => !filter || filter.test(`${c.group} ${c.name}`));
  const results: Result[] = [];
  let discarded = 0;
  for (const c of selected) {
    for (let attempt = 0; ; attempt++) {
      if (quietWaitMs > 0) await waitForQuiet({ maxWaitMs: quietWaitMs, maxBusyPercent: 25 });
      const machine0 = machineBusyNs();
      const own0 = processCpuNs(process.pid).cpuNs;
      const wall0 = performance.now();
      const result = await run(c);
      const wallNs = (performance.now() - wall0) * 1e6;
      const others = machineBusyNs() - machine0 - (processCpuNs(process.pid).cpuNs - own0);
      result.othersCpuPercentOfCore = Math.max(0, (others / wallNs) * 100);
      const disturbed = maxOthersPercent > 0 && result.othersCpuPercentOfCore > maxOthersPercent;
      process.stderr.write(
        `  ${c.name}: ${result.nsPerItem.toFixed(1)} ns${c.perOp > 1 ? ' per I/O' : ''} (±${result.rmePercent.toFixed(1)}%), others ${result.othersCpuPercentOfCore.toFixed(0)}%` +
          `${disturbed ? (attempt < retries ? ' — disturbed, again' : ' — disturbed, kept') : ''}\n`,
      );
      if (!disturbed || attempt >= retries) {
        results.push(result);
        break;
      }
      discarded++;
    }
  }
  const rows: Cell[][] = results.map((r) => [
    r.group,
    r.name,
    Math.round(r.opsPerSecond).toLocaleString('en-US'),
    r.nsPerOp.toFixed(1),
    r.perOp,
    r.nsPerItem.toFixed(1),
    `±${r.rmePercent.toFixed(1)}%`,
    `${r.othersCpuPercentOfCore.toFixed(0)}%`,
  ]);
  const text = [
    `offpath micro-benchmarks (benchmark.js, ${maxTime} s per case): ${cpus().length} CPUs (${cpus()[0]?.model.trim()}), Linux ${release()}, Node ${process.version}`,
    formatTable(['group', 'case', 'ops/s', 'ns/op', 'I/Os per op', 'ns per I/O', 'rme', 'others'], rows, 2),
    `rme = relative margin of error (95%); others = CPU other processes used meanwhile, % of a core` +
      (maxOthersPercent > 0 ? ` (cases above ${maxOthersPercent}% were run again up to ${retries} times: ${discarded} discarded)` : ''),
  ].join('\n');
  if (args.json) {
    process.stderr.write(`${text}\n`);
    const json = {
      bench: 'micro',
      host: { cpus: cpus().length, cpuModel: cpus()[0]?.model.trim(), kernel: release(), node: process.version },
      maxTime,
      discardedRuns: discarded,
      results,
    };
    process.stdout.write(`${JSON.stringify(json)}\n`);
  } else {
    process.stdout.write(`${text}\n`);
  }
}

await main();
