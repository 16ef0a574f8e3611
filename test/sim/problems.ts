// What a simulated cut found wrong, counted the way the runner reports it
// (test/sim/target.ts): `lost` for anything acknowledged that is missing or
// wrong (or data never written that appeared), `unrecoverable` for a
// recovery that failed or left an inconsistent state. Only the first few
// lines are kept: one failing cut tends to say the same thing many times.
const MAX_LINES = 8;

export class Problems {
  lost = 0;
  unrecoverable = 0;
  readonly lines: string[] = [];

  note(kind: 'lost' | 'unrecoverable', line: string, count = 1): void {
    if (kind === 'lost') this.lost += count;
    else this.unrecoverable += count;
    if (this.lines.length < MAX_LINES) this.lines.push(`${kind}: ${line}`);
  }
}
