import { describe, expect, it } from 'vitest'
import { Lifecycle } from '../../src/compose/lifecycle.js'

function recorder() {
  const closed: string[] = []
  const errors: string[] = []
  const lifecycle = new Lifecycle((error, part) => errors.push(`${part}: ${(error as Error).message}`))
  const part = (name: string) => () => {
    closed.push(name)
  }
  return { closed, errors, lifecycle, part }
}

describe('Lifecycle', () => {
  it('closes parts in reverse order of start', async () => {
    // Scenario: store, broker, http started in that order → closed http, broker, store.
    const { closed, lifecycle, part } = recorder()
    for (const name of ['store', 'broker', 'http']) lifecycle.defer(name, part(name))
    await lifecycle.close()
    expect(closed).toEqual(['http', 'broker', 'store'])
  })

  it('closes each part once when close is called twice, at once or later', async () => {
    // Scenario: two concurrent closes and a third after they finish → every part closed exactly once, in LIFO order.
    const { closed, lifecycle, part } = recorder()
    for (const name of ['a', 'b', 'c']) lifecycle.defer(name, part(name))
    await Promise.all([lifecycle.close(), lifecycle.close()])
    await lifecycle.close()
    expect(closed).toEqual(['c', 'b', 'a'])
  })

  it('keeps closing after a part fails, and reports the failure with its name', async () => {
    // Scenario: the middle part throws → the others still close; the error names the part.
    const { closed, errors, lifecycle, part } = recorder()
    lifecycle.defer('store', part('store'))
    lifecycle.defer('broker', async () => {
      throw new Error('boom')
    })
    lifecycle.defer('http', part('http'))
    await lifecycle.close()
    expect(closed).toEqual(['http', 'store'])
    expect(errors).toEqual(['broker: boom'])
  })

  it('closes a part registered after close at once', async () => {
    // Scenario: a step finishes starting after shutdown began → its part is not left running.
    const { closed, lifecycle, part } = recorder()
    lifecycle.defer('store', part('store'))
    await lifecycle.close()
    lifecycle.defer('late', part('late'))
    await lifecycle.close()
    expect(closed).toEqual(['store', 'late'])
  })
})
