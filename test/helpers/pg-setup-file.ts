import { afterAll } from 'vitest'
import { dropCreatedDatabases } from './store.js'

// Every test file drops the PostgreSQL databases it created (nothing to do on SQLite).
afterAll(() => dropCreatedDatabases())
