/**
 * The top frames of a V8 CPU profile (`node --cpu-prof`), by self time and by
 * total time, as a table — where a benchmark's CPU goes, without DevTools:
 *
 *   node --cpu-prof --cpu-prof-dir=prof --import tsx bench/vsa.ts --no-fs --no-fio --api callback
 *   node --import tsx bench/lib/cpuprofile-top.ts prof/CPU.*.cpuprofile [--top 25] [--from S] [--to S]
 *
 * With several files (one per thread) each is summarised on its own.
 * --from/--to keep only samples taken that many seconds after the profile
 * started (e.g. a benchmark's measured window, not its start-up); negative
 * values count back from its end (--from=-6 --to=-1: the last 6 s but one).
 * "(idle)" is V8's name for time outside JavaScript with nothing to run:
 * in a busy event loop that is libuv itself (epoll_wait with a zero
 * timeout, timers, the check phase), not sleep.
 */
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { parseArgs } from 'node:util';
import { formatTable } from './report.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  children?: number[];
}

interface Profile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
  startTime: number;
  endTime: number;
}

export interface FrameTime {
  frame: string;
  selfPercent: number;
  totalPercent: number;
}

function frameName(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const file = url ? basename(url.replace(/^file:\/\//, '')) : '';
  return `${functionName || '(anonymous)'}${file ? ` ${file}:${lineNumber + 1}` : ''}`;
}

/** Self and total (inclusive, counted once per stack) time per frame, in % of samples. */
export function topFrames(profile: Profile, fromS = 0, toS = Infinity): FrameTime[] {
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const child of n.children ?? []) parent.set(child, n.id);
  const selfTime = new Map<string, number>();
  const totalTime = new Map<string, number>();
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  if (fromS < 0) fromS += seconds;
  if (toS < 0) toS += seconds;
  let all = 0;
  let at = 0;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    const dt = profile.timeDeltas[i + 1] ?? profile.timeDeltas[i] ?? 0;
    if (at < fromS * 1e6 || at > toS * 1e6) continue;
    all += dt;
    const leaf = byId.get(profile.samples[i]!)!;
    const self = frameName(leaf);
    selfTime.set(self, (selfTime.get(self) ?? 0) + dt);
    const seen = new Set<string>();
    for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
      const name = frameName(byId.get(id)!);
      if (seen.has(name)) continue;
      seen.add(name);
      totalTime.set(name, (totalTime.get(name) ?? 0) + dt);
    }
  }
  return [...totalTime.keys()].map((frame) => ({
    frame,
    selfPercent: ((selfTime.get(frame) ?? 0) / all) * 100,
    totalPercent: ((totalTime.get(frame) ?? 0) / all) * 100,
  }));
}

function main(): void {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, from: { type: 'string', default: '0' }, to: { type: 'string' } },
  });
  const top = Number(values.top);
  const fromS = Number(values.from);
  const toS = values.to === undefined ? Infinity : Number(values.to);
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile;
    const frames = topFrames(profile, fromS, toS);
    const seconds = (profile.endTime - profile.startTime) / 1e6;
    const window = fromS !== 0 || toS < Infinity ? `, samples from ${fromS} s to ${Number.isFinite(toS) ? `${toS} s` : 'the end'}` : '';
    const rows = frames
      .sort((a, b) => b.selfPercent - a.selfPercent)
      .slice(0, top)
      .map((f) => [f.frame, f.selfPercent.toFixed(1), f.totalPercent.toFixed(1)]);
    process.stdout.write(`${basename(file)}: ${profile.samples.length} samples over ${seconds.toFixed(1)} s${window}\n`);
    process.stdout.write(`${formatTable(['frame (by self time)', 'self %', 'total %'], rows, 1)}\n\n`);
  }
}

if (process.argv[1] && import.meta.url.endsWith(basename(process.argv[1]))) main();
