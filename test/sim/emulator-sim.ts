// Seeded power-loss simulation of the emulator's backing store: a random
// workload (namespace create/resize/delete, attach/detach, QoS limits,
// writes with and without FUA into thinly provisioned namespaces, Flush,
// Deallocate, Write Zeroes) runs against an in-process EmuStore in power-loss
// mode until the power is cut — between two commands, or in the middle of
// one after a random number of backing writes. The image the cut leaves is
// reopened (recovery; sometimes cut again during recovery) and checked
// against a model of what the store promised:
//   - everything acknowledged as durable (Flush, FUA, namespace management)
//     is there and intact;
//   - every block reads as a version that was written to it (or zeroes) —
//     never garbage, never another block's or another namespace's data;
//   - namespaces made durable exist with their size, uuid and attachments,
//     and only the one being created at the cut may appear besides;
//   - recovery never fails, and leaves no chunk unaccounted for;
//   - the recovered store then works: more commands, a flush and a clean
//     reopen find exactly what was written.
// Everything comes from the seed: runEmulatorCut(seed) replays exactly.
import { existsSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Status, decodeBlock, patternBuffer } from '../fixtures/store-pattern.js';
import { Dice } from './dice.js';
import { PowerStore, SMALL_POOL_METADATA_BYTES, imageOfFailedOpen, type PowerLossOptions, type PowerStoreOptions, type StoreImage } from './power-store.js';
import { Problems } from './problems.js';
import { reopenImage } from './reopen.js';
import type { CutOptions, CutOutcome } from './target.js';

const KiB = 1024;
const MiB = 1024 * KiB;
const MAX_NAMESPACES = 4;
const CONTROLLERS = 6;
const TRACE = Boolean(process.env.OFFPATH_SIM_TRACE);

/** Per block: the version last made durable and those written since (op ids; 0 = zeroes). */
interface BlockModel {
  durable: number;
  after: number[];
}

interface NamespaceModel {
  nsid: number;
  blockBytes: number;
  blocks: BlockModel[];
  attached: Set<number>;
  uuid: string;
}

interface Limits {
  iops: number;
  bytesPerSecond: number;
}

interface Model {
  namespaces: Map<number, NamespaceModel>;
  limits: Map<number, Limits>;
}

/** A metadata command the cut interrupted: its effect may or may not be there. */
type InFlight =
  | { kind: 'create'; nsid: number; sizeBlocks: number; blockBytes: number }
  | { kind: 'delete'; nsid: number }
  | { kind: 'resize'; nsid: number; from: number; to: number }
  | { kind: 'attach' | 'detach'; nsid: number; cntlid: number }
  | { kind: 'limits'; cntlid: number; limits: Limits };

export interface EmulatorCutResult extends CutOutcome {
  problems: string[];
  extraCuts: number;
  /** Commands run before the cut. */
  operations: number;
  /** Where the power went off: 'between' commands, 'during' one, or 'format'. */
  cutPoint: 'between' | 'during' | 'format';
  pendingWrites: number;
  dropped: number;
  torn: number;
}

function latest(block: BlockModel): number {
  return block.after.length > 0 ? block.after[block.after.length - 1]! : block.durable;
}

class Simulation extends Dice {
  readonly model: Model = { namespaces: new Map(), limits: new Map() };
  readonly problems = new Problems();
  store!: PowerStore;
  inFlight: InFlight | undefined;
  nextOp = 1;
  operations = 0;
  extraCuts = 0;
  chunkBytes = 4096;
  tear512 = false;
  dir: string | undefined;
  kind: 'memory' | 'file' = 'memory';
  survive = 0.5;
  tear = true;
  inOrder = false;
  cacheBytes = 64 * MiB;
  hotChunk = 0;

  constructor(
    seed: number,
    readonly options: CutOptions,
  ) {
    super(seed);
  }

  /** OFFPATH_SIM_TRACE=1: every command and its result on stderr (for replaying a seed). */
  trace(line: string): void {
    if (TRACE) process.stderr.write(`[${this.seed}] ${line}\n`);
  }

  powerLoss(extra: Record<string, number> = {}): PowerLossOptions {
    return {
      seed: this.seed,
      survive: this.survive,
      tear: this.tear,
      inOrder: this.inOrder,
      tearBytes: this.tear512 ? 512 : 4096,
      cacheBytes: this.cacheBytes,
      ...extra,
    };
  }

