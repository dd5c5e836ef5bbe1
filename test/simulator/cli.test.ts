import { spawn } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { once } from 'node:events'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, test, vi } from 'vitest'
import { deviceTopic } from '../../devices/index.js'
import { parseCliArgs, startStatusLine, UsageError, type CliConfig } from '../../simulator/cli.js'
import { writeCredentialsFile } from '../../simulator/index.js'
import { buildCommand, it } from './helpers.js'

const repoRoot = fileURLToPath(new URL('../../', import.meta.url))

const config = (argv: string[]): CliConfig => {
  const parsed = parseCliArgs(argv)
  if (parsed.help) throw new Error('unexpected --help')
  return parsed.config
}

describe('simulate CLI arguments', () => {
  test('reads --ca, the CA to trust for an mqtts:// broker', () => {
    // Scenario: --ca FILE → the path lands in the config (the file is read when the fleet is built).
    expect(config(['--from', 'creds.json', '--ca', '/tmp/ca.pem']).ca).toBe('/tmp/ca.pem')
  })

  test('reads an API source and every knob', () => {
    // Scenario: the full command line of the brief maps onto the behaviour schema.
    const c = config(
      (
        '--api http://127.0.0.1:3000 --key seam_x --count 10 --latency 10-50 --jam 0.05 --door-open 0.01 ' +
        '--low-battery 0 --busy 0.1 --silent 0.2 --duplicate 0.3 --late 0.4 --flap-every 60000 --flap-down 2000 ' +
        '--manual-per-minute 1 --battery-drain 0.001 --save creds.json --mqtt-url mqtt://127.0.0.1:1883 --accepted'
      ).split(' '),
    )
    expect(c.source).toEqual({
      kind: 'api',
      apiUrl: 'http://127.0.0.1:3000',
      apiKey: 'seam_x',
      count: 10,
      namePrefix: 'sim-lock',
      save: 'creds.json',
    })
    expect(c.mqttUrl).toBe('mqtt://127.0.0.1:1883')
    expect(c.behaviour).toMatchObject({
      ackLatencyMs: [10, 50],
      sendAccepted: true,
      jam: 0.05,
      doorOpen: 0.01,
      busy: 0.1,
      silent: 0.2,
      duplicateAck: 0.3,
      lateAck: 0.4,
      flap: { everyMs: 60_000, downMs: 2_000 },
      manualEventsPerMinute: 1,
      batteryDrainPerCommand: 0.001,
    })
  })

  test('reads a file source with a fixed latency', () => {
    // Scenario: --from with --latency 20.
    const c = config(['--from', 'creds.json', '--latency', '20'])
    expect(c.source).toEqual({ kind: 'file', path: 'creds.json' })
    expect(c.behaviour.ackLatencyMs).toBe(20)
  })

  test.for([
    [['--from', 'f', '--jam', '2'], /--jam/],
    [['--from', 'f', '--latency', 'fast'], /--latency/],
    [['--from', 'f', '--latency', '50-10'], /--latency/],
    [['--api', 'http://x', '--count', '3'], /--key/],
    [['--api', 'http://x', '--key', 'k', '--count', '0'], /--count/],
    [['--from', 'f', '--api', 'http://x'], /either --from or --api/],
    [['--from', 'f', '--flap-down', '10'], /--flap-every/],
    [['--from', 'f', '--bogus'], /bogus/],
  ] as Array<[string[], RegExp]>)('refuses %j', ([argv, message]) => {
    // Scenario: bad input is a UsageError naming the flag (main() prints it with the usage and exits 2).
    expect(() => parseCliArgs(argv)).toThrow(UsageError)
    expect(() => parseCliArgs(argv)).toThrow(message)
  })

  test('takes the API key and URL from the environment, so no secret is needed on the command line', () => {
    // Scenario: LATCHKEY_API_KEY and LATCHKEY_URL set, `--count 2 --name-prefix door` → an API source with both.
    const env = { LATCHKEY_API_KEY: 'seam_from_env', LATCHKEY_URL: 'http://127.0.0.1:4000' }
    const parsed = parseCliArgs(['--count', '2', '--name-prefix', 'door'], env)
    expect(parsed.help === false && parsed.config.source).toEqual({
      kind: 'api',
      apiUrl: 'http://127.0.0.1:4000',
      apiKey: 'seam_from_env',
      count: 2,
      namePrefix: 'door',
      save: undefined,
    })
    expect(() => parseCliArgs(['--api', 'http://x', '--count', '2'], {})).toThrow(/LATCHKEY_API_KEY/)
  })

  test('prints a status line every 5 s off a terminal, and rewrites it every second on one', () => {
    // Scenario: 10 s of a running fleet → 2 lines in a pipe; 10 in-place rewrites on a terminal.
    vi.useFakeTimers()
    try {
      const fleet = { statusLine: () => 'locks 1/1 online' }
      const piped: string[] = []
      const stopPiped = startStatusLine(fleet, { isTTY: false, write: (text: string) => piped.push(text) })
      const tty: string[] = []
      const stopTty = startStatusLine(fleet, { isTTY: true, write: (text: string) => tty.push(text) })
      vi.advanceTimersByTime(4_999)
      expect(piped).toEqual([])
      vi.advanceTimersByTime(5_001)
      stopPiped()
      stopTty()
      expect(piped).toEqual(['locks 1/1 online\n', 'locks 1/1 online\n'])
      expect(tty.filter((text) => text.startsWith('\r'))).toHaveLength(10)
    } finally {
      vi.useRealTimers()
    }
  })

  test('--help', () => {
    // Scenario: help wins over everything else.
    expect(parseCliArgs(['--help', '--jam', '7'])).toEqual({ help: true })
  })
})

describe('simulate CLI process', () => {
  it('runs a fleet from a credentials file and stops it cleanly on SIGINT', async ({ mqtt }) => {
    // Scenario: two locks from --from; they come online and obey a command; SIGINT stops them and exits 0.
    const dir = await mkdtemp(join(tmpdir(), 'latchkey-cli-'))
    try {
      const ids = [randomUUID(), randomUUID()]
      const path = join(dir, 'creds.json')
      await writeCredentialsFile(
        path,
        ids.map((device_id) => ({ device_id, url: 'mqtt://unused:1', password: 'pw' })),
      )
      const child = spawn(
        process.execPath,
        ['--import', 'tsx', 'simulator/cli.ts', '--from', path, '--mqtt-url', mqtt.url],
        {
          cwd: repoRoot,
          stdio: ['ignore', 'pipe', 'pipe'],
        },
      )
      let output = ''
      child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()))
      child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()))
      const exited = once(child, 'exit')
      for (const id of ids) {
        await mqtt.waitFor((m) => m.topic === deviceTopic(id, 'status') && m.payload === 'online', 20_000)
      }
      const command = buildCommand()
      await mqtt.send(ids[0] ?? '', command)
      await mqtt.waitForAcks(ids[0] ?? '', command.command_id)
      child.kill('SIGINT')
      const [code] = await exited
      expect(code, output).toBe(0)
      expect(output).toContain('locks 0/2 online | commands 1 | acks success 1 error 0 silent 0 | dup 0')
      for (const id of ids) await mqtt.waitFor((m) => m.topic === deviceTopic(id, 'status') && m.payload === 'offline')
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})
