// Where a worker's fetch() may connect (SECURITY.md, the egress defence). By default everything
// public on the Internet, and nothing that is the machine itself, its networks or its cloud's
// metadata service: loopback, private (RFC 1918, RFC 4193), link-local, carrier-grade NAT
// (RFC 6598), multicast, unspecified, reserved and broadcast addresses, their IPv4-mapped and
// NAT64 / 6to4 IPv6 forms, and the cloud metadata addresses and names. The operator widens it
// with `allow` (CIDRs, addresses or hostnames) and narrows it with `deny`; deny wins.
//
// The check is made on the addresses the name resolves to, and the connection then goes to the
// address that passed (see host.ts: the socket's lookup answers with it), so a DNS answer that
// changes between check and connect (DNS rebinding) cannot redirect it. Every redirect hop is
// checked again.

import { lookup as dnsLookup } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface EgressOptions {
  /** Networks (CIDRs or addresses, IPv4 or IPv6) and hostnames ("api.internal", "*.corp.example") workers may reach although the default refuses them. */
  allow?: string[];
  /** Networks and hostnames workers may never reach; wins over allow. */
  deny?: string[];
  /**
   * Resolves a hostname to its addresses (default: dns.lookup with all: true). For embedders
   * with their own resolver, and for tests.
   */
  lookup?: (hostname: string) => Promise<{ address: string; family: number }[]>;
  /**
   * Outbound connections one account (WorkerDefinition.account) may have in use at once,
   * across destinations (default 32). A fetch past it waits for one of them to be released.
   */
  connectionsPerAccount?: number;
  /** Outbound connections one account may have in use at once to one destination (default 6, as workerd). */
  connectionsPerDestination?: number;
  /** Time a fetch has to get its response head, waiting for a connection and redirects included, in ms (default 30,000). */
  headersTimeoutMs?: number;
  /** Time a whole fetch may take, reading its response body included, in ms (default 300,000). */
  timeoutMs?: number;
}

/** How much of the network one account may hold, and for how long (EgressOptions). */
export interface OutboundLimits {
  connectionsPerAccount: number;
  connectionsPerDestination: number;
  headersTimeoutMs: number;
  timeoutMs: number;
}

export const DEFAULT_OUTBOUND_LIMITS: Readonly<OutboundLimits> = Object.freeze({
  connectionsPerAccount: 32,
  connectionsPerDestination: 6,
  headersTimeoutMs: 30_000,
  timeoutMs: 300_000,
});

function outboundLimits(options: EgressOptions): OutboundLimits {
  const limits = { ...DEFAULT_OUTBOUND_LIMITS };
  for (const key of Object.keys(limits) as (keyof OutboundLimits)[]) {
    const value = options[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
      throw new TypeError(`egress.${key} must be a whole number of at least 1, not ${JSON.stringify(value)}.`);
    }
    limits[key] = value;
  }
  if (limits.connectionsPerDestination > limits.connectionsPerAccount) limits.connectionsPerDestination = limits.connectionsPerAccount;
  return limits;
}

/** A vetted destination: connect to `address`, or the others in `addresses` (never resolve `hostname` again). */
export interface EgressTarget {
  hostname: string;
  address: string;
  family: 4 | 6;
  /** Every address the name resolved to, all vetted, in the resolver's order (for Happy Eyeballs). */
  addresses: { address: string; family: 4 | 6 }[];
}

export class EgressRefused extends TypeError {
  constructor(message: string) {
    super(message);
    this.name = 'TypeError';
  }
}

interface Network {
  /** 4 or 6; IPv4 networks match IPv4 addresses, including mapped ones. */
  family: 4 | 6;
  base: bigint;
  prefix: number;
}

type Category =
  | 'loopback' | 'private' | 'link-local' | 'multicast' | 'unspecified' | 'carrier-grade NAT'
  | 'reserved' | 'broadcast' | 'cloud metadata';