  // ---- configuration -------------------------------------------------------

  /** A small pool, so chunks run out, get freed and are reused (dirty) often. */
  poolOptions(): PowerStoreOptions {
    this.chunkBytes = this.pick([4 * KiB, 16 * KiB, 64 * KiB]);
    this.tear512 = this.chance(0.15);
    this.survive = this.pick([0, 0.25, 0.5, 0.75, 1, this.random()]);
    this.tear = this.chance(0.8);
    // Issue order with everything surviving untorn is a process kill.
    this.inOrder = this.chance(0.2);
    // Now and then a cache so small that it writes data back on its own.
    if (this.chance(0.25)) this.cacheBytes = (2 + this.int(14)) * 4 * KiB;
    const dataChunks = 12 + this.int(this.chunkBytes === 4 * KiB ? 240 : 48);
    this.hotChunk = this.int(8);
    if (this.chance(0.5)) {
      // Two file members (on tmpfs when there is one): the metadata on
      // member 0 only, the data mostly on member 1, where syncing the
      // metadata does not make it durable too.
      this.kind = 'file';
      this.dir = mkdtempSync(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'offpath-sim-'));
      const paths = [join(this.dir, 'm0.img'), join(this.dir, 'm1.img')];
      const second = dataChunks - 1 - this.int(3);
      writeFileSync(paths[0]!, '');
      truncateSync(paths[0]!, SMALL_POOL_METADATA_BYTES + (dataChunks - second) * this.chunkBytes);
      writeFileSync(paths[1]!, '');
      truncateSync(paths[1]!, this.chunkBytes + second * this.chunkBytes);
      return { kind: 'file', paths, chunkBytes: this.chunkBytes, powerLoss: this.powerLoss() };
    }
    return { kind: 'memory', sizeBytes: SMALL_POOL_METADATA_BYTES + dataChunks * this.chunkBytes, chunkBytes: this.chunkBytes, powerLoss: this.powerLoss() };
  }

  cleanup(): void {
    if (this.dir !== undefined) rmSync(this.dir, { recursive: true, force: true });
  }

  // ---- the workload --------------------------------------------------------

  lowestFreeNsid(): number {
    let nsid = 1;
    while (this.model.namespaces.has(nsid)) nsid++;
    return nsid;
  }

  pickNamespace(): NamespaceModel | undefined {
    const all = [...this.model.namespaces.values()];
    return all.length === 0 ? undefined : this.pick(all);
  }

  /** A metadata call: true when it returned, false when the power went off during it. */
  metadata(call: () => void, inFlight: InFlight, what: string): boolean {
    try {
      call();
      this.trace(`${what} ${JSON.stringify(inFlight)} -> ok`);
      return true;
    } catch (error) {
      this.trace(`${what} ${JSON.stringify(inFlight)} -> ${String(error)}`);
      if (this.store.powerLost) {
        this.inFlight = inFlight;
        return false;
      }
      this.problems.note('unrecoverable', `${what} failed without a power cut: ${String(error)}`);
      return false;
    }
  }

  /** A data call's status: true when acknowledged; folds unexpected failures into problems. */
  acknowledged(status: number, what: string, allowed: number[] = []): boolean {
    if (status === Status.SUCCESS) return true;
    if (this.store.powerLost || allowed.includes(status)) return false;
    this.problems.note('unrecoverable', `${what} failed with status 0x${status.toString(16)} without a power cut`);
    return false;
  }

  createNamespace(): void {
    const blockBytes = this.tear512 || this.chance(0.5) ? 512 : 4096;
    const capacityBlocks = Math.floor((this.store.capacityBytes * 0.6) / blockBytes);
    const sizeBlocks = 1 + this.int(Math.min(capacityBlocks, blockBytes === 512 ? 768 : 96));
    const nsid = this.lowestFreeNsid();
    let created = 0;
    if (!this.metadata(() => (created = this.store.createNamespace(sizeBlocks, blockBytes)), { kind: 'create', nsid, sizeBlocks, blockBytes }, 'create'))
      return;
    if (created !== nsid) this.problems.note('unrecoverable', `create returned nsid ${created}, expected the lowest free, ${nsid}`);
    const info = this.store.namespaces().find((ns) => ns.nsid === created)!;
    this.model.namespaces.set(created, {
      nsid: created,
      blockBytes,
      blocks: Array.from({ length: sizeBlocks }, () => ({ durable: 0, after: [] })),
      attached: new Set(),
      uuid: info.uuid,
    });
  }

  /**
   * Where a command starts: most go to a hot spot of two chunks, so that
   * writes, deallocations and reallocations of the same chunks pile up
   * between durability points.
   */
  start(ns: NamespaceModel): number {
    const size = ns.blocks.length;
    const perChunk = this.chunkBytes / ns.blockBytes;
    if (this.chance(0.4) || size <= 2 * perChunk) return this.int(size);
    const hot = Math.min(this.hotChunk, Math.floor(size / perChunk) - 2) * perChunk;
    return hot + this.int(2 * perChunk);
  }

  write(ns: NamespaceModel, fua: boolean): void {
    const size = ns.blocks.length;
    const lba = this.start(ns);
    const blocks = 1 + this.int(Math.min(ns.blockBytes === 512 ? 64 : 12, size - lba));
    const id = this.nextOp++;
    const status = this.store.write(ns.nsid, lba, blocks, patternBuffer(blocks, ns.blockBytes, id, ns.nsid, lba), fua);
    this.trace(`write${fua ? ' fua' : ''} op ${id} ns ${ns.nsid} lba ${lba}+${blocks} -> 0x${status.toString(16)}`);
    const done = this.acknowledged(status, `write ns ${ns.nsid} lba ${lba}+${blocks}`, [Status.CAPACITY_EXCEEDED]);
    if (!done && !this.store.powerLost) return; // the pool is full: nothing moved
    for (let i = 0; i < blocks; i++) {
      const block = ns.blocks[lba + i]!;
      if (done && fua) {
        block.durable = id;
        block.after = [];
      } else {
        block.after.push(id);
      }
    }
  }

  /** A range, chunk-aligned half the time (so whole chunks go back to the pool). */
  range(ns: NamespaceModel): [number, number] {
    const size = ns.blocks.length;
    const perChunk = this.chunkBytes / ns.blockBytes;
    const lba = this.start(ns);
    if (this.chance(0.5)) {
      const aligned = lba - (lba % perChunk);
      return [aligned, Math.min(size - aligned, perChunk * (1 + this.int(2)))];
    }
    return [lba, 1 + this.int(Math.min(size - lba, perChunk * 2))];
  }

  zero(ns: NamespaceModel, how: 'deallocate' | 'zeroes', fua: boolean): void {
    const [lba, blocks] = this.range(ns);
    const status = how === 'deallocate' ? this.store.deallocate(ns.nsid, lba, blocks) : this.store.writeZeroes(ns.nsid, lba, blocks, fua);
    this.trace(`${how}${fua ? ' fua' : ''} ns ${ns.nsid} lba ${lba}+${blocks} -> 0x${status.toString(16)}`);
    const done = this.acknowledged(status, `${how} ns ${ns.nsid} lba ${lba}+${blocks}`);
    if (!done && !this.store.powerLost) return;
    for (let i = 0; i < blocks; i++) {
      const block = ns.blocks[lba + i]!;
      if (done && fua) {
        block.durable = 0;
        block.after = [];
      } else {
        block.after.push(0);
      }
    }
  }

  flush(): void {
    const status = this.store.flush();
    this.trace(`flush -> 0x${status.toString(16)}`);
    if (!this.acknowledged(status, 'flush')) return;
    for (const ns of this.model.namespaces.values()) {
      for (const block of ns.blocks) {
        block.durable = latest(block);
        block.after = [];
      }
    }
  }

  resize(ns: NamespaceModel): void {
    const from = ns.blocks.length;
    const capacityBlocks = Math.floor((this.store.capacityBytes * 0.6) / ns.blockBytes);
    const to = 1 + this.int(Math.min(capacityBlocks, ns.blockBytes === 512 ? 768 : 96));
    if (!this.metadata(() => this.store.resizeNamespace(ns.nsid, to), { kind: 'resize', nsid: ns.nsid, from, to }, 'resize')) return;
    if (to < from) ns.blocks.length = to;
    while (ns.blocks.length < to) ns.blocks.push({ durable: 0, after: [] });
  }

  deleteNamespace(ns: NamespaceModel): void {
    if (!this.metadata(() => this.store.deleteNamespace(ns.nsid), { kind: 'delete', nsid: ns.nsid }, 'delete')) return;
    this.model.namespaces.delete(ns.nsid);
  }

  attachOrDetach(ns: NamespaceModel): void {
    const cntlid = 1 + this.int(CONTROLLERS);
    const kind = ns.attached.has(cntlid) ? 'detach' : 'attach';
    const call = () => (kind === 'attach' ? this.store.attach(ns.nsid, cntlid) : this.store.detach(ns.nsid, cntlid));
    if (!this.metadata(call, { kind, nsid: ns.nsid, cntlid }, kind)) return;
    if (kind === 'attach') ns.attached.add(cntlid);
    else ns.attached.delete(cntlid);
  }

  setLimits(): void {
    const cntlid = 1 + this.int(CONTROLLERS);
    const limits = this.chance(0.3) ? { iops: 0, bytesPerSecond: 0 } : { iops: this.int(100000), bytesPerSecond: this.int(1 << 30) };
    if (!this.metadata(() => this.store.setLimits(cntlid, limits.iops, limits.bytesPerSecond), { kind: 'limits', cntlid, limits }, 'setLimits'))
      return;
    if (limits.iops === 0 && limits.bytesPerSecond === 0) this.model.limits.delete(cntlid);
    else this.model.limits.set(cntlid, limits);
  }

  /** While the power is on, a read returns exactly the latest version. */
  readCheck(ns: NamespaceModel): void {
    const size = ns.blocks.length;
    const lba = this.int(size);
    const blocks = 1 + this.int(Math.min(64, size - lba));
    const buffer = Buffer.alloc(blocks * ns.blockBytes);
    const status = this.store.read(ns.nsid, lba, blocks, buffer);
    if (!this.acknowledged(status, `read ns ${ns.nsid} lba ${lba}+${blocks}`)) return;
    for (let i = 0; i < blocks; i++) {
      const got = decodeBlock(buffer, i * ns.blockBytes, ns.blockBytes, ns.nsid, lba + i);
      const expected = latest(ns.blocks[lba + i]!);
      if (got !== expected)
        this.problems.note('lost', `ns ${ns.nsid} lba ${lba + i} read ${got === -1 ? 'garbage' : `op ${got}`} before any cut, expected op ${expected}`);
    }
  }

  step(): void {
    this.operations++;
    const ns = this.pickNamespace();
    if (ns === undefined) return this.createNamespace();
    const roll = this.random() * 100;
    if (roll < 43) return this.write(ns, false);
    if (roll < 51) return this.write(ns, true);
    if (roll < 57) return this.flush();
    if (roll < 70) return this.zero(ns, 'deallocate', false);
    if (roll < 80) return this.zero(ns, 'zeroes', this.chance(0.4));
    if (roll < 83) return this.model.namespaces.size < MAX_NAMESPACES ? this.createNamespace() : this.write(ns, false);
    if (roll < 84.5) return this.deleteNamespace(ns);
    if (roll < 87.5) return this.resize(ns);
    if (roll < 89.5) return this.attachOrDetach(ns);
    if (roll < 91) return this.setLimits();
    return this.readCheck(ns);
  }

  // ---- after the cut -------------------------------------------------------

  /** Reopens an image (recovery), sometimes cutting the power again during it. */
  recover(image: StoreImage, allowCut: boolean): PowerStore | undefined {
    const cutDuring = allowCut && this.chance(0.1);
    const { store, extraCuts } = reopenImage(image, this.powerLoss(), cutDuring ? 1 + this.int(4) : undefined, this.problems);
    this.extraCuts += extraCuts;
    return store;
  }

  /** Checks the recovered store against the model, then makes the model what was found. */
  verify(store: PowerStore, when: string): void {
    const flight = this.inFlight;
    const actual = new Map(store.namespaces().map((ns) => [ns.nsid, ns]));
    for (const [nsid, info] of actual) {
      if (this.model.namespaces.has(nsid)) continue;
      if (flight?.kind === 'create' && flight.nsid === nsid && flight.sizeBlocks === info.sizeBlocks && flight.blockBytes === info.blockBytes) {
        this.model.namespaces.set(nsid, {
          nsid,
          blockBytes: info.blockBytes,
          blocks: Array.from({ length: info.sizeBlocks }, () => ({ durable: 0, after: [] })),
          attached: new Set(),
          uuid: info.uuid,
        });
        continue;
      }
      this.problems.note('lost', `${when}: namespace ${nsid} (${info.sizeBlocks} × ${info.blockBytes}) appeared from nowhere`);
    }
    let usedChunks = 0;
    for (const [nsid, ns] of [...this.model.namespaces]) {
      const info = actual.get(nsid);
      if (info === undefined) {
        if (!(flight?.kind === 'delete' && flight.nsid === nsid))
          this.problems.note('lost', `${when}: namespace ${nsid} is gone`);
        this.model.namespaces.delete(nsid);
        continue;
      }
      if (info.blockBytes !== ns.blockBytes || info.uuid !== ns.uuid) {
        this.problems.note('lost', `${when}: namespace ${nsid} changed identity (block ${info.blockBytes}, uuid ${info.uuid})`);
        this.model.namespaces.delete(nsid);
        continue;
      }
      const resizing = flight?.kind === 'resize' && flight.nsid === nsid ? flight : undefined;
      if (info.sizeBlocks !== ns.blocks.length && info.sizeBlocks !== resizing?.to)
        this.problems.note('lost', `${when}: namespace ${nsid} has ${info.sizeBlocks} blocks, expected ${ns.blocks.length}`);
      const attached = new Set(info.attached);
      const toggled = (flight?.kind === 'attach' || flight?.kind === 'detach') && flight.nsid === nsid ? flight.cntlid : undefined;
      for (let cntlid = 1; cntlid <= CONTROLLERS; cntlid++) {
        if (attached.has(cntlid) !== ns.attached.has(cntlid) && cntlid !== toggled)
          this.problems.note('lost', `${when}: namespace ${nsid} ${attached.has(cntlid) ? 'is' : 'is not'} attached to controller ${cntlid}`);
      }
      ns.attached = attached;
      const found = this.readAll(store, nsid, info.sizeBlocks, ns.blockBytes);
      let wrong = 0;
      for (let lba = 0; lba < info.sizeBlocks; lba++) {
        const got = found[lba]!;
        const block = ns.blocks[lba];
        const shrunkAway = resizing !== undefined && resizing.to < resizing.from && lba >= resizing.to;
        const ok = got !== -1 && (block === undefined ? got === 0 : got === block.durable || block.after.includes(got) || (shrunkAway && got === 0));
        if (ok) continue;
        wrong++;
        if (wrong <= 2)
          this.problems.note(
            'lost',
            `${when}: ns ${nsid} lba ${lba} holds ${got === -1 ? 'garbage' : got === 0 ? 'zeroes' : `op ${got}`}, expected ${block === undefined ? 'zeroes' : `op ${block.durable}${block.after.length ? ` or one of [${block.after.join(',')}]` : ''} (durable first)`}`,
          );
        else this.problems.lost++;
      }
      ns.blocks = found.map((version) => ({ durable: Math.max(version, 0), after: [] }));
      usedChunks += Math.ceil((info.allocatedBlocks * ns.blockBytes) / this.chunkBytes);
    }
    const limits = new Map(store.limits().map((entry) => [entry.cntlid, entry]));
    for (let cntlid = 1; cntlid <= CONTROLLERS; cntlid++) {
      const want = this.model.limits.get(cntlid);
      const got = limits.get(cntlid);
      const same = (a?: Limits, b?: Limits) => (a?.iops ?? 0) === (b?.iops ?? 0) && (a?.bytesPerSecond ?? 0) === (b?.bytesPerSecond ?? 0);
      const alternative = flight?.kind === 'limits' && flight.cntlid === cntlid ? flight.limits : undefined;
      if (!same(want, got) && !(alternative !== undefined && same(alternative, got)))
        this.problems.note('lost', `${when}: QoS limits of controller ${cntlid} are ${JSON.stringify(got ?? null)}, expected ${JSON.stringify(want ?? null)}`);
      if (got === undefined) this.model.limits.delete(cntlid);
      else this.model.limits.set(cntlid, { iops: got.iops, bytesPerSecond: got.bytesPerSecond });
    }
    const inUse = store.capacityBytes - store.freeBytes;
    if (inUse !== usedChunks * this.chunkBytes)
      this.problems.note('unrecoverable', `${when}: ${inUse / this.chunkBytes} chunks in use but namespaces hold ${usedChunks}`);
    this.inFlight = undefined;
  }

  readAll(store: PowerStore, nsid: number, sizeBlocks: number, blockBytes: number): number[] {
    const found: number[] = [];
    const step = Math.max(1, Math.floor((128 * KiB) / blockBytes));
    const buffer = Buffer.alloc(step * blockBytes);
    for (let lba = 0; lba < sizeBlocks; lba += step) {
      const count = Math.min(step, sizeBlocks - lba);
      const status = store.read(nsid, lba, count, buffer.subarray(0, count * blockBytes));
      if (status !== Status.SUCCESS) {
        this.problems.note('unrecoverable', `reading ns ${nsid} lba ${lba}+${count} after recovery: status 0x${status.toString(16)}`);
        for (let i = 0; i < count; i++) found.push(-1);
        continue;
      }
      for (let i = 0; i < count; i++) found.push(decodeBlock(buffer, i * blockBytes, blockBytes, nsid, lba + i));
    }
    return found;
  }

  // ---- one cut -------------------------------------------------------------

  run(): EmulatorCutResult {
    const result: EmulatorCutResult = {
      lost: 0,
      unrecoverable: 0,
      problems: [],
      extraCuts: 0,
      operations: 0,
      cutPoint: 'between',
      pendingWrites: 0,
      dropped: 0,
      torn: 0,
    };
    try {
      this.runPhases(result);
    } finally {
      try {
        if (this.store !== undefined && !this.store.closed) this.store.close();
      } catch {
        // already dead
      }
      this.cleanup();
    }
    result.lost = this.problems.lost;
    result.unrecoverable = this.problems.unrecoverable;
    result.problems = this.problems.lines;
    result.extraCuts = this.extraCuts;
    result.operations = this.operations;
    return result;
  }

  runPhases(result: EmulatorCutResult): void {
    const options = this.poolOptions();
    let image: StoreImage;
    // 1. Power on (a fresh pool is formatted); now and then the cut comes
    // during the format itself.
    if (this.kind === 'memory' && this.chance(0.05)) {
      result.cutPoint = 'format';
      try {
        this.store = new PowerStore({ ...options, powerLoss: this.powerLoss({ cutAfterWrites: 1 + this.int(5) }) });
        this.store.armCut(0);
        image = this.store.cut({ seed: this.seed, tear: this.tear, survive: this.survive, inOrder: this.inOrder });
      } catch (error) {
        const left = imageOfFailedOpen(error);
        if (left === undefined) throw error;
        image = left;
      }
    } else {
      this.store = new PowerStore(options);
      if (this.options.brokenFlush) this.store.setBrokenFlush(true);
      // 2. The workload, and the cut: armed to strike a few backing writes
      // into some command, or between two commands.
      const length = 10 + this.int(70);
      const armAt = this.chance(0.7) ? this.int(length) : -1;
      for (let op = 0; op < length && !this.store.powerLost; op++) {
        if (op === armAt) this.store.armCut(1 + this.int(6));
        this.step();
      }
      result.cutPoint = this.store.powerLost ? 'during' : 'between';
      image = this.store.cut({ seed: this.seed, tear: this.tear, survive: this.survive, inOrder: this.inOrder });
      this.trace(`cut ${result.cutPoint}: ${JSON.stringify(image.report)}`);
    }
    result.pendingWrites = image.report.pendingWrites;
    result.dropped = image.report.dropped;
    result.torn = image.report.torn;

    // 3. Recovery, and the check against what was promised.
    const recovered = this.recover(image, true);
    if (recovered === undefined) return;
    this.store = recovered;
    this.verify(this.store, `after the cut (${result.cutPoint})`);

    // 4. The recovered store must work: a few more commands, a flush, and a
    // cut that finds nothing pending must give back exactly what was written.
    const more = 3 + this.int(12);
    for (let op = 0; op < more; op++) this.step();
    this.flush();
    const settled = this.store.cut({ seed: this.seed + 1, survive: 0 });
    if (settled.report.pendingWrites !== 0)
      this.problems.note('unrecoverable', `${settled.report.pendingWrites} writes still pending after an acknowledged flush`);
    const again = this.recover(settled, false);
    if (again === undefined) return;
    this.store = again;
    this.verify(this.store, 'after more commands, a flush and a clean reopen');
  }
}

/** One seeded cut against the emulator's store (in-process, memory or small files on tmpfs). */
export function runEmulatorCut(seed: number, options: CutOptions = {}): EmulatorCutResult {
  return new Simulation(seed >>> 0, options).run();
}
