/**
 * The soak's tables: throughput and daemon/emulator resources per sample
 * interval, throughput per phase, events, per-app outcomes, errors by code
 * and the leak verdicts.
 */
import type { Counters } from './soak-fleet.js';
import type { LeakVerdict } from './soak-leaks.js';
import type { ProcUsage } from './proc-status.js';
import type { Profile } from './soak-plan.js';
import { formatCount, formatSpread, formatTable } from './report.js';
import { spread } from './stats.js';

export interface SoakSample {
  /** Seconds since every app was first ready. */
  t: number;
  phase: 'before restart' | 'restart' | 'after restart';
  /** Counts toward the leak rule (every app ready, no recent disruption). */
  settled: boolean;
  appsReady: number;
  opsPerSec: number;
  readMiBps: number;
  writeMiBps: number;
  /** Whole-VSA verification reads after (re)opens. */
  verifyMiBps: number;
  perAppOpsPerSec: number[];
  daemon: ProcUsage | undefined;
  emulator: ProcUsage | undefined;
  appsRssBytes: number;
  /** All CPUs, 100 = one core. */
  machineBusyPercent: number;
  loadAverage: number;
  /** Cumulative. */
  expectedErrors: number;
  unexpectedErrors: number;
  events: string[];
}

export interface SoakEvent {
  at: number;
  t: number;
  event: string;
  detail: string;
}

export interface AppSummary {
  index: number;
  profile: Profile;
  vsa: string;
  incarnations: number;
  expectedErrors: number;
  unexpectedErrors: number;
  mismatches: number;
  /** Opens followed by a whole-VSA check, by reason (start, respawn, reopen). */
  recoveries: Record<string, number>;
  /** Blocks found in the interrupted epoch's new state rather than the recorded one. */
  adopted: number;
  verifiedBlocks: number;
  recoveryMsMax: number;
  final?: { epoch: number; mismatches: number };
  ops?: number;
  total?: Counters;
}

export interface SoakReport {
  samples: SoakSample[];
  events: Array<Omit<SoakEvent, 'at'>>;
  apps: AppSummary[];
  errors: Record<string, { expected: number; unexpected: number }>;
  unexpected: Array<{ t: number; kind: string; detail: string }>;
  daemonRequestFailures: Record<string, number>;
  leaks: LeakVerdict[];
}

const mib = (bytes: number | undefined) => (bytes === undefined || !Number.isFinite(bytes) ? '-' : (bytes / 2 ** 20).toFixed(1));
const fixed = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : '-');

export function printReport(say: (line?: string) => void, report: SoakReport): void {
  say();
  say('Throughput and resources per interval (daemon and emulator: VmRSS MiB / open fds; * = settled, counts for the leak rule)');
  say(
    formatTable(
      ['t s', 'phase', 'ready', 'ops/s', 'rd MiB/s', 'wr MiB/s', 'verify MiB/s', 'daemon RSS', 'fds', 'emu RSS', 'anon', 'fds', 'apps RSS', 'cpu %', 'err exp/unexp', 'events'],
      report.samples.map((s) => [
        `${fixed(s.t, 0)}${s.settled ? '*' : ''}`,
        s.phase,
        s.appsReady,
        formatCount(s.opsPerSec),
        fixed(s.readMiBps),
        fixed(s.writeMiBps),
        fixed(s.verifyMiBps),
        mib(s.daemon?.rssBytes),
        s.daemon?.fds ?? '-',
        mib(s.emulator?.rssBytes),
        mib(s.emulator?.rssAnonBytes),
        s.emulator?.fds ?? '-',
        mib(s.appsRssBytes),
        fixed(s.machineBusyPercent, 0),
        `${s.expectedErrors}/${s.unexpectedErrors}`,
        s.events.join(', '),
      ]),
      2,
    ),
  );

  say();
  say('Throughput per phase (median of the intervals; min–max)');
  const phases = ['before restart', 'restart', 'after restart'] as const;
  say(
    formatTable(
      ['phase', 'intervals', 'ops/s', 'rd MiB/s', 'wr MiB/s'],
      phases.map((phase) => {
        const rows = report.samples.filter((s) => s.phase === phase);
        const show = (pick: (s: SoakSample) => number, format: (v: number) => string) => formatSpread(spread(rows.map(pick)), format);
        return [phase, rows.length, show((s) => s.opsPerSec, formatCount), show((s) => s.readMiBps, (v) => fixed(v)), show((s) => s.writeMiBps, (v) => fixed(v))];
      }),
    ),
  );

  say();
  say('Events');
  say(formatTable(['t s', 'event', 'detail'], report.events.map((e) => [fixed(e.t), e.event, e.detail]), 3));

  say();
  say('Applications (ops and MiB over all incarnations; recoveries = opens followed by a whole-VSA check)');
  say(
    formatTable(
      ['app', 'profile', 'runs', 'ops', 'wr MiB', 'rd MiB', 'verify MiB', 'recoveries', 'adopted', 'max recovery ms', 'err exp/unexp', 'mismatch', 'final check'],
      report.apps.map((a) => [
        a.vsa,
        a.profile,
        a.incarnations,
        formatCount(a.ops ?? NaN),
        mib(a.total?.writeBytes),
        mib(a.total?.readBytes),
        mib(a.total?.verifyBytes),
        Object.entries(a.recoveries)
          .map(([reason, n]) => `${reason} ${n}`)
          .join(', '),
        a.adopted,
        a.recoveryMsMax,
        `${a.expectedErrors}/${a.unexpectedErrors}`,
        a.mismatches,
        a.final ? `epoch ${a.final.epoch}, ${a.final.mismatches} bad` : 'missing',
      ]),
      2,
    ),
  );

  say();
  say('Errors by where:code (expected = explained by a restart or kill window)');
  const errorRows = Object.entries(report.errors).map(([key, c]) => [key, c.expected, c.unexpected]);
  say(errorRows.length ? formatTable(['where:code', 'expected', 'unexpected'], errorRows) : 'none');
  const daemonRows = Object.entries(report.daemonRequestFailures);
  if (daemonRows.length) {
    say();
    say('Requests the daemon refused (its log), method:code');
    say(formatTable(['method:code', 'count'], daemonRows));
  }
  if (report.unexpected.length) {
    say();
    say(`Unexpected (${report.unexpected.length}, first 40)`);
    say(formatTable(['t s', 'kind', 'detail'], report.unexpected.slice(0, 40).map((u) => [fixed(u.t), u.kind, u.detail]), 3));
  }

  say();
  say('Leak rule per process (settled samples; first 3 vs last 3, medians)');
  say(
    formatTable(
      ['process', 'pid', 'samples', 'RSS MiB first→last', 'anon MiB first→last', 'fds first→last', 'RSS slope MiB/min', 'verdict'],
      report.leaks.map((l) => [
        l.process,
        l.pid,
        l.samples,
        `${mib(l.first.rssBytes)}→${mib(l.last.rssBytes)}`,
        `${mib(l.first.rssAnonBytes)}→${mib(l.last.rssAnonBytes)}`,
        `${l.first.fds}→${l.last.fds}`,
        fixed(l.rssSlopeMiBPerMin, 2),
        l.verdict,
      ]),
      1,
    ),
  );
}
