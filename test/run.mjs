// Runs every test/*.test.ts file in its own Node process (a native crash or
// a hang in one file cannot take the others down), then prints the totals as
// "N passed, N failed". Usage: node test/run.mjs [filter...]
import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const folder = dirname(fileURLToPath(import.meta.url));
const filters = process.argv.slice(2);
const files = readdirSync(folder)
  .filter((name) => name.endsWith('.test.ts'))
  .filter((name) => filters.length === 0 || filters.some((filter) => name.includes(filter)))
  .sort();
const perFileTimeoutMs = Number(process.env.OFFPATH_TEST_TIMEOUT_MS ?? 600_000);

function runFile(name) {
  return new Promise((resolve) => {
    const started = Date.now();
    const child = spawn(process.execPath, ['--import', 'tsx', join(folder, name)], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, FORCE_COLOR: '0' },
    });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n(timed out after ${perFileTimeoutMs} ms)\n`;
      child.kill('SIGKILL');
    }, perFileTimeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ name, code, signal, output, elapsedMs: Date.now() - started });
    });
  });
}

let passed = 0;
let failed = 0;
let skipped = 0;
for (const name of files) {
  const result = await runFile(name);
  // uvu prints "Total: N", "Passed: N", "Skipped: N" after each run.
  const count = (label) => Number(/\s+(\d+)/.exec(result.output.split(`${label}:`)[1] ?? '')?.[1] ?? 0);
  const total = count('Total');
  const ok = count('Passed');
  skipped += count('Skipped');
  const fileFailed = result.code !== 0 || ok < total - count('Skipped');
  passed += ok;
  // A file that died before reporting counts as one failure at least.
  failed += fileFailed ? Math.max(1, total - ok - count('Skipped')) : 0;
  const verdict = fileFailed ? 'FAIL' : 'ok  ';
  console.log(`${verdict} ${name}  ${ok}/${total}  ${(result.elapsedMs / 1000).toFixed(1)}s`);
  if (fileFailed || process.env.OFFPATH_TEST_VERBOSE) {
    console.log(result.output.replace(/^/gm, '    '));
    if (result.signal) console.log(`    (killed by ${result.signal})`);
  }
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed === 0 && files.length > 0 ? 0 : 1);
