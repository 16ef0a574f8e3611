/**
 * Soak: one emulated device, N VSICs (default 32), N applications with mixed
 * workloads for a long time (default 10 minutes), a daemon restart in the
 * middle and applications SIGKILLed and respawned at intervals. Every block
 * an application reads is checked against what it wrote (bench/lib/
 * soak-plan.ts); after a kill or a restart the whole VSA is checked against
 * what was flushed (and, after a restart, what the application saw
 * acknowledged). Samples throughput, and RSS and open fds of the daemon and
 * its emulator, to tell a leak from a steady state (bench/lib/soak-leaks.ts).
 *
 *   node --import tsx bench/soak.ts [--duration 10m] [--apps 32] [--vsa-size 32M]
 *        [--sample 10] [--kill-every 30] [--epoch-ms 250] [--json] [--keep]
 *
 * What counts as unexpected, the leak rule and a measured run: docs/soak.md.
 * Exit status: 0 if nothing unexpected happened and nothing leaked, 1
 * otherwise. Output: progress and tables, then one JSON document as the
 * last line; with --json, stdout is only the JSON document.
 */
import { mkdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { DaemonClient } from '../controlplane/client.js';
import { parseSizeBytes } from '../controlplane/units.js';
import { cleanup, startDaemon, tempDir, type DaemonProcess } from '../test/helpers/daemon.js';
import { machineBusyNs } from './lib/machine-load.js';
import { procUsage } from './lib/proc-status.js';
import { DAEMON_FAILURE_EVENTS, ErrorLedger } from './lib/soak-errors.js';
import { opsOf, SoakApp, track, until, type AppMessage } from './lib/soak-fleet.js';
import { leakVerdicts, LEAK_RULE } from './lib/soak-leaks.js';
import { PROFILES } from './lib/soak-plan.js';
import { printReport, type AppSummary, type SoakEvent, type SoakSample } from './lib/soak-report.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '10m' },
    apps: { type: 'string', default: '32' },
    'vsa-size': { type: 'string', default: '32M' },
    sample: { type: 'string' },
    'kill-every': { type: 'string' },
    'epoch-ms': { type: 'string', default: '250' },
    json: { type: 'boolean', default: false },
    keep: { type: 'boolean', default: false },
  },
});

function seconds(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(s|m)?$/.exec(text.trim());
  if (!match) throw new RangeError(`not a duration: ${text} (use e.g. 90s, 10m)`);
  return Number(match[1]) * (match[2] === 'm' ? 60 : 1);
}

const durationS = seconds(args.duration!);
const appCount = Number(args.apps);
const vsaBytes = parseSizeBytes(args['vsa-size']!);
const sampleS = args.sample ? seconds(args.sample) : Math.max(2, Math.min(10, durationS / 20));
const killEveryS = args['kill-every'] ? seconds(args['kill-every']) : Math.max(10, Math.min(30, durationS / 6));
const epochMs = Number(args['epoch-ms']);
/** A sample counts toward the leak rule this long after the last kill or restart settled. */
const SETTLE_MS = 10_000;
/** No kills in the last part of the run: the leak rule's end window is quiet. */
const quietTailS = Math.max(3 * sampleS, Math.min(60, durationS * 0.15));
const out = args.json ? process.stderr : process.stdout;
const say = (line = '') => out.write(`${line}\n`);

const ledger = new ErrorLedger();
const events: SoakEvent[] = [];
const samples: SoakSample[] = [];
let t0 = 0;
const since = (at: number) => (at - t0) / 1000;
function event(name: string, detail = ''): void {
  const at = Date.now();
  events.push({ at, t: t0 ? since(at) : 0, event: name, detail });
  say(`[${t0 ? `${since(at).toFixed(1).padStart(6)}s` : '  setup'}] ${name}${detail ? `: ${detail}` : ''}`);
}

// --- the daemon ---------------------------------------------------------------

const stateDir = tempDir('offpath-soak-');
const device = `emu:file:${join(stateDir, 'emu0.img')}:${Math.ceil((appCount * vsaBytes * 1.25) / 2 ** 20) + 256}M`;
let daemon: DaemonProcess;
let daemonStopping = false;
/** How far each daemon incarnation's log has been scanned. */
let logScanned = 0;
const daemonRequestFailures = new Map<string, number>();

async function launchDaemon(): Promise<void> {
  daemon = await startDaemon({ stateDir, device, vfs: appCount });
  logScanned = 0;
  daemonStopping = false;
  const current = daemon;
  current.process.once('exit', (code, signal) => {
    if (!daemonStopping || current !== daemon) ledger.fail('daemon-exit', Date.now(), `daemon exited on its own (${code ?? signal})`);
  });
}

