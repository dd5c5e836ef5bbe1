import { describe, expect, it } from 'vitest'
import { batchPerTask } from '../../src/domain/batch.js'

describe('batchPerTask', () => {
  it('answers the calls of one synchronous run with one load, each with its own value', async () => {
    const loads: number[][] = []
    const double = batchPerTask((keys: number[]) => {
      loads.push(keys)
      return keys.map((key) => key * 2)
    })
    const first = await Promise.all([double(1), double(2), double(3)])
    const second = await double(4)
    expect(first).toEqual([2, 4, 6])
    expect(second).toBe(8)
    expect(loads).toEqual([[1, 2, 3], [4]])
  })

  it('rejects every call of the batch when the load fails, and the next batch loads again', async () => {
    let fail = true
    const load = batchPerTask(async (keys: string[]) => {
      if (fail) throw new Error('store is away')
      return keys
    })
    const failed = await Promise.allSettled([load('a'), load('b')])
    expect(failed.map((one) => one.status)).toEqual(['rejected', 'rejected'])
    fail = false
    expect(await load('c')).toBe('c')
  })
})
