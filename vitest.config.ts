import { defineConfig } from 'vitest/config'

// LATCHKEY_TEST_STORE=postgres (npm run test:pg) runs the store-touching tests on a private PostgreSQL started by
// the global setup; the others (units, the simulator alone, the SQLite query plans, the bench) run once, on SQLite.
const postgres = process.env.LATCHKEY_TEST_STORE === 'postgres'

export default defineConfig({
  test: {
    include: postgres
      ? [
          'test/integration/**/*.test.ts',
          'test/webhooks/**/*.test.ts',
          'test/deliveries/**/*.test.ts',
          'test/postgres/**/*.test.ts',
          'test/http/**/*.test.ts',
        ]
      : ['test/**/*.test.ts'],
    exclude: postgres ? ['test/deliveries/keyset.test.ts'] : ['test/postgres/**'],
    globalSetup: ['test/helpers/build-global-setup.ts', 'test/helpers/pg-global-setup.ts'],
    setupFiles: ['test/helpers/pg-setup-file.ts'],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    pool: 'forks',
  },
})