function emulatorPid(): number | undefined {
  return daemon.events().filter((e) => e.event === 'device-started').pop()?.pid;
}

function scanDaemonLog(): void {
  const log = daemon.events();
  for (const entry of log.slice(logScanned)) {
    if (DAEMON_FAILURE_EVENTS.has(entry.event)) ledger.fail(`daemon:${entry.event}`, Date.now(), JSON.stringify(entry));
    if (entry.event === 'request' && entry.ok === false) daemonRequestFailures.set(`${entry.method}:${entry.code}`, (daemonRequestFailures.get(`${entry.method}:${entry.code}`) ?? 0) + 1);
  }
  logScanned = log.length;
}

// --- the applications -----------------------------------------------------------

const summaries: AppSummary[] = [];

function onMessage(app: SoakApp, message: AppMessage): void {
  const summary = summaries[app.spec.index]!;
  switch (message.type) {
    case 'error': {
      const expected = ledger.appError(app.spec.index, message.where, message.code, message.at, message.message);
      summary[expected ? 'expectedErrors' : 'unexpectedErrors']++;
      if (!expected) say(`  unexpected: app ${app.spec.index} ${message.where} ${message.code}: ${message.message}`);
      break;
    }
    case 'mismatch':
      summary.mismatches++;
      ledger.fail(`data:${message.where}`, message.at, `app ${app.spec.index} (${app.spec.profile}) block ${message.block}: expected state ${message.expected}` + (message.alternative === undefined ? '' : ` or ${message.alternative}`) + `, found ${message.found}`);
      break;
    case 'ready':
      summary.recoveries[message.reason] = (summary.recoveries[message.reason] ?? 0) + 1;
      summary.adopted += message.adopted;
      summary.verifiedBlocks += message.checked;
      summary.recoveryMsMax = Math.max(summary.recoveryMsMax, message.ms);
      break;
    case 'final':
      summary.final = { epoch: message.epoch, mismatches: message.mismatches };
      break;
  }
}

function onUnexpectedExit(app: SoakApp, exit: { code: number | null; signal: NodeJS.Signals | null }): void {
  ledger.fail('app-exit', Date.now(), `app ${app.spec.index} exited on its own (${exit.code ?? exit.signal}): ${app.stderrTail.trim().split('\n').slice(-3).join(' | ')}`);
}

async function createApps(): Promise<SoakApp[]> {
  const client = DaemonClient.connect(daemon.socket);
  const appsDir = join(stateDir, 'apps');
  mkdirSync(appsDir);
  const apps: SoakApp[] = [];
  try {
    for (let index = 0; index < appCount; index++) {
      const vsa = `soak-${String(index).padStart(2, '0')}`;
      await client.call('vsa.create', { name: vsa, sizeBytes: vsaBytes });
      const { token } = await client.call<{ token: string }>('cap.grant', { vsa });
      const profile = PROFILES[index % PROFILES.length]!;
      summaries.push({ index, profile, vsa, incarnations: 0, expectedErrors: 0, unexpectedErrors: 0, mismatches: 0, recoveries: {}, adopted: 0, verifiedBlocks: 0, recoveryMsMax: 0 });
      const spec = { index, profile, vsa, capability: token, blocks: vsaBytes / 4096, statePath: join(appsDir, `${vsa}.state`) };
      apps.push(track(new SoakApp(spec, { daemonSocket: daemon.socket, epochMs }, onMessage, onUnexpectedExit)));
    }
  } finally {
    client.close();
  }
  return apps;
}

/** Starts the apps a few at a time: 32 tsx start-ups at once would starve a 2-core machine for a minute. */
async function startApps(apps: SoakApp[]): Promise<void> {
  const batch = 4;
  for (let i = 0; i < apps.length; i += batch) {
    const group = apps.slice(i, i + batch);
    for (const app of group) app.spawn();
    await until(() => group.every((a) => a.readyAt > 0), 120_000, `apps ${i}..${i + group.length - 1} to open and verify`);
  }
}

// --- disruptions ------------------------------------------------------------------

let disruptedUntil = 0;
let restartWindow: { begin: number; end: number } | undefined;

