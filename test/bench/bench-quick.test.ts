import { spawn } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect } from 'vitest'
import { it } from '../helpers/latchkey.js'

/**
 * `npm run bench -- --quick` end to end, as a child process: it must finish on its own and write a JSON whose
 * SHAPE is complete. No timing is asserted here (docs/performance.md: benchmarks, not timed tests).
 */

const ROOT = join(import.meta.dirname, '..', '..')

// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any

function runQuickBench(
  outDir: string,
  defer: (close: () => unknown) => void,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'bench/run.ts', '--quick', '--out', outDir], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    // SIGINT: the bench stops every process it started (it also has a watchdog of its own).
    defer(() => child.exitCode === null && child.signalCode === null && child.kill('SIGINT'))
    let output = ''
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
    child.on('exit', (code) => resolve({ code, output }))
  })
}

const positive = (value: unknown, path: string) => expect(value, path).toBeGreaterThan(0)

function expectLoop(result: Json, path: string): void {
  positive(result?.per_s, `${path}.per_s`)
  positive(result?.latency?.n, `${path}.latency.n`)
  for (const p of ['mean_ms', 'p50_ms', 'p95_ms', 'p99_ms']) positive(result.latency[p], `${path}.latency.${p}`)
  expect(result.errors, `${path}.errors`).toBe(0)
}

/** A case either ran (checked by `ran`) or says why not, in a `skipped` string. */
function ranOrSkipped(result: Json, path: string, ran: (r: Json) => void): void {
  expect(result, path).toBeTypeOf('object')
  if ('skipped' in result) expect(result.skipped, `${path}.skipped`).toMatch(/\S/)
  else ran(result)
}

