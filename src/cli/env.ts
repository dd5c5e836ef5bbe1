import { readFileSync, statSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'
import { z } from 'zod'
import { CliError, EXIT } from './errors.js'

/**
 * Where the CLI finds latchkey and its key (docs/cli.md): LATCHKEY_URL, LATCHKEY_API_KEY and
 * LATCHKEY_ADMIN_API_KEY, else a JSON config file that only its owner can read. These are the client's settings,
 * not the server's: the server reads its own environment in src/config.ts.
 */

export interface CliSettings {
  url: string
  apiKey: string | undefined
  adminApiKey: string | undefined
  /** The config file that was read, if any. */
  configPath: string | undefined
}

const DEFAULT_URL = 'http://127.0.0.1:3000'

const ConfigFile = z.strictObject({
  url: z.url().optional(),
  api_key: z.string().min(1).optional(),
  admin_api_key: z.string().min(1).optional(),
})

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(base, 'latchkey', 'config.json')
}

/** Reads the config file; a file that its group or others may read is refused, as it holds keys. */
function readConfigFile(path: string, required: boolean): z.infer<typeof ConfigFile> | undefined {
  let mode: number
  try {
    mode = statSync(path).mode
  } catch {
    if (required) throw new CliError(EXIT.usage, `config file ${path} does not exist`)
    return undefined
  }
  if ((mode & 0o077) !== 0) {
    throw new CliError(
      EXIT.usage,
      `config file ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${path}`,
    )
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'))
  } catch (error) {
    throw new CliError(EXIT.usage, `config file ${path} is not valid JSON: ${(error as Error).message}`)
  }
  const result = ConfigFile.safeParse(parsed)
  if (!result.success) throw new CliError(EXIT.usage, `config file ${path}: ${z.prettifyError(result.error)}`)
  return result.data
}

export function loadCliSettings(env: NodeJS.ProcessEnv = process.env, urlFlag?: string): CliSettings {
  const explicit = env.LATCHKEY_CONFIG
  const path = explicit || defaultConfigPath(env)
  const file = readConfigFile(path, Boolean(explicit))
  const url = urlFlag || env.LATCHKEY_URL || file?.url || DEFAULT_URL
  return {
    url: url.replace(/\/+$/, ''),
    apiKey: env.LATCHKEY_API_KEY || file?.api_key,
    adminApiKey: env.LATCHKEY_ADMIN_API_KEY || file?.admin_api_key,
    configPath: file ? path : undefined,
  }
}

/** The environment handed to child processes (`serve`, `simulate`), with the settings the CLI resolved. */
export function childEnv(settings: CliSettings): NodeJS.ProcessEnv {
  return {
    ...process.env,
    LATCHKEY_URL: settings.url,
    ...(settings.apiKey ? { LATCHKEY_API_KEY: settings.apiKey } : {}),
  }
}