const DESCRIPTION: Record<Category, string> = {
  'loopback': 'loopback addresses are not reachable from workers',
  'private': 'private network addresses are not reachable from workers',
  'link-local': 'link-local addresses are not reachable from workers',
  'multicast': 'multicast addresses are not reachable from workers',
  'unspecified': 'unspecified addresses are not reachable from workers',
  'carrier-grade NAT': 'carrier-grade NAT addresses (100.64.0.0/10) are not reachable from workers',
  'reserved': 'reserved addresses are not reachable from workers',
  'broadcast': 'the broadcast address is not reachable from workers',
  'cloud metadata': 'cloud metadata services are not reachable from workers',
};

// The ranges refused by default, most specific first (the first match names the reason).
const DEFAULT_REFUSED: [string, Category][] = [
  ['169.254.169.254/32', 'cloud metadata'],
  ['fd00:ec2::254/128', 'cloud metadata'],
  ['0.0.0.0/8', 'unspecified'],
  ['127.0.0.0/8', 'loopback'],
  ['10.0.0.0/8', 'private'],
  ['172.16.0.0/12', 'private'],
  ['192.168.0.0/16', 'private'],
  ['100.64.0.0/10', 'carrier-grade NAT'],
  ['169.254.0.0/16', 'link-local'],
  ['224.0.0.0/4', 'multicast'],
  ['255.255.255.255/32', 'broadcast'],
  ['240.0.0.0/4', 'reserved'],
  ['192.0.0.0/24', 'reserved'],
  ['::/128', 'unspecified'],
  ['::1/128', 'loopback'],
  ['fc00::/7', 'private'],
  ['fec0::/10', 'private'],
  ['fe80::/10', 'link-local'],
  ['ff00::/8', 'multicast'],
];

/** Names that are the metadata service on some cloud, refused by name before any DNS lookup. */
const METADATA_HOSTNAMES = ['metadata.google.internal', 'metadata', 'metadata.azure.internal', 'instance-data', 'instance-data.ec2.internal'];

// --- Addresses -------------------------------------------------------------------------------

function parseIPv4(text: string): bigint | null {
  const parts = text.split('.');
  if (parts.length !== 4) return null;
  let value = 0n;
  for (const part of parts) {
    if (!/^[0-9]{1,3}$/.test(part)) return null;
    const n = Number(part);
    if (n > 255) return null;
    value = (value << 8n) | BigInt(n);
  }
  return value;
}

function parseIPv6(text: string): bigint | null {
  let s = text;
  const zone = s.indexOf('%');
  if (zone !== -1) s = s.slice(0, zone);
  if (isIP(s) !== 6) return null;
  // A trailing dotted quad is the last 32 bits.
  let tail: bigint | null = null;
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    tail = parseIPv4(s.slice(lastColon + 1));
    if (tail === null) return null;
    s = s.slice(0, lastColon + 1) + '0:0';
  }
  const [head, rest] = s.includes('::') ? s.split('::') as [string, string] : [s, undefined];
  const headGroups = head === '' ? [] : head.split(':');
  const restGroups = rest === undefined || rest === '' ? [] : rest.split(':');
  const missing = 8 - headGroups.length - restGroups.length;
  const groups = rest === undefined ? headGroups : [...headGroups, ...Array<string>(missing).fill('0'), ...restGroups];
  if (groups.length !== 8) return null;
  let value = 0n;
  for (const g of groups) value = (value << 16n) | BigInt(parseInt(g, 16));
  if (tail !== null) value = (value & ~0xffffffffn) | tail;
  return value;
}

/** An address as (family, value); IPv6 forms that carry an IPv4 address are that IPv4 address. */
function parseAddress(text: string): { family: 4 | 6; value: bigint } | null {
  const v4 = parseIPv4(text);
  if (v4 !== null) return { family: 4, value: v4 };
  const v6 = parseIPv6(text);
  if (v6 === null) return null;
  const high96 = v6 >> 32n;
  const low32 = v6 & 0xffffffffn;
  // ::ffff:a.b.c.d (IPv4-mapped), ::ffff:0:a.b.c.d (IPv4-translated), 64:ff9b::a.b.c.d and
  // 64:ff9b:1::/48 (NAT64), ::a.b.c.d (IPv4-compatible, deprecated but still routed by some stacks).
  if (high96 === 0xffffn || high96 === 0xffff0000n || high96 === 0x64ff9b0000000000000000n) return { family: 4, value: low32 };
  if (v6 >> 80n === 0x64ff9b0001n) return { family: 4, value: low32 };
  if (high96 === 0n && low32 > 1n) return { family: 4, value: low32 };
  // 2002:a.b.c.d::/48 (6to4) reaches the IPv4 address it embeds.
  if (v6 >> 112n === 0x2002n) return { family: 4, value: (v6 >> 80n) & 0xffffffffn };
  return { family: 6, value: v6 };
}

