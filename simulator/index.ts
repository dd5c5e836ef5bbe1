/** Virtual locks for tests, benchmarks and demos (docs/design.md); built only on `devices/` and mqtt.js. */
export * from './behaviour.js'
export * from './counters.js'
export * from './lock-connection.js'
export * from './lock.js'
export * from './fleet.js'
export { parseCliArgs, UsageError, USAGE, type CliConfig, type CliParse, type CliSource } from './cli.js'
