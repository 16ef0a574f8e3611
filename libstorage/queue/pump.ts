/**
 * Drives completions for a set of queue pairs on the event loop: polls while
 * commands are outstanding (one setImmediate turn per poll, so the loop is
 * never blocked), backs off to timers when a command takes long, and stops
 * entirely when nothing is outstanding — never a spin with no work.
 */
import type { QueuePair } from './queue-pair.js';

/** Polls on consecutive loop turns before backing off to timers. */
const EAGER_POLLS = 256;
const MAX_BACKOFF_MS = 8;

export class CompletionPump {
  private readonly queues: QueuePair[] = [];
  private scheduled = false;
  private idlePolls = 0;
  private stopped = false;
  /** Called on every poll that found nothing while work is outstanding for long (health checks). */
  onStall: ((idlePolls: number) => void) | undefined;
  /** Called when outstanding work drops to zero. */
  onIdle: (() => void) | undefined;

  add(queue: QueuePair): void {
    this.queues.push(queue);
  }

  remove(queue: QueuePair): void {
    const index = this.queues.indexOf(queue);
    if (index >= 0) this.queues.splice(index, 1);
  }

  /** Call after submitting: starts polling if it is not already running. */
  kick(): void {
    if (this.scheduled || this.stopped) return;
    this.scheduled = true;
    this.idlePolls = 0;
    setImmediate(this.tick);
  }

  stop(): void {
    this.stopped = true;
  }

  /** Polls every queue once, now. Returns completions delivered. */
  pollOnce(): number {
    let reaped = 0;
    for (const queue of this.queues) reaped += queue.reap();
    return reaped;
  }

  private readonly tick = (): void => {
    this.scheduled = false;
    if (this.stopped) return;
    const reaped = this.pollOnce();
    let outstanding = 0;
    for (const queue of this.queues) outstanding += queue.outstanding;
    if (outstanding === 0) {
      this.idlePolls = 0;
      this.onIdle?.();
      return;
    }
    this.idlePolls = reaped > 0 ? 0 : this.idlePolls + 1;
    this.scheduled = true;
    if (this.idlePolls < EAGER_POLLS) {
      setImmediate(this.tick);
      return;
    }
    this.onStall?.(this.idlePolls);
    if (this.stopped) {
      this.scheduled = false;
      return;
    }
    const backoffMs = Math.min(MAX_BACKOFF_MS, 1 << Math.min(5, (this.idlePolls - EAGER_POLLS) >> 4));
    setTimeout(this.tick, backoffMs);
  };
}