function parseNetwork(text: string): Network | null {
  const slash = text.indexOf('/');
  const addressText = slash === -1 ? text : text.slice(0, slash);
  const bare = addressText.startsWith('[') && addressText.endsWith(']') ? addressText.slice(1, -1) : addressText;
  const v4 = parseIPv4(bare);
  const v6 = v4 === null ? parseIPv6(bare) : null;
  if (v4 === null && v6 === null) return null;
  const family: 4 | 6 = v4 !== null ? 4 : 6;
  const bits = family === 4 ? 32 : 128;
  let prefix = bits;
  if (slash !== -1) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > bits) return null;
    prefix = Number(p);
  }
  let base = (v4 ?? v6)!;
  // An IPv4-mapped network written in IPv6 is the IPv4 network.
  if (family === 6 && prefix >= 96 && base >> 32n === 0xffffn) {
    return { family: 4, base: base & 0xffffffffn, prefix: prefix - 96 };
  }
  const mask = prefix === 0 ? 0n : ((1n << BigInt(prefix)) - 1n) << BigInt(bits - prefix);
  base &= mask;
  return { family, base, prefix };
}

function inNetwork(address: { family: 4 | 6; value: bigint }, network: Network): boolean {
  if (address.family !== network.family) return false;
  const bits = network.family === 4 ? 32 : 128;
  const shift = BigInt(bits - network.prefix);
  return address.value >> shift === network.base >> shift;
}

const DEFAULT_NETWORKS: [Network, Category][] = DEFAULT_REFUSED.map(([cidr, category]) => [parseNetwork(cidr)!, category]);

/** Why the default policy refuses `address`, or null when it is a public address. */
export function refusedCategory(address: string): Category | null {
  const parsed = parseAddress(address);
  if (parsed === null) return 'reserved';
  for (const [network, category] of DEFAULT_NETWORKS) if (inNetwork(parsed, network)) return category;
  return null;
}

// --- Hostnames -------------------------------------------------------------------------------

interface HostPattern {
  /** Exact name, or a suffix ("*.example.com" matches "a.example.com", not "example.com"). */
  name: string;
  wildcard: boolean;
}

function parseHostPattern(text: string): HostPattern | null {
  const lower = text.trim().toLowerCase().replace(/\.$/, '');
  if (lower.startsWith('*.')) {
    const name = lower.slice(2);
    return /^[a-z0-9.-]+$/.test(name) ? { name, wildcard: true } : null;
  }
  return /^[a-z0-9._-]+$/.test(lower) ? { name: lower, wildcard: false } : null;
}

function matchesHost(hostname: string, pattern: HostPattern): boolean {
  return pattern.wildcard ? hostname.endsWith('.' + pattern.name) : hostname === pattern.name;
}

/** The URL's hostname without IPv6 brackets and a trailing dot, lower-cased. */
export function bareHostname(hostname: string): string {
  let h = hostname.toLowerCase();
  if (h.startsWith('[') && h.endsWith(']')) h = h.slice(1, -1);
  if (h.endsWith('.')) h = h.slice(0, -1);
  return h;
}

// --- The policy ------------------------------------------------------------------------------

interface Rules {
  networks: Network[];
  hosts: HostPattern[];
}

function parseRules(entries: string[] | undefined, option: string): Rules {
  const rules: Rules = { networks: [], hosts: [] };
  for (const entry of entries ?? []) {
    if (typeof entry !== 'string') throw new TypeError(`${option}: every entry must be a string (a CIDR, an address or a hostname).`);
    const network = parseNetwork(entry.trim());
    if (network) {
      rules.networks.push(network);
      continue;
    }
    const host = parseHostPattern(entry);
    if (!host) throw new TypeError(`${option}: ${JSON.stringify(entry)} is neither a CIDR, an address nor a hostname.`);
    rules.hosts.push(host);
  }
  return rules;
}

