import { build, type Histogram } from "hdr-histogram-js";

/**
 * Call latencies: an HDR histogram for the percentiles (constant memory,
 * 3 significant digits however long the run), plus the raw values for ghz's
 * even-width histogram, which needs the fastest and slowest call first.
 */

/** Raw values kept for the ghz histogram; past this the histogram covers the first ones only (noted in the summary). */
const maxKeptSamples = 5_000_000;

/** Percentiles ghz reports, in its order. */
const ghzPercentages = [10, 25, 50, 75, 90, 95, 99] as const;

/** ghz's histogram has 10 even-width buckets between the fastest and slowest call, plus one at the slowest. */
const ghzBucketCount = 10;

/** What a run's latencies came to; every duration in microseconds. */
export interface LatencySummary {
  count: number;
  minUs: number;
  maxUs: number;
  meanUs: number;
  p50Us: number;
  p90Us: number;
  p99Us: number;
  p999Us: number;
  /** ghz's latencyDistribution, in microseconds here (the ghz writer converts to nanoseconds). */
  percentiles: { percentage: number; us: number }[];
  /** ghz's histogram: bucket upper mark, count at or below it (and above the previous mark), share of all. */
  buckets: { markUs: number; count: number; frequency: number }[];
  /** Calls whose values did not fit in the raw store; the buckets leave them out. */
  samplesDropped: number;
}

/** Records call latencies; `record` takes microseconds. */
export class LatencyRecorder {
  private readonly histogram: Histogram = build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
  private samples = new Float32Array(4096);
  private kept = 0;
  private dropped = 0;

  record(us: number): void {
    const value = Math.max(1, Math.round(us));
    this.histogram.recordValue(value);
    if (this.kept === this.samples.length) {
      if (this.kept >= maxKeptSamples) {
        this.dropped++;
        return;
      }
      const grown = new Float32Array(Math.min(this.samples.length * 2, maxKeptSamples));
      grown.set(this.samples);
      this.samples = grown;
    }
    this.samples[this.kept++] = value;
  }

  summary(): LatencySummary {
    const h = this.histogram;
    const count = h.totalCount;
    const at = (p: number) => (count === 0 ? 0 : h.getValueAtPercentile(p));
    return {
      count,
      minUs: count === 0 ? 0 : h.minNonZeroValue,
      maxUs: count === 0 ? 0 : h.maxValue,
      meanUs: count === 0 ? 0 : h.mean,
      p50Us: at(50),
      p90Us: at(90),
      p99Us: at(99),
      p999Us: at(99.9),
      percentiles: ghzPercentages.map((percentage) => ({ percentage, us: at(percentage) })),
      buckets: this.buckets(),
      samplesDropped: this.dropped,
    };
  }

  /** ghz's bucketing: a value goes to the first bucket whose mark is at or above it. */
  private buckets(): LatencySummary["buckets"] {
    if (this.kept === 0) return [];
    let fastest = Infinity;
    let slowest = -Infinity;
    for (let i = 0; i < this.kept; i++) {
      const v = this.samples[i]!;
      if (v < fastest) fastest = v;
      if (v > slowest) slowest = v;
    }
    const width = (slowest - fastest) / ghzBucketCount;
    const marks = Array.from({ length: ghzBucketCount + 1 }, (_, i) => (i === ghzBucketCount ? slowest : fastest + width * i));
    const counts = new Array<number>(marks.length).fill(0);
    for (let i = 0; i < this.kept; i++) {
      const v = this.samples[i]!;
      let bucket = width === 0 ? 0 : Math.ceil((v - fastest) / width);
      bucket = Math.min(Math.max(bucket, 0), ghzBucketCount);
      // Float rounding can put v just above a computed mark: step on as ghz's loop would.
      while (bucket < ghzBucketCount && v > marks[bucket]!) bucket++;
      counts[bucket]!++;
    }
    return marks.map((markUs, i) => ({ markUs, count: counts[i]!, frequency: counts[i]! / this.kept }));
  }
}
