/** What one run measures and for how long; `--quick` keeps the whole run within 1–2 minutes on 2 cores. */
export interface BenchOptions {
  quick: boolean
  /** Measured window of each load level. */
  durationMs: number
  /** Discarded warm-up before each window. */
  warmupMs: number
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
    levels: [1, 10, 100],
    e2eLocks: 100,
    scaleLocks: overrides.scaleLocks ?? (quick ? 500 : 20_000),
    fanoutWebhooks: quick ? 4 : 10,
    ...(overrides.cpuProfDir ? { cpuProfDir: overrides.cpuProfDir } : {}),
    ...(overrides.serverFlags ? { serverFlags: overrides.serverFlags } : {}),
  }
}
