// kill -9 at random points: a child process (fixtures/store-writer.ts) runs a
// random workload against a file-backed pool and reports each operation
// before starting it and after it is acknowledged; the parent kills it with
// SIGKILL, reopens the pool and checks that every namespace and every
// acknowledged write is there, that the one operation in flight left each
// block either as it was or as it would be, and that no chunk leaked. The
// rounds continue on the same pool, so each also recovers from the last.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnFixture, waitForLine } from './helpers/child.js';
import { EmuStore, Status, decodeBlock, prng, type EmuStore as Store } from './fixtures/store-pattern.js';
import { WRITER_POOL, writerPaths } from './fixtures/store-writer.js';

interface ModelNamespace {
  sizeBlocks: number;
  blockBytes: number;
  /** Per block: the op id that last wrote it, 0 for zeroes. */
  blocks: number[];
  uuid?: string;
  nguid?: string;
}

interface Operation {
  kind: string;
  id: number;
  args: number[];
}

type Model = Map<number, ModelNamespace>;

function parse(output: string): { done: Map<number, [Operation, number]>; pending: Operation | undefined; last: number } {
  const started = new Map<number, Operation>();
  const done = new Map<number, [Operation, number]>();
  let last = 0;
  for (const line of output.split('\n')) {
    const parts = line.split(' ');
    if (parts[0] === 'B' && parts.length >= 3) {
      const operation = { kind: parts[1]!, id: Number(parts[2]), args: parts.slice(3).map(Number) };
      started.set(operation.id, operation);
      last = Math.max(last, operation.id);
    } else if (parts[0] === 'A' && parts.length === 3) {
      const id = Number(parts[1]);
      done.set(id, [started.get(id)!, Number(parts[2])]);
      started.delete(id);
    }
  }
  assert.ok(started.size <= 1, 'at most one operation in flight');
  return { done, pending: [...started.values()][0], last };
}

// Applies an acknowledged operation to the model.
function apply(model: Model, operation: Operation, result: number): void {
  const [a = 0, b = 0, c = 0] = operation.args;
  switch (operation.kind) {
    case 'W':
      if (result === Status.SUCCESS) for (let i = 0; i < c; i++) model.get(a)!.blocks[b + i] = operation.id;
      else assert.unreachable(`write ${operation.id} failed with status ${result}`);
      break;
    case 'D':
    case 'Z':
      assert.is(result, Status.SUCCESS, `op ${operation.id}`);
      for (let i = 0; i < c; i++) model.get(a)!.blocks[b + i] = 0;
      break;
    case 'C':
      model.set(result, { sizeBlocks: a, blockBytes: b, blocks: new Array(a).fill(0) });
      break;
    case 'R': {
      const ns = model.get(a)!;
      if (b < ns.sizeBlocks) ns.blocks.length = b;
      else while (ns.blocks.length < b) ns.blocks.push(0);
      ns.sizeBlocks = b;
      break;
    }
    case 'X':
      model.delete(a);
      break;
    case 'F':
      assert.is(result, Status.SUCCESS);
      break;
    default:
      assert.unreachable(`unknown op ${operation.kind}`);
  }
}

function lowestFreeNsid(model: Model): number {
  let nsid = 1;
  while (model.has(nsid)) nsid++;
  return nsid;
}

function readAll(store: Store, nsid: number, sizeBlocks: number, blockBytes: number): number[] {
  const found: number[] = [];
  const step = Math.max(1, Math.floor((256 * 1024) / blockBytes));
  const buffer = Buffer.alloc(step * blockBytes);
  for (let lba = 0; lba < sizeBlocks; lba += step) {
    const count = Math.min(step, sizeBlocks - lba);
    assert.is(store.read(nsid, lba, count, buffer.subarray(0, count * blockBytes)), Status.SUCCESS);
    for (let i = 0; i < count; i++) found.push(decodeBlock(buffer, i * blockBytes, blockBytes, nsid, lba + i));
  }
  return found;
}

