import { describe, expect, it } from 'vitest'
import {
  canReceive,
  canSubscribe,
  canSubscribeFilter,
  deviceAcl,
  parseSharedFilter,
  serviceAcl,
  type Principal,
} from '../../broker/acl.js'
import { deviceTopic } from '../../devices/index.js'

const service: Principal = { kind: 'service' }
const device: Principal = { kind: 'device', deviceId: 'dev-a' }

describe('ACL for external brokers', () => {
  it('deviceAcl lists exactly the literal topics the embedded broker allows', () => {
    expect(deviceAcl('dev-a')).toEqual({
      publish: ['acks', 'state', 'status', 'events'].map((k) => `latchkey/v1/devices/dev-a/${k}`),
      subscribe: ['latchkey/v1/devices/dev-a/commands'],
    })
    expect(serviceAcl()).toEqual({
      publish: 'latchkey/v1/devices/+/commands',
      subscribe: ['acks', 'state', 'status', 'events'].map((k) => `latchkey/v1/devices/+/${k}`),
    })
  })

  it.each([
    ['latchkey/v1/devices/+/acks', { group: undefined, filter: 'latchkey/v1/devices/+/acks' }],
    ['$share/latchkey/latchkey/v1/devices/+/acks', { group: 'latchkey', filter: 'latchkey/v1/devices/+/acks' }],
    ['$share/g/#', { group: 'g', filter: '#' }],
    ['$share//t', undefined],
    ['$share/g/', undefined],
    ['$share/g', undefined],
    ['$share/+/t', undefined],
  ])('parseSharedFilter(%s)', (topic, expected) => {
    expect(parseSharedFilter(topic)).toEqual(expected)
  })

  it('canSubscribeFilter: the service takes its uplinks plain or shared; a device never shares', () => {
    expect(canSubscribeFilter(service, '$share/latchkey/latchkey/v1/devices/+/status')).toBeNull()
    expect(canSubscribeFilter(service, 'latchkey/v1/devices/+/status')).toBeNull()
    expect(canSubscribeFilter(service, '$share/latchkey/latchkey/v1/devices/+/commands')).toBe('not_allowed')
    expect(canSubscribeFilter(service, '$share/latchkey/#')).toBe('not_allowed')
    expect(canSubscribeFilter(device, deviceTopic('dev-a', 'commands'))).toBeNull()
    expect(canSubscribeFilter(device, `$share/g/${deviceTopic('dev-a', 'commands')}`)).toBe('not_allowed')
    expect(canSubscribeFilter(device, deviceTopic('dev-b', 'commands'))).toBe('foreign_topic')
  })

  it('the embedded check is unchanged: a shared filter is refused there', () => {
    expect(canSubscribe(service, '$share/latchkey/latchkey/v1/devices/+/status')).toBe('not_allowed')
  })

  it('canReceive: a device its own commands; the service every uplink, never commands', () => {
    expect(canReceive(device, deviceTopic('dev-a', 'commands'))).toBeNull()
    expect(canReceive(device, deviceTopic('dev-b', 'commands'))).toBe('foreign_topic')
    expect(canReceive(device, deviceTopic('dev-a', 'acks'))).toBe('not_allowed')
    expect(canReceive(service, deviceTopic('dev-b', 'acks'))).toBeNull()
    expect(canReceive(service, deviceTopic('dev-b', 'commands'))).toBe('not_allowed')
    expect(canReceive(service, 'latchkey/v1/devices/+/acks')).toBe('wildcard')
  })
})