async function defaultLookup(hostname: string): Promise<{ address: string; family: number }[]> {
  return dnsLookup(hostname, { all: true, verbatim: true });
}

export class EgressPolicy {
  private readonly allow: Rules;
  private readonly deny: Rules;
  private readonly lookup: (hostname: string) => Promise<{ address: string; family: number }[]>;
  /** The connection caps and deadlines of the fetches made under this policy (host.ts). */
  readonly limits: Readonly<OutboundLimits>;

  constructor(options: EgressOptions = {}) {
    this.allow = parseRules(options.allow, 'egress.allow');
    this.deny = parseRules(options.deny, 'egress.deny');
    this.lookup = options.lookup ?? defaultLookup;
    this.limits = Object.freeze(outboundLimits(options));
  }

  /**
   * Why a connection to `address` (reached through the name `hostname`) is refused, or null
   * when it is allowed. The message names the destination as the worker wrote it.
   */
  refusal(hostname: string, address: string): string | null {
    const parsed = parseAddress(address);
    const shown = hostname === address ? address : `${hostname} (${address})`;
    if (parsed === null) return `fetch to ${shown} refused: not an IP address this runtime can connect to`;
    if (this.deny.hosts.some((p) => matchesHost(hostname, p)) || this.deny.networks.some((n) => inNetwork(parsed, n))) {
      return `fetch to ${shown} refused: the operator's egress.deny does not let workers reach it`;
    }
    if (this.allow.hosts.some((p) => matchesHost(hostname, p)) || this.allow.networks.some((n) => inNetwork(parsed, n))) return null;
    const category = refusedCategory(address);
    if (category === null) return null;
    return `fetch to ${shown} refused: ${DESCRIPTION[category]} (the operator can allow them with egress.allow)`;
  }

  /**
   * Resolves and checks a destination. Every address the name resolves to must be allowed
   * (a name with one private answer among public ones is refused: which one a client would
   * use is not ours to know); the first is the one to connect to. Throws EgressRefused.
   */
  async resolve(urlHostname: string): Promise<EgressTarget> {
    const hostname = bareHostname(urlHostname);
    if (hostname === '') throw new EgressRefused('fetch refused: the URL has no host');
    const literal = isIP(hostname);
    if (literal !== 0) {
      const problem = this.refusal(hostname, hostname);
      if (problem) throw new EgressRefused(problem);
      return { hostname, address: hostname, family: literal as 4 | 6, addresses: [{ address: hostname, family: literal as 4 | 6 }] };
    }
    const allowedByName = this.allow.hosts.some((p) => matchesHost(hostname, p));
    if (this.deny.hosts.some((p) => matchesHost(hostname, p))) {
      throw new EgressRefused(`fetch to ${hostname} refused: the operator's egress.deny does not let workers reach it`);
    }
    if (!allowedByName && METADATA_HOSTNAMES.includes(hostname)) {
      throw new EgressRefused(`fetch to ${hostname} refused: ${DESCRIPTION['cloud metadata']} (the operator can allow them with egress.allow)`);
    }
    let answers: { address: string; family: number }[];
    try {
      answers = await this.lookup(hostname);
    } catch (error) {
      const code = (error as { code?: string }).code;
      throw new TypeError(`fetch to ${hostname} failed: DNS lookup failed${code ? ` (${code})` : ''}`);
    }
    if (!Array.isArray(answers) || answers.length === 0) throw new TypeError(`fetch to ${hostname} failed: DNS lookup found no address`);
    for (const answer of answers) {
      const problem = this.refusal(hostname, answer.address);
      if (problem) throw new EgressRefused(problem);
    }
    const addresses = answers.map((a) => ({ address: a.address, family: (isIP(a.address) === 6 ? 6 : 4) as 4 | 6 }));
    return { hostname, address: addresses[0]!.address, family: addresses[0]!.family, addresses };
  }
}
