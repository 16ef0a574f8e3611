/**
 * Which errors a soak expects and which fail it. A daemon restart takes
 * every VSIC away, so for a while I/O fails with ECONNRESET and opens find
 * no daemon; a SIGKILLed application's session is released asynchronously,
 * so its successor may find its VSA still busy. Those codes, in those
 * windows, are expected. Everything else — other codes, the same codes
 * outside the windows, data that is not what was written, processes dying
 * on their own, daemon log events about failures — is unexpected.
 */

/** Codes a daemon restart explains, by where the app saw them. */
const RESTART_CODES: Record<string, ReadonlySet<string>> = {
  io: new Set(['ECONNRESET', 'ECLOSED']),
  recover: new Set(['ECONNRESET', 'ECLOSED']),
  // The socket is gone (ENOENT), nobody listens yet (ECONNREFUSED), or the daemon closed us mid-request.
  open: new Set(['ENOENT', 'ECONNREFUSED', 'ECONNRESET']),
};
/** Codes a SIGKILL of the app's predecessor explains. */
const KILL_CODES: Record<string, ReadonlySet<string>> = { open: new Set(['VSA_BUSY']) };

/** Daemon log events that mean something went wrong on the control plane. */
export const DAEMON_FAILURE_EVENTS = new Set(['device-died', 'device-restart', 'device-restart-failed', 'vsic-release-failed', 'client-dropped']);

interface Window {
  begin: number;
  end: number;
}

export interface Unexpected {
  at: number;
  kind: string;
  detail: string;
}

export class ErrorLedger {
  private readonly restarts: Window[] = [];
  private readonly kills = new Map<number, Window[]>();
  /** `where:code` → counts. */
  readonly counts = new Map<string, { expected: number; unexpected: number }>();
  readonly unexpected: Unexpected[] = [];
  expectedTotal = 0;

  /** Opens a window (end unknown yet); close it with the returned function. */
  restartBegins(at: number): (end: number) => void {
    const window = { begin: at, end: Infinity };
    this.restarts.push(window);
    return (end) => (window.end = end);
  }

  killBegins(app: number, at: number): (end: number) => void {
    const window = { begin: at, end: Infinity };
    const list = this.kills.get(app) ?? [];
    list.push(window);
    this.kills.set(app, list);
    return (end) => (window.end = end);
  }

  private within(windows: readonly Window[] | undefined, at: number): boolean {
    return (windows ?? []).some((w) => at >= w.begin && at <= w.end);
  }

  /** An error an app reported; returns whether it was expected. */
  appError(app: number, where: string, code: string, at: number, message: string): boolean {
    const expected =
      (RESTART_CODES[where]?.has(code) === true && this.within(this.restarts, at)) || (KILL_CODES[where]?.has(code) === true && this.within(this.kills.get(app), at));
    const key = `${where}:${code}`;
    const entry = this.counts.get(key) ?? { expected: 0, unexpected: 0 };
    if (expected) {
      entry.expected++;
      this.expectedTotal++;
    } else {
      entry.unexpected++;
      this.unexpected.push({ at, kind: key, detail: `app ${app}: ${message}` });
    }
    this.counts.set(key, entry);
    return expected;
  }

  /** Anything else that fails the soak (mismatches, deaths, daemon failures). */
  fail(kind: string, at: number, detail: string): void {
    const entry = this.counts.get(kind) ?? { expected: 0, unexpected: 0 };
    entry.unexpected++;
    this.counts.set(kind, entry);
    this.unexpected.push({ at, kind, detail });
  }
}
