/**
 * The guest suite's harness: tests run in registration order and build on
 * each other, each bounded by TEST_TIMEOUT_MS, with one summary line
 * ("N passed, N failed") at the end. uvu is not used in the guest: under
 * TCG every second of start-up counts, and a failed step must not stop the
 * steps that do not depend on it.
 *
 * Also here: the manifest of what should be in which backing image, which
 * the host checks after the VM exits.
 */
import { createHash } from 'node:crypto';
import { writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';

export const TEST_TIMEOUT_MS = 90_000;

interface GuestTest {
  name: string;
  fn: () => Promise<void> | void;
  /** Runs even when a name filter leaves out the tests around it. */
  setup: boolean;
}

const tests: GuestTest[] = [];
const finishers: Array<() => Promise<void> | void> = [];

export function test(name: string, fn: () => Promise<void> | void): void {
  tests.push({ name, fn, setup: false });
}

/** A test the ones after it rely on: kept by every filter. */
export function setup(name: string, fn: () => Promise<void> | void): void {
  tests.push({ name, fn, setup: true });
}

/** Runs after every test, pass or fail (releasing what a group of tests holds). */
export function finish(fn: () => Promise<void> | void): void {
  finishers.push(fn);
}

export interface ManifestEntry {
  nsid: number;
  offset: number;
  length: number;
  sha256: string;
}

/** What the host should find in the backing images after the VM exits. */
export const manifest: ManifestEntry[] = [];

export const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** Runs the registered tests whose names contain one of `filters` (all when empty), plus the setup ones. */
export async function runTests(filters: string[], describeTimeout: () => string = () => ''): Promise<never> {
  const selected = tests.filter((t) => t.setup || filters.length === 0 || filters.some((f) => t.name.includes(f)));
  if (process.env.OFFPATH_HW_TRACE) setInterval(() => writeSync(2, `  [alive ${(performance.now() / 1000).toFixed(1)} s]\n`), 2000).unref();
  let passed = 0;
  let failed = 0;
  const started = Date.now();
  for (const { name, fn } of selected) {
    const t0 = Date.now();
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${TEST_TIMEOUT_MS} ms ${describeTimeout()}`)), TEST_TIMEOUT_MS);
      });
      await Promise.race([fn(), timeout]);
      passed++;
      console.log(`ok   ${name} (${Date.now() - t0} ms)`);
    } catch (error) {
      failed++;
      console.log(`FAIL ${name} (${Date.now() - t0} ms)\n     ${error instanceof Error ? (error.stack ?? error.message).replace(/\n/g, '\n     ') : String(error)}`);
    } finally {
      clearTimeout(timer);
    }
  }
  for (const fn of finishers) await Promise.resolve().then(fn).catch((error) => console.log(`     cleanup: ${String(error)}`));
  const share = process.env.OFFPATH_HW_SHARE;
  if (share) writeFileSync(join(share, 'manifest.json'), JSON.stringify({ passed, failed, manifest }, null, 2));
  console.log(`${passed} passed, ${failed} failed (${((Date.now() - started) / 1000).toFixed(1)} s)`);
  process.exit(failed === 0 ? 0 : 1);
}
