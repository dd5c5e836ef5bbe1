import { describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.js'
import { problemsOf } from '../helpers/config.js'

describe('HTTP-facing configuration', () => {
  it.each([
    '127.0.0.0/99',
    '127.0.0.0/33',
    '::1/129',
    '300.0.0.1/8',
    '10.0.0/8',
    'localhost/8',
    '10.0.0.0',
    '10.0.0.0/8,fe80::/10,1.2.3.4/-1',
  ])('refuses WEBHOOK_ALLOWED_CIDRS=%s at start-up', (value) => {
    // Scenario: an invalid address or a prefix out of its family's range is a config error naming the variable.
    const problems = problemsOf({ WEBHOOK_ALLOWED_CIDRS: value })
    expect(problems).toHaveLength(1)
    expect(problems[0]).toMatch(/^WEBHOOK_ALLOWED_CIDRS: not CIDR notation/)
  })

  it('takes valid IPv4 and IPv6 CIDRs', () => {
    // Scenario: prefixes 0–32 (IPv4) and 0–128 (IPv6) on valid addresses are accepted as listed.
    const config = loadConfig({ WEBHOOK_ALLOWED_CIDRS: '127.0.0.0/8, 10.0.0.1/32,0.0.0.0/0,::1/128,fd00::/8' })
    expect(config.WEBHOOK_ALLOWED_CIDRS).toEqual(['127.0.0.0/8', '10.0.0.1/32', '0.0.0.0/0', '::1/128', 'fd00::/8'])
  })

  it('reads PUBLIC_URL and the rate limits', () => {
    // Scenario: defaults are generous and on; 0 turns a limit off; PUBLIC_URL must be an http(s) URL.
    expect(loadConfig({})).toMatchObject({ RATE_LIMIT_PER_MINUTE: 600_000, RATE_LIMIT_AUTH_FAILURES_PER_MINUTE: 60 })
    expect(loadConfig({ RATE_LIMIT_PER_MINUTE: '0' }).RATE_LIMIT_PER_MINUTE).toBe(0)
    expect(problemsOf({ RATE_LIMIT_PER_MINUTE: '-1' })[0]).toMatch(/^RATE_LIMIT_PER_MINUTE:/)
    expect(loadConfig({ PUBLIC_URL: 'https://locks.example.com' }).PUBLIC_URL).toBe('https://locks.example.com')
    expect(problemsOf({ PUBLIC_URL: 'javascript:alert(1)' })[0]).toMatch(/^PUBLIC_URL:/)
  })
})