async function killOne(apps: SoakApp[]): Promise<void> {
  const candidates = apps.filter((a) => a.readyAt > 0);
  const app = candidates[Math.floor(Math.random() * candidates.length)];
  if (!app) return;
  const begin = Date.now();
  disruptedUntil = Infinity;
  const closeWindow = ledger.killBegins(app.spec.index, begin);
  const pid = app.pid;
  await app.kill();
  app.spawn();
  try {
    await until(() => app.readyAt > 0, 90_000, `app ${app.spec.index} to reopen after SIGKILL`);
    event('kill', `app ${app.spec.index} (${app.spec.profile}, pid ${pid}) SIGKILLed; successor verified its VSA in ${((app.readyAt - begin) / 1000).toFixed(1)} s`);
  } catch (error) {
    ledger.fail('stuck', Date.now(), (error as Error).message);
  }
  closeWindow(Date.now() + 2000);
  disruptedUntil = Date.now() + SETTLE_MS;
}

async function restartDaemon(apps: SoakApp[]): Promise<void> {
  const begin = Date.now();
  disruptedUntil = Infinity;
  restartWindow = { begin, end: Infinity };
  const closeWindow = ledger.restartBegins(begin);
  event('restart', `SIGTERM to daemon pid ${daemon.process.pid} (emulator pid ${emulatorPid()})`);
  daemonStopping = true;
  scanDaemonLog();
  const exit = await daemon.stop();
  if (exit.code !== 0) ledger.fail('daemon-stop', Date.now(), `daemon exited ${exit.code ?? exit.signal} on SIGTERM`);
  await until(() => !daemon.groupAlive(), 15_000, 'the stopped daemon’s emulator to exit').catch((e: Error) => ledger.fail('daemon-stop', Date.now(), e.message));
  await launchDaemon();
  event('daemon up', `pid ${daemon.process.pid}, emulator pid ${emulatorPid()}, ${((Date.now() - begin) / 1000).toFixed(1)} s after SIGTERM`);
  try {
    await until(() => apps.every((a) => a.readyAt > begin), 180_000, 'every app to reopen and verify after the restart');
    event('apps back', `all ${apps.length} reopened and verified their VSAs ${((Date.now() - begin) / 1000).toFixed(1)} s after SIGTERM`);
  } catch (error) {
    ledger.fail('stuck', Date.now(), (error as Error).message);
  }
  const end = Date.now() + 5000;
  closeWindow(end);
  restartWindow.end = end;
  disruptedUntil = Date.now() + SETTLE_MS;
}

async function scenario(apps: SoakApp[], endAt: number): Promise<void> {
  const restartAt = t0 + (durationS * 1000) / 2;
  const killsUntil = endAt - quietTailS * 1000;
  let nextKill = t0 + killEveryS * 1000;
  let restarted = false;
  while (Date.now() < endAt) {
    const now = Date.now();
    if (!restarted && now >= restartAt) {
      restarted = true;
      await restartDaemon(apps);
      nextKill = Math.max(nextKill, Date.now() + (killEveryS * 1000) / 2);
    } else if (now >= nextKill && now < killsUntil) {
      // Keep kills out of the seconds just before the restart, so each disruption is seen on its own.
      if (!restarted && now > restartAt - 10_000) nextKill = restartAt + killEveryS * 1000;
      else {
        await killOne(apps);
        nextKill += killEveryS * 1000;
      }
    }
    await sleep(250);
  }
}

// --- sampling ---------------------------------------------------------------------

let lastSampleAt = 0;
let lastBusyNs = 0;
let eventsSampled = 0;

function takeSample(apps: SoakApp[]): void {
  const now = Date.now();
  const seconds = (now - lastSampleAt) / 1000;
  const perApp = apps.map((a) => a.takeInterval());
  const sum = (pick: (c: (typeof perApp)[number]) => number) => perApp.reduce((s, c) => s + pick(c), 0);
  const busyNs = machineBusyNs();
  scanDaemonLog();
  const emu = emulatorPid();
  const phase = restartWindow && restartWindow.begin <= now && lastSampleAt <= restartWindow.end ? 'restart' : restartWindow && now > restartWindow.end ? 'after restart' : 'before restart';
  const appsRss = apps.map((a) => (a.pid ? procUsage(a.pid)?.rssBytes ?? 0 : 0)).reduce((s, v) => s + v, 0);
  samples.push({
    t: since(now),
    phase,
    settled: now >= disruptedUntil && apps.every((a) => a.readyAt > 0),
    appsReady: apps.filter((a) => a.readyAt > 0).length,
    opsPerSec: sum(opsOf) / seconds,
    readMiBps: sum((c) => c.readBytes) / seconds / 2 ** 20,
    writeMiBps: sum((c) => c.writeBytes) / seconds / 2 ** 20,
    verifyMiBps: sum((c) => c.verifyBytes) / seconds / 2 ** 20,
    perAppOpsPerSec: perApp.map((c) => Math.round(opsOf(c) / seconds)),
    daemon: daemonStopping ? undefined : procUsage(daemon.process.pid!),
    emulator: emu === undefined || daemonStopping ? undefined : procUsage(emu),
    appsRssBytes: appsRss,
    machineBusyPercent: ((busyNs - lastBusyNs) / 1e9 / seconds) * 100,
    loadAverage: loadavg()[0]!,
    expectedErrors: ledger.expectedTotal,
    unexpectedErrors: ledger.unexpected.length,
    events: events.slice(eventsSampled).map((e) => e.event),
  });
  eventsSampled = events.length;
  lastSampleAt = now;
  lastBusyNs = busyNs;
}

