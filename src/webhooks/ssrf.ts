import { lookup as dnsLookup, type LookupAddress } from 'node:dns'
import { BlockList, isIP, type LookupFunction } from 'node:net'
import { httpUrl } from '../domain/webhook.js'

/**
 * The SSRF guard of docs/webhooks.md: a webhook may not reach loopback, private, link-local, CGNAT, multicast or other
 * reserved addresses, unless WEBHOOK_ALLOWED_CIDRS covers them. Checked when a webhook is created or its URL
 * changed, and again on every new connection at delivery time (`lookup`), so a DNS answer that changes after
 * creation (rebinding) is refused too. Every address a host resolves to must pass.
 */

type Family = 'ipv4' | 'ipv6'

/** IANA special-purpose registries (RFC 6890 and successors). IPv4-mapped IPv6 addresses match the IPv4 rows. */
const RESERVED: ReadonlyArray<readonly [address: string, prefix: number, family: Family, label: string]> = [
  ['0.0.0.0', 8, 'ipv4', 'an unspecified ("this network") address'],
  ['10.0.0.0', 8, 'ipv4', 'a private address'],
  ['100.64.0.0', 10, 'ipv4', 'a CGNAT (shared) address'],
  ['127.0.0.0', 8, 'ipv4', 'a loopback address'],
  ['169.254.0.0', 16, 'ipv4', 'a link-local address'],
  ['172.16.0.0', 12, 'ipv4', 'a private address'],
  ['192.0.0.0', 24, 'ipv4', 'a reserved (IETF protocol) address'],
  ['192.0.2.0', 24, 'ipv4', 'a documentation address'],
  ['192.88.99.0', 24, 'ipv4', 'a reserved (6to4 relay) address'],
  ['192.168.0.0', 16, 'ipv4', 'a private address'],
  ['198.18.0.0', 15, 'ipv4', 'a reserved (benchmarking) address'],
  ['198.51.100.0', 24, 'ipv4', 'a documentation address'],
  ['203.0.113.0', 24, 'ipv4', 'a documentation address'],
  ['224.0.0.0', 4, 'ipv4', 'a multicast address'],
  ['240.0.0.0', 4, 'ipv4', 'a reserved address'],
  ['::', 128, 'ipv6', 'an unspecified address'],
  ['::1', 128, 'ipv6', 'a loopback address'],
  ['::', 96, 'ipv6', 'a reserved (IPv4-compatible) address'],
  ['64:ff9b::', 96, 'ipv6', 'a reserved (NAT64) address'],
  ['64:ff9b:1::', 48, 'ipv6', 'a reserved (local NAT64) address'],
  ['100::', 64, 'ipv6', 'a reserved (discard) address'],
  ['2001::', 23, 'ipv6', 'a reserved (IETF protocol) address'],
  ['2001:db8::', 32, 'ipv6', 'a documentation address'],
  ['2002::', 16, 'ipv6', 'a reserved (6to4) address'],
  ['3fff::', 20, 'ipv6', 'a documentation address'],
  ['5f00::', 16, 'ipv6', 'a reserved (SRv6) address'],
  ['fc00::', 7, 'ipv6', 'a private (unique local) address'],
  ['fe80::', 10, 'ipv6', 'a link-local address'],
  ['fec0::', 10, 'ipv6', 'a reserved (site-local) address'],
  ['ff00::', 8, 'ipv6', 'a multicast address'],
]

export type Resolve = (hostname: string) => Promise<LookupAddress[]>

export interface UrlGuard {
  /** Why a webhook URL may not be used, or undefined when it may. Resolves the host. */
  refusal(url: string): Promise<string | undefined>
  /** For a host that is an IP literal (connections to those skip `lookup`). */
  literalRefusal(hostname: string): string | undefined
  /** A `dns.lookup` for http.request that fails for a forbidden address. */
  lookup: LookupFunction
}