describe('npm run bench -- --quick', () => {
  it('runs every case on loopback, prints one table and writes a complete JSON', async ({ defer }) => {
    // Scenario: a quick run from a clean tree, results into a temp dir.
    const outDir = mkdtempSync(join(tmpdir(), 'latchkey-bench-test-'))
    defer(() => rmSync(outDir, { recursive: true, force: true }))
    const { code, output } = await runQuickBench(outDir, defer)
    expect(code, output.slice(-3000)).toBe(0)
    expect(output).toMatch(/\| case +\| result +\| target +\| status +\|/)
    expect(output).toContain(join(outDir, 'latest.json'))

    const r: Json = JSON.parse(readFileSync(join(outDir, 'latest.json'), 'utf8'))
    expect(r).toMatchObject({ schema: 1, mode: 'quick' })
    expect(r.errors).toBeUndefined()
    positive(r.machine.nproc, 'machine.nproc')

    for (const k of ['serial', 'pipelined', 'pipelined_deferred_puback']) expectLoop(r.raw.mqtt[k], `raw.mqtt.${k}`)
    for (const k of ['c1', 'c10', 'c100']) expectLoop(r.raw.http.fastify[k], `raw.http.fastify.${k}`)
    expectLoop(r.raw.http.webhook.serial, 'raw.http.webhook.serial')
    expectLoop(r.raw.http.webhook.c100, 'raw.http.webhook.c100')
    for (const k of ['mqtt_ms', 'http_ms', 'webhook_ms', 'sum_ms', 'attempts_per_s'])
      positive(r.raw.serial_ceiling[k], `raw.serial_ceiling.${k}`)

    for (const k of ['c1', 'c10', 'c100']) {
      expectLoop(r.end_to_end.sync[k], `end_to_end.sync.${k}`)
      positive(r.end_to_end.sync[k].cpu_pct.latchkey, `end_to_end.sync.${k}.cpu_pct.latchkey`)
    }
    positive(r.end_to_end.ratio_to_serial_ceiling, 'end_to_end.ratio_to_serial_ceiling')
    ranOrSkipped(r.end_to_end.create_to_webhook, 'end_to_end.create_to_webhook', (levels) => {
      for (const k of ['c1', 'c10', 'c100']) expectLoop(levels[k], `end_to_end.create_to_webhook.${k}`)
    })

    expect(r.scale.complete).toBe(true)
    for (const k of [
      'locks',
      'connected',
      'provision_s',
      'connected_s',
      'online_s',
      'rss_mb',
      'peak_rss_mb',
      'lock_processes',
    ])
      positive(r.scale[k], `scale.${k}`)
    expect(r.scale.start_failures).toBe(0)
    expect(Array.isArray(r.scale.progress)).toBe(true)

    ranOrSkipped(r.fanout, 'fanout', (f) => {
      positive(f.deliveries, 'fanout.deliveries')
      positive(f.deliveries_per_s, 'fanout.deliveries_per_s')
      expect(f.bad_signatures).toBe(0)
    })

    expectLoop(r.peer.latchkey, 'peer.latchkey')
    expectLoop(r.peer.fake, 'peer.fake')
    positive(r.peer.ratio, 'peer.ratio')
    expect(r.peer.latchkey_request).toMatch(/sync/)

    for (const k of ['mqtt_per_s', 'http_per_s', 'webhook_per_s', 'attempts_per_s'])
      positive(r.raw.concurrent_ceiling[k], `raw.concurrent_ceiling.${k}`)
    for (const k of ['c1', 'c10', 'c100']) {
      expect(r.end_to_end.sync[k].disk_kb_per_op.latchkey, `end_to_end.sync.${k}.disk_kb_per_op`).toBeTypeOf('number')
    }
    expectLoop(r.peer.latchkey_async, 'peer.latchkey_async')

    // Case 6: two instances on a private PostgreSQL and mosquitto, beside the embedded figures at the same levels.
    // Each level completed attempts and none failed: an ack that one instance commits while the other records the
    // command as sent must not put the attempt back to pending. Each instance took device messages from the shared
    // subscription at each level.
    ranOrSkipped(r.cluster, 'cluster', (c) => {
      expect(c.embedded.measured).toBe('case 2a')
      for (const k of ['c10', 'c100']) {
        expect(c.embedded.sync[k], `cluster.embedded.sync.${k}`).toEqual(r.end_to_end.sync[k])
        for (const [set, labels] of [
          ['embedded_postgres', ['latchkey', 'postgres']],
          ['one_instance', ['a', 'mosquitto', 'postgres']],
          ['two_instances', ['a', 'b', 'mosquitto', 'postgres']],
        ] as const) {
          positive(c[set][k]?.latency?.n, `cluster.${set}.${k}.latency.n`)
          expect(c[set][k].errors, `cluster.${set}.${k}.errors`).toBe(0)
          for (const label of labels)
            expect(c[set][k].cpu_ms_per_op[label], `cluster.${set}.${k}.cpu_ms_per_op.${label}`).toBeTypeOf('number')
        }
        for (const instance of ['a', 'b'])
          positive(
            c.two_instances_counters[k][instance].device_messages,
            `cluster.two_instances_counters.${k}.${instance}.device_messages`,
          )
      }
    })
    expect(output).toMatch(/6 2 instances, PostgreSQL \+ mosquitto, sync:true, 100 in flight/)

    // Every target of docs/performance.md, measured in this run: numbers, a verdict, and the ratio to the target.
    const names = r.targets.map((t: Json) => t.name)
    expect(new Set(names).size).toBe(names.length)
    expect(r.targets.length).toBe(12)
    for (const t of r.targets) {
      expect(t).toMatchObject({ name: expect.any(String), target: expect.any(Number), unit: expect.any(String) })
      expect(['at_least', 'at_most']).toContain(t.kind)
      expect([true, false, null]).toContain(t.met)
      if (t.name.startsWith('RSS')) expect(t.met, 'a quick run cannot judge 20,000 locks').toBeNull()
      else {
        // Everything else ran in this quick run, so each has a value, a verdict and its ratio to the target.
        expect(t.value, t.name).toBeTypeOf('number')
        expect(t.ratio, t.name).toBeCloseTo(t.value / t.target, 1)
        expect(t.met, t.name).toBe(t.kind === 'at_least' ? t.value >= t.target : t.value <= t.target)
      }
    }
    expect(output).toMatch(/target: attempts\/s, 100 in flight \/ concurrent ceiling/)
  }, 200_000)
})
