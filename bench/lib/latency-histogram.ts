/**
 * A preallocated log-linear latency histogram (the HdrHistogram idea):
 * exact below 128 ns, then 64 buckets per power of two (≤ 1.6 % error) up
 * to 2^31 ns. record() is a few integer operations and a typed-array store —
 * no allocation, so it can sit on every I/O of a measured loop. Histograms of
 * several threads merge by adding their counts (postMessage copies them).
 */

const LINEAR = 128; // values below this have a bucket each
const SUB = 64; // buckets per power of two above that
const MAX_EXPONENT = 30; // largest power of two recorded (values clamp below 2^31)
export const HISTOGRAM_BUCKETS = LINEAR + (MAX_EXPONENT - 6) * SUB;

export class LatencyHistogram {
  readonly counts: Uint32Array;
  total = 0;
  /** Sum in ns, for the mean (a double: exact to 2^53). */
  sumNs = 0;
  maxNs = 0;

  constructor(counts?: Uint32Array) {
    this.counts = counts ?? new Uint32Array(HISTOGRAM_BUCKETS);
    if (counts) for (let i = 0; i < counts.length; i++) this.total += counts[i]!;
  }

  /** Records one latency in nanoseconds (fractions are dropped). */
  record(ns: number): void {
    let v = ns > 0x7fffffff ? 0x7fffffff : ns < 0 ? 0 : ns | 0;
    if (v > this.maxNs) this.maxNs = v;
    this.sumNs += v;
    this.total++;
    if (v < LINEAR) {
      this.counts[v]++;
      return;
    }
    const exponent = 31 - Math.clz32(v); // 7..30
    const shift = exponent - 6;
    v = shift * SUB + (v >>> shift); // (v >>> shift) is in [64, 128)
    this.counts[v]++;
  }

  reset(): void {
    this.counts.fill(0);
    this.total = 0;
    this.sumNs = 0;
    this.maxNs = 0;
  }

  add(other: { counts: Uint32Array; sumNs: number; maxNs: number }): void {
    for (let i = 0; i < this.counts.length; i++) {
      this.counts[i] += other.counts[i]!;
      this.total += other.counts[i]!;
    }
    this.sumNs += other.sumNs;
    if (other.maxNs > this.maxNs) this.maxNs = other.maxNs;
  }

  /** The value at quantile q (0..1): the middle of the bucket it falls in. */
  quantile(q: number): number {
    if (this.total === 0) return NaN;
    const rank = Math.max(1, Math.ceil(q * this.total));
    let seen = 0;
    for (let i = 0; i < this.counts.length; i++) {
      seen += this.counts[i]!;
      if (seen >= rank) return Math.min(bucketMiddle(i), this.maxNs);
    }
    return this.maxNs;
  }

  get meanNs(): number {
    return this.total === 0 ? NaN : this.sumNs / this.total;
  }

  /** Plain data for postMessage / JSON. */
  snapshot(): { counts: Uint32Array; sumNs: number; maxNs: number } {
    return { counts: this.counts.slice(), sumNs: this.sumNs, maxNs: this.maxNs };
  }
}

function bucketMiddle(index: number): number {
  if (index < LINEAR) return index;
  const shift = Math.floor(index / SUB) - 1;
  const mantissa = (index % SUB) + SUB;
  return mantissa * 2 ** shift + 2 ** shift / 2;
}