const ALLOW_HINT = 'allow it with WEBHOOK_ALLOWED_CIDRS'

function familyOf(address: string): Family {
  return isIP(address) === 6 ? 'ipv6' : 'ipv4'
}

function subnetList(address: string, prefix: number, family: Family): BlockList {
  const list = new BlockList()
  list.addSubnet(address, prefix, family)
  return list
}

/**
 * What kind of forbidden address this is ("a loopback address"), or undefined when it may be used. Throws at start-up
 * on an allow-list entry that is not a CIDR.
 */
export function createAddressPolicy(allowedCidrs: readonly string[]): (address: string) => string | undefined {
  const allowed = new BlockList()
  for (const cidr of allowedCidrs) {
    const [address = '', bits = ''] = cidr.split('/')
    try {
      allowed.addSubnet(address, Number(bits), familyOf(address))
    } catch (error) {
      throw new Error(`WEBHOOK_ALLOWED_CIDRS: ${cidr} is not a valid CIDR`, { cause: error })
    }
  }
  const reserved = RESERVED.map(([address, prefix, family, label]) => ({
    list: subnetList(address, prefix, family),
    label,
  }))
  return (address) => {
    if (isIP(address) === 0) return 'not an IP address'
    const family = familyOf(address)
    if (allowed.check(address, family)) return undefined
    return reserved.find(({ list }) => list.check(address, family))?.label
  }
}

const systemResolve: Resolve = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true }, (error, addresses) => (error ? reject(error) : resolve(addresses))),
  )

function bare(hostname: string): string {
  return hostname.startsWith('[') && hostname.endsWith(']') ? hostname.slice(1, -1) : hostname
}

export function createUrlGuard(options: { allowedCidrs: readonly string[]; resolve?: Resolve }): UrlGuard {
  const refuse = createAddressPolicy(options.allowedCidrs)
  const resolve = options.resolve ?? systemResolve

  function refusalOf(hostname: string, addresses: LookupAddress[]): string | undefined {
    if (addresses.length === 0) return `${hostname} does not resolve to any address`
    for (const { address } of addresses) {
      const kind = refuse(address)
      if (kind) return `${hostname} resolves to ${address}, ${kind}; ${ALLOW_HINT}`
    }
    return undefined
  }

  const literalRefusal = (hostname: string): string | undefined => {
    const host = bare(hostname)
    if (isIP(host) === 0) return undefined
    const kind = refuse(host)
    return kind && `${host} is ${kind}; ${ALLOW_HINT}`
  }

  const lookup = ((
    hostname: string,
    opts: { all?: boolean; family?: number | string },
    callback: (...args: unknown[]) => void,
  ) => {
    resolve(hostname).then(
      (found) => {
        const family =
          opts.family === 4 || opts.family === 'IPv4' ? 4 : opts.family === 6 || opts.family === 'IPv6' ? 6 : 0
        const addresses = family === 0 ? found : found.filter((a) => a.family === family)
        const why = refusalOf(hostname, found)
        if (why) return callback(Object.assign(new Error(`refused: ${why}`), { code: 'ERR_WEBHOOK_ADDRESS_REFUSED' }))
        const first = addresses[0]
        if (!first)
          return callback(Object.assign(new Error(`${hostname} has no IPv${family} address`), { code: 'ENOTFOUND' }))
        if (opts.all) callback(null, addresses)
        else callback(null, first.address, first.family)
      },
      (error: unknown) => callback(error),
    )
  }) as unknown as LookupFunction

  return {
    literalRefusal,
    lookup,
    async refusal(raw) {
      const url = httpUrl(raw)
      if (typeof url === 'string') return url
      const host = bare(url.hostname)
      if (isIP(host) !== 0) return literalRefusal(host)
      try {
        return refusalOf(host, await resolve(host))
      } catch (error) {
        return `cannot resolve ${host} (${(error as { code?: string }).code ?? 'lookup failed'})`
      }
    },
  }
}
