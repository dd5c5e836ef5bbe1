/**
 * The node flags latchkey's server runs with: `npm start` (package.json, where they are written out), `latchkey
 * serve` and the benchmark's latchkey (docs/operations.md#memory).
 * - A young generation of 32 MiB per semi-space instead of node 20's 16 MiB: a lock command's garbage (its request,
 *   its MQTT packets, its rows as objects) has twice as long to die before a collection copies what is still alive,
 *   and collections come half as often (docs/performance.md#a-larger-young-generation).
 * - No allocation-site pretenuring: V8 would otherwise start allocating the objects of a site straight in the old
 *   generation once many of them survived a collection, and a lock command's objects, which die young, then pile up
 *   there until a full collection (docs/performance.md#garbage-collection-on-postgresql).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32', '--no-allocation-site-pretenuring']

/**
 * The server's entry point in the build (`npm run build`, docs/operations.md#the-build), from latchkey's directory:
 * what `npm start`, `latchkey serve` and the benchmark run.
 */
export const SERVER_ENTRY = 'dist/src/main.js'
