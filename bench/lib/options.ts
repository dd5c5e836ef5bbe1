/** What one run measures and for how long; `--quick` keeps the whole run within 1–2 minutes on 2 cores. */
export interface BenchOptions {
  quick: boolean
  /** Measured window of each load level. */
  durationMs: number
  /** Discarded warm-up before each window. */
  warmupMs: number
  /**
   * The warm-up of a series' first window instead (see firstWarmup): the first seconds of a process under load are
   * spent compiling its hot code, on V8's background threads and in slower code meanwhile.
   */
  settleMs: number
  /** In-flight levels of the end-to-end case. */
  levels: number[]
  /** Locks of the end-to-end and peer cases (one per in-flight slot). */
  e2eLocks: number
  /** Locks of the connection-scale case (clamped to the open-file limit). */
  scaleLocks: number
  /** Webhooks (all `*`) of the fan-out case. */
  fanoutWebhooks: number
  /** Directory for `--cpu-prof` of the main latchkey child, when asked. */
  cpuProfDir?: string
  /** Node flags of every latchkey child in place of the server's own (`--server-node-flags`). */
  serverFlags?: readonly string[]
}

export function benchOptions(
  quick: boolean,
  overrides: { scaleLocks?: number; cpuProfDir?: string; serverFlags?: readonly string[] },
): BenchOptions {
  return {
    quick,
    durationMs: quick ? 1_000 : 8_000,
    warmupMs: quick ? 250 : 1_500,
    settleMs: quick ? 500 : 10_000,
    levels: [1, 10, 100],
    e2eLocks: 100,
    scaleLocks: overrides.scaleLocks ?? (quick ? 500 : 20_000),
    fanoutWebhooks: quick ? 4 : 10,
    ...(overrides.cpuProfDir ? { cpuProfDir: overrides.cpuProfDir } : {}),
    ...(overrides.serverFlags ? { serverFlags: overrides.serverFlags } : {}),
  }
}

/**
 * The warm-up of window `index` of a series against one process: the first is longer (`settleMs`), so that no
 * window measures a process that is still compiling its hot code (docs/performance.md#warm-up).
 */
export function firstWarmup(options: BenchOptions, index: number): number {
  return index === 0 ? options.settleMs : options.warmupMs
}
