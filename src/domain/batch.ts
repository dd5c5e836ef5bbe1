/**
 * Calls made during one synchronous run, answered together at its end by one `load` of all their keys: one query
 * or statement for a page of work instead of one each. `load` answers in the order of the keys it was given; when it
 * throws, every call of the batch rejects with its error.
 */
export function batchPerTask<K, V>(load: (keys: K[]) => V[] | Promise<V[]>): (key: K) => Promise<V> {
  let asked: Array<{ key: K; resolve: (value: V) => void; reject: (error: unknown) => void }> = []

  async function answer(): Promise<void> {
    const batch = asked
    asked = []
    try {
      const values = await load(batch.map((one) => one.key))
      batch.forEach((one, i) => one.resolve(values[i] as V))
    } catch (error) {
      for (const one of batch) one.reject(error)
    }
  }

  return (key) =>
    new Promise<V>((resolve, reject) => {
      asked.push({ key, resolve, reject })
      if (asked.length === 1) queueMicrotask(() => void answer())
    })
}
