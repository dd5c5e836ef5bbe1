import { readFileSync } from 'node:fs'
import { createSecureContext } from 'node:tls'
import type { Config } from './config.js'

/** The PEM certificate chain and key named by TLS_CERT_FILE and TLS_KEY_FILE (docs/operations.md, "TLS"). */
export interface TlsContext {
  cert: Buffer
  key: Buffer
}

/**
 * Reads the certificate and key files, or undefined when TLS is off. Called at start and on every reload (SIGHUP):
 * a renewed pair replaces the old one for new connections; a file that cannot be read throws, and the caller keeps
 * the old pair.
 */
export function readTlsContext(config: Pick<Config, 'TLS_CERT_FILE' | 'TLS_KEY_FILE'>): TlsContext | undefined {
  if (!config.TLS_CERT_FILE || !config.TLS_KEY_FILE) return undefined
  const context = { cert: readFileSync(config.TLS_CERT_FILE), key: readFileSync(config.TLS_KEY_FILE) }
  // Throws here, before anything is swapped, on a malformed PEM or a key that does not match the certificate.
  createSecureContext(context)
  return context
}