// --- the run ------------------------------------------------------------------------

async function main(): Promise<number> {
  say(`soak: ${appCount} apps × ${args['vsa-size']} VSAs on one emulated device (${device.split(':').pop()}), ${durationS} s, sample every ${sampleS} s, a kill every ${killEveryS} s, daemon restart at ${durationS / 2} s`);
  await launchDaemon();
  const apps = await createApps();
  event('setup', `daemon pid ${daemon.process.pid}, emulator pid ${emulatorPid()}, ${appCount} VSAs and capabilities created`);
  await startApps(apps);
  t0 = Date.now();
  event('start', `all ${appCount} apps opened and verified their VSAs`);
  lastSampleAt = t0;
  lastBusyNs = machineBusyNs();
  for (const app of apps) app.takeInterval();
  disruptedUntil = t0 + SETTLE_MS;
  const endAt = t0 + durationS * 1000;
  const sampler = setInterval(() => takeSample(apps), sampleS * 1000);
  await scenario(apps, endAt);
  clearInterval(sampler);
  // The last partial interval, unless the sampler has just taken one.
  if (Date.now() - lastSampleAt > (sampleS * 1000) / 2) takeSample(apps);

  event('stop', 'SIGTERM to every app: each finishes its epoch and verifies its whole VSA');
  const exits = await Promise.all(apps.map((a) => a.stop(60_000)));
  exits.forEach((exit, i) => {
    if (exit.code !== 0) ledger.fail('app-stop', Date.now(), `app ${i} exited ${exit.code ?? exit.signal} on SIGTERM: ${apps[i]!.stderrTail.trim().split('\n').slice(-3).join(' | ')}`);
    if (!summaries[i]!.final) ledger.fail('app-stop', Date.now(), `app ${i} did not report its final verification`);
  });
  for (const app of apps) Object.assign(summaries[app.spec.index]!, { incarnations: app.incarnations, ops: opsOf(app.total), total: app.total });
  scanDaemonLog();
  daemonStopping = true;
  const exit = await daemon.stop();
  if (exit.code !== 0) ledger.fail('daemon-stop', Date.now(), `daemon exited ${exit.code ?? exit.signal} on SIGTERM`);
  event('done', `daemon stopped (${exit.code ?? exit.signal})`);

  const settled = samples.filter((s) => s.settled);
  const leaks = [
    ...leakVerdicts('daemon', settled.flatMap((s) => (s.daemon ? [{ t: s.t, usage: s.daemon }] : []))),
    ...leakVerdicts('emulator', settled.flatMap((s) => (s.emulator ? [{ t: s.t, usage: s.emulator }] : []))),
  ];
  const leaked = leaks.filter((l) => l.verdict !== 'flat' && l.verdict !== 'too few samples');
  const ok = ledger.unexpected.length === 0 && leaked.length === 0;
  const report = {
    config: { apps: appCount, vsaBytes, durationS, sampleS, killEveryS, epochMs, device: 'emu:file (sparse, in the temporary state directory)', restartAtS: durationS / 2, quietTailS, settleMs: SETTLE_MS, leakRule: LEAK_RULE },
    ok,
    samples,
    events: events.map(({ at: _at, ...rest }) => rest),
    apps: summaries,
    errors: Object.fromEntries(ledger.counts),
    unexpected: ledger.unexpected.map((u) => ({ ...u, t: since(u.at) })),
    daemonRequestFailures: Object.fromEntries(daemonRequestFailures),
    leaks,
  };
  printReport(say, report);
  say(ok ? 'verdict: PASS (no unexpected error, no leak)' : `verdict: FAIL (${ledger.unexpected.length} unexpected errors, ${leaked.length} leaking processes)`);
  process.stdout.write(`${JSON.stringify(report)}\n`);
  return ok ? 0 : 1;
}

let status = 1;
try {
  status = await main();
} catch (error) {
  say(`soak aborted: ${(error as Error).stack ?? error}`);
} finally {
  if (args.keep) say(`state kept in ${stateDir}`);
  else await cleanup();
}
process.exit(status);
