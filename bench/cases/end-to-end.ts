import { gcTotals, type LatchkeyChild } from '../lib/latchkey-child.js'
import { closedLoop } from '../lib/http.js'
import type { LoopResult, LoopSpec } from '../lib/loop.js'
import { firstWarmup, type BenchOptions } from '../lib/options.js'

/**
 * End to end (a): lock/unlock through the HTTP API with `sync: true`, against instantly acking simulated locks in
 * another process. Worker `slot` drives lock `slot` only, so no lock is ever asked twice at once; it alternates
 * lock and unlock, so every success moves the bolt. Latency = request sent → settled attempt received.
 */

export type Levels = Record<string, LoopResult>

export function settledSuccess(text: string): boolean {
  const body = JSON.parse(text) as { action_attempt?: { status?: string } }
  return body.action_attempt?.status === 'success'
}

/** `cpuOf`: the processes whose CPU use is reported with each level (latchkey, the lock process). */
export async function endToEndSync(
  options: BenchOptions,
  lk: LatchkeyChild,
  deviceIds: readonly string[],
  cpuOf: NonNullable<LoopSpec['cpuOf']>,
): Promise<Levels> {
  const levels: Levels = {}
  for (const [index, concurrency] of options.levels.entries()) {
    if (concurrency > deviceIds.length)
      throw new Error(`${concurrency} in flight needs ${concurrency} locks, have ${deviceIds.length}`)
    levels[`c${concurrency}`] = await closedLoop({
      baseUrl: lk.httpUrl,
      concurrency,
      durationMs: options.durationMs,
      warmupMs: firstWarmup(options, index),
      headers: { authorization: `Bearer ${lk.apiKey}` },
      request: (slot, i) => ({
        path: i % 2 === 0 ? '/locks/unlock_door' : '/locks/lock_door',
        body: JSON.stringify({ device_id: deviceIds[slot], sync: true }),
      }),
      ok: settledSuccess,
      cpuOf,
      gcOf: () => gcTotals(lk),
    })
  }
  return levels
}
