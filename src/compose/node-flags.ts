/**
 * The node flags latchkey's server runs with: `npm start` (package.json, where they are written out), `latchkey
 * serve` and the benchmark's latchkey. A young generation of 32 MiB per semi-space instead of node 20's 16 MiB: a
 * lock command's garbage (its request, its MQTT packets, its rows as objects) has twice as long to die before a
 * collection copies what is still alive, and collections come half as often (docs/operations.md#memory,
 * docs/performance.md#a-larger-young-generation).
 */
export const SERVER_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=32']

/**
 * The server's entry point in the build (`npm run build`, docs/operations.md#the-build), from latchkey's directory:
 * what `npm start`, `latchkey serve` and the benchmark run.
 */
export const SERVER_ENTRY = 'dist/src/main.js'