// Checks the reopened store against the model and the in-flight operation,
// then makes the model what was found (the in-flight op resolved either way).
function verify(store: Store, model: Model, pending: Operation | undefined, round: number): void {
  const actual = new Map(store.namespaces().map((ns) => [ns.nsid, ns]));
  const where = (nsid: number, lba?: number) => `round ${round}, ns ${nsid}${lba === undefined ? '' : ` lba ${lba}`}`;
  // Namespaces: the model's, give or take the one being created or deleted.
  for (const nsid of actual.keys()) {
    if (model.has(nsid)) continue;
    assert.ok(pending?.kind === 'C' && nsid === lowestFreeNsid(model), `${where(nsid)}: unexpected namespace`);
    const [sizeBlocks, blockBytes] = pending!.args as [number, number];
    assert.is(actual.get(nsid)!.sizeBlocks, sizeBlocks);
    assert.is(actual.get(nsid)!.blockBytes, blockBytes);
    model.set(nsid, { sizeBlocks, blockBytes, blocks: new Array(sizeBlocks).fill(0) });
  }
  for (const nsid of [...model.keys()]) {
    if (actual.has(nsid)) continue;
    assert.ok(pending?.kind === 'X' && pending.args[0] === nsid, `${where(nsid)}: namespace lost`);
    model.delete(nsid);
  }
  let usedChunks = 0;
  for (const [nsid, ns] of model) {
    const info = actual.get(nsid)!;
    assert.is(info.blockBytes, ns.blockBytes, where(nsid));
    if (ns.uuid !== undefined) {
      assert.is(info.uuid, ns.uuid, `${where(nsid)}: uuid changed`);
      assert.is(info.nguid, ns.nguid, `${where(nsid)}: nguid changed`);
    }
    ns.uuid = info.uuid;
    ns.nguid = info.nguid;
    const touches = (lba: number) => {
      if (pending === undefined || pending.args[0] !== nsid) return undefined;
      const [, start = 0, count = 0] = pending.args;
      if ((pending.kind === 'W' || pending.kind === 'D' || pending.kind === 'Z') && lba >= start && lba < start + count)
        return pending.kind === 'W' ? pending.id : 0;
      return undefined;
    };
    // Size: as modelled, or the in-flight resize's.
    let sizeBlocks = ns.sizeBlocks;
    if (info.sizeBlocks !== sizeBlocks) {
      assert.ok(pending?.kind === 'R' && pending.args[0] === nsid && pending.args[1] === info.sizeBlocks, `${where(nsid)}: size ${info.sizeBlocks}, expected ${sizeBlocks}`);
      sizeBlocks = info.sizeBlocks;
    }
    const shrinking = pending?.kind === 'R' && pending.args[0] === nsid && pending.args[1]! < ns.sizeBlocks ? pending.args[1]! : undefined;
    const found = readAll(store, nsid, sizeBlocks, ns.blockBytes);
    for (let lba = 0; lba < sizeBlocks; lba++) {
      const expected = lba < ns.blocks.length ? ns.blocks[lba]! : 0;
      const got = found[lba]!;
      if (got === expected) continue;
      const alternative = touches(lba);
      const droppedByShrink = shrinking !== undefined && lba >= shrinking && got === 0;
      if (got !== -1 && (got === alternative || droppedByShrink)) continue;
      assert.unreachable(`${where(nsid, lba)}: found ${got === -1 ? 'garbage' : `op ${got}`}, expected op ${expected}${alternative === undefined ? '' : ` or ${alternative}`}`);
    }
    ns.sizeBlocks = sizeBlocks;
    ns.blocks = found;
    usedChunks += Math.ceil((info.allocatedBlocks * ns.blockBytes) / WRITER_POOL.chunkBytes);
  }
  // Every chunk is either free or belongs to a namespace: nothing leaked.
  assert.is(store.capacityBytes - store.freeBytes, usedChunks * WRITER_POOL.chunkBytes, `round ${round}: chunk accounting`);
}

test('every acknowledged write and namespace survives SIGKILL at random points', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'offpath-store-crash-'));
  try {
    const model: Model = new Map();
    const random = prng(20240601);
    let nextOp = 1;
    let acknowledged = 0;
    const rounds = 12;
    const inFlight: Record<string, number> = {};
    for (let round = 1; round <= rounds; round++) {
      const seed = 1000 + round;
      const child = spawnFixture('store-writer.ts', [dir, String(seed), String(nextOp)]);
      let stdout = '';
      child.process.stdout!.on('data', (chunk) => (stdout += chunk));
      await waitForLine(child, 'ready');
      // From a few milliseconds to a few hundred.
      const delayMs = Math.floor(5 + random() * random() * 400);
      await new Promise((resolve) => setTimeout(resolve, delayMs));
      child.process.kill('SIGKILL');
      const exit = await child.done.then(
        () => 'exited by itself',
        (error: Error) => error.message,
      );
      assert.match(exit, /SIGKILL/, `the writer did not die by SIGKILL: ${exit}`);
      const { done, pending, last } = parse(stdout);
      inFlight[pending?.kind ?? 'none'] = (inFlight[pending?.kind ?? 'none'] ?? 0) + 1;
      for (const [operation, result] of [...done.values()].sort((x, y) => x[0].id - y[0].id)) apply(model, operation, result);
      acknowledged += done.size;
      nextOp = last + 1;
      const store = new EmuStore({ kind: 'file', paths: writerPaths(dir) });
      try {
        verify(store, model, pending, round);
      } finally {
        store.close();
      }
    }
    assert.ok(acknowledged > rounds * 20, `only ${acknowledged} operations were acknowledged`);
    console.log(`  ${acknowledged} operations acknowledged in ${rounds} rounds; killed during: ${JSON.stringify(inFlight)}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.run();
