export * from './topics.js'
export * from './schemas.js'
