// Fuzzing, bounded for CI: the control sockets (daemon, emulator PF/VF) for
// about 10 s against real processes, and the emulator's command path under
// libFuzzer for 20 s when clang with libFuzzer is installed. Both replay the
// reproducers kept in fuzz/regressions/ first; findings listed in
// fuzz/known-findings (reported, not fixed yet) are stepped around.
// OFFPATH_FUZZ_SEED=N reproduces a run.
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const runScript = join(repoRoot, 'fuzz', 'run.sh');
const seed = Number(process.env.OFFPATH_FUZZ_SEED ?? Date.now() % 2 ** 31);

function run(args: string[], timeoutMs: number): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(runScript, args, { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: '0' } });
    let output = '';
    child.stdout.on('data', (chunk) => (output += chunk));
    child.stderr.on('data', (chunk) => (output += chunk));
    const timer = setTimeout(() => {
      output += `\n(killed after ${timeoutMs} ms)`;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}

/** Why the libFuzzer targets cannot be built here, or undefined if they can. */
function noLibFuzzer(): string | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'offpath-fuzz-probe-'));
  try {
    const source = join(dir, 'probe.cc');
    writeFileSync(source, '#include <cstddef>\n#include <cstdint>\nextern "C" int LLVMFuzzerTestOneInput(const uint8_t*, size_t) { return 0; }\n');
    for (const cxx of [process.env.CXX, 'clang++', 'clang++-19', 'clang++-18', 'clang++-17', 'clang++-16', 'clang++-15', 'clang++-14']) {
      if (!cxx) continue;
      const probe = spawnSync(cxx, ['-fsanitize=fuzzer,address,undefined', source, '-o', join(dir, 'probe')], { encoding: 'utf8', timeout: 60_000 });
      if (probe.status === 0) return undefined;
    }
    return 'no clang++ with libFuzzer is installed (Debian: apt-get install clang libclang-rt-14-dev)';
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test(`control sockets: regressions replay clean, then ~10 s of fuzzing find nothing (seed ${seed})`, async () => {
  const { code, output } = await run(['10', '--only', 'control-socket', '--seed', String(seed)], 240_000);
  console.log(output.trim().replace(/^/gm, '    '));
  assert.is(code, 0, `fuzz/run.sh 10 --only control-socket --seed ${seed} failed:\n${output}`);
  assert.match(output, /control-socket-fuzz: seed \d+.*no findings/);
});

const missing = noLibFuzzer();
if (missing) {
  console.log(`skipping the libFuzzer targets: ${missing}`);
  test.skip('emulator command path under libFuzzer: regressions replay clean, 20 s find nothing', () => {});
} else {
  test(`emulator command path under libFuzzer: regressions replay clean, 20 s find nothing (seed ${seed})`, async () => {
    // Building the sanitized targets from scratch takes a minute or two on a small machine.
    const { code, output } = await run(['20', '--only', 'native', '--seed', String(seed)], 480_000);
    console.log(output.trim().replace(/^/gm, '    '));
    assert.is(code, 0, `fuzz/run.sh 20 --only native --seed ${seed} failed:\n${output}`);
    assert.match(output, /emulator_commands \d+s: \d+ executions/);
    assert.not.match(output, /REGRESSION FAILS|FINDING/);
  });
}

test.run();
