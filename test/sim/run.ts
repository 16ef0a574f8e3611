// Seeded power-loss simulation runner.
//
//   node --import tsx test/sim/run.ts --cuts N [--seed S] [--target emulator|kv|mailq|all] [--broken-flush]
//
// Runs N cuts on each target (a module in test/sim/targets/, see target.ts):
// cut i of a run seeded S uses cutSeed(S, i) — cut 0 uses S itself — and
// every failing cut prints its seed and the command that replays it alone.
// The last line is always `cuts=N lost=L unrecoverable=U seed=S` (totals
// over the targets that ran); the exit status is 1 when anything was lost
// or unrecoverable, 2 for a usage error.
import { randomInt } from 'node:crypto';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { cutSeed, type CutOptions, type SimTarget } from './target.js';

const KNOWN_TARGETS = ['emulator', 'kv', 'mailq'];
const MAX_REPORTED_FAILURES = 10;
const here = dirname(fileURLToPath(import.meta.url));

interface Args {
  cuts: number;
  seed: number;
  targets: string[];
  brokenFlush: boolean;
  quiet: boolean;
}

function usage(message: string): never {
  console.error(`${message}\nusage: node --import tsx test/sim/run.ts --cuts N [--seed S] [--target ${KNOWN_TARGETS.join('|')}|all] [--broken-flush] [--quiet]`);
  process.exit(2);
}

function parseArgs(argv: string[]): Args {
  const args: Args = { cuts: 100, seed: randomInt(0, 2 ** 32), targets: ['all'], brokenFlush: false, quiet: false };
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) usage(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case '--cuts': {
        const cuts = Number(value());
        if (!Number.isInteger(cuts) || cuts < 0) usage('--cuts must be a non-negative integer');
        args.cuts = cuts;
        break;
      }
      case '--seed': {
        const seed = Number(value());
        if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) usage('--seed must be an integer from 0 to 2^32 - 1');
        args.seed = seed;
        break;
      }
      case '--target':
        args.targets = value().split(',');
        break;
      case '--broken-flush':
        args.brokenFlush = true;
        break;
      case '--quiet':
        args.quiet = true;
        break;
      default:
        usage(`unknown argument ${flag}`);
    }
  }
  if (args.targets.includes('all')) args.targets = KNOWN_TARGETS;
  for (const name of args.targets) if (!/^[a-z0-9-]+$/.test(name)) usage(`bad target name ${JSON.stringify(name)}`);
  return args;
}

/** The target's module, or undefined when it does not exist (yet). */
async function loadTarget(name: string): Promise<SimTarget | undefined> {
  const file = ['.ts', '.js'].map((extension) => join(here, 'targets', `${name}${extension}`)).find((path) => existsSync(path));
  if (file === undefined) return undefined;
  const module = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  const candidate = (module.target ?? module.default ?? module) as Partial<SimTarget>;
  if (typeof candidate.runCut !== 'function') throw new Error(`${file} exports no runCut(seed)`);
  return { name: candidate.name ?? name, runCut: candidate.runCut.bind(candidate) };
}

async function main(): Promise<number> {
  const args = parseArgs(process.argv.slice(2));
  const options: CutOptions = args.brokenFlush ? { brokenFlush: true } : {};
  let cuts = 0;
  let lost = 0;
  let unrecoverable = 0;
  let reported = 0;
  for (const name of args.targets) {
    const target = await loadTarget(name);
    if (target === undefined) {
      console.log(`${name}: target not available yet`);
      continue;
    }
    const started = performance.now();
    let targetLost = 0;
    let targetUnrecoverable = 0;
    let extraCuts = 0;
    let failedCuts = 0;
    for (let index = 0; index < args.cuts; index++) {
      const seed = cutSeed(args.seed, index);
      let outcome;
      try {
        outcome = await target.runCut(seed, options);
      } catch (error) {
        outcome = { lost: 0, unrecoverable: 1, problems: [`the cut threw: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`] };
      }
      cuts++;
      targetLost += outcome.lost;
      targetUnrecoverable += outcome.unrecoverable;
      extraCuts += outcome.extraCuts ?? 0;
      if (outcome.lost > 0 || outcome.unrecoverable > 0) {
        failedCuts++;
        if (reported++ < MAX_REPORTED_FAILURES) {
          console.log(`FAIL ${target.name} cut ${index} seed=${seed} lost=${outcome.lost} unrecoverable=${outcome.unrecoverable}`);
          for (const line of outcome.problems ?? []) console.log(`  ${line}`);
          console.log(`  replay: node --import tsx test/sim/run.ts --target ${name} --cuts 1 --seed ${seed}${args.brokenFlush ? ' --broken-flush' : ''}`);
        }
      }
      if (!args.quiet && process.stdout.isTTY && (index + 1) % 50 === 0)
        process.stdout.write(`\r${target.name}: ${index + 1}/${args.cuts} cuts`);
    }
    if (!args.quiet && process.stdout.isTTY) process.stdout.write('\r');
    const seconds = (performance.now() - started) / 1000;
    lost += targetLost;
    unrecoverable += targetUnrecoverable;
    console.log(
      `${target.name}: ${args.cuts} cuts in ${seconds.toFixed(1)} s (${(args.cuts / Math.max(seconds, 1e-9)).toFixed(1)} cuts/s), ` +
        `${failedCuts} failed, lost=${targetLost} unrecoverable=${targetUnrecoverable}` +
        (extraCuts > 0 ? `, plus ${extraCuts} cuts during recovery` : ''),
    );
  }
  console.log(`cuts=${cuts} lost=${lost} unrecoverable=${unrecoverable} seed=${args.seed}`);
  return lost > 0 || unrecoverable > 0 ? 1 : 0;
}

process.exitCode = await main();
