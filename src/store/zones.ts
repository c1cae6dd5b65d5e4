// Zones: the hostnames and domains the operator has given an account. A zone `example.com`
// covers the host `example.com` and every host under it (`shop.example.com`, `a.b.example.com`);
// an account's routes may only name hosts its zones cover, so one tenant cannot take another's
// traffic by routing a host it was never given. Zones of different accounts never overlap, so
// a host belongs to at most one account.
//
// Public suffixes (`com`, `co.uk`, `github.io`, ...) are under many owners: they are never a
// zone, and no route may name one. The list below holds the suffixes a shared host is likely to
// meet; it guards against a mistake, the operator's assignment is what grants a host.

const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** Multi-label public suffixes (every single label, i.e. every TLD, is one too). */
const PUBLIC_SUFFIXES = new Set([
  'co.uk', 'org.uk', 'me.uk', 'ltd.uk', 'plc.uk', 'net.uk', 'ac.uk', 'gov.uk', 'sch.uk', 'nhs.uk', 'police.uk',
  'com.au', 'net.au', 'org.au', 'edu.au', 'gov.au', 'asn.au', 'id.au',
  'co.nz', 'net.nz', 'org.nz', 'govt.nz', 'ac.nz', 'school.nz', 'geek.nz', 'gen.nz', 'kiwi.nz',
  'co.jp', 'ne.jp', 'or.jp', 'ac.jp', 'go.jp', 'ad.jp', 'ed.jp', 'gr.jp', 'lg.jp',
  'co.kr', 'or.kr', 'ne.kr', 'go.kr', 'ac.kr', 're.kr',
  'com.cn', 'net.cn', 'org.cn', 'gov.cn', 'edu.cn', 'ac.cn',
  'com.hk', 'net.hk', 'org.hk', 'edu.hk', 'gov.hk', 'com.tw', 'net.tw', 'org.tw', 'edu.tw', 'gov.tw',
  'com.sg', 'net.sg', 'org.sg', 'edu.sg', 'gov.sg', 'com.my', 'net.my', 'org.my', 'gov.my',
  'co.in', 'net.in', 'org.in', 'firm.in', 'gen.in', 'ind.in', 'ac.in', 'gov.in', 'res.in',
  'co.id', 'or.id', 'ac.id', 'go.id', 'web.id', 'com.ph', 'net.ph', 'org.ph', 'gov.ph',
  'co.th', 'in.th', 'or.th', 'ac.th', 'go.th', 'com.vn', 'net.vn', 'org.vn', 'gov.vn',
  'co.il', 'org.il', 'net.il', 'ac.il', 'gov.il', 'com.tr', 'net.tr', 'org.tr', 'gov.tr', 'edu.tr',
  'co.za', 'org.za', 'net.za', 'gov.za', 'ac.za', 'web.za', 'com.ng', 'com.eg', 'co.ke', 'or.ke',
  'com.br', 'net.br', 'org.br', 'gov.br', 'edu.br', 'art.br', 'blog.br', 'eco.br', 'app.br', 'dev.br',
  'com.ar', 'net.ar', 'org.ar', 'gob.ar', 'com.mx', 'net.mx', 'org.mx', 'gob.mx', 'edu.mx',
  'com.co', 'net.co', 'org.co', 'gov.co', 'com.pe', 'com.ve', 'com.uy', 'com.ec', 'cl.cl',
  'com.pl', 'net.pl', 'org.pl', 'gov.pl', 'com.ua', 'net.ua', 'org.ua', 'gov.ua', 'com.ru', 'net.ru', 'org.ru',
  'co.at', 'or.at', 'gv.at', 'ac.at', 'com.es', 'nom.es', 'org.es', 'gob.es', 'com.pt', 'gov.pt', 'org.pt',
  'com.gr', 'gov.gr', 'com.cy', 'co.hu', 'com.ro', 'org.ro', 'co.it', 'gov.it', 'co.no', 'priv.no',
  'eu.org', 'us.org', 'uk.com', 'us.com', 'eu.com', 'gb.net', 'uk.net', 'za.com', 'cn.com', 'de.com',
  'github.io', 'githubusercontent.com', 'gitlab.io', 'pages.dev', 'workers.dev', 'vercel.app', 'now.sh',
  'netlify.app', 'herokuapp.com', 'appspot.com', 'web.app', 'firebaseapp.com', 'blogspot.com',
  'cloudfront.net', 'azurewebsites.net', 'azureedge.net', 'cloudapp.net', 'trafficmanager.net',
  's3.amazonaws.com', 'elasticbeanstalk.com', 'fly.dev', 'onrender.com', 'glitch.me', 'repl.co',
  'ngrok.io', 'ngrok-free.app', 'surge.sh', 'readthedocs.io', 'azurestaticapps.net', 'deno.dev',
]);

/** Whether `host` (lowercase, no trailing dot) is a public suffix: a TLD or one of the list's. */
export function isPublicSuffix(host: string): boolean {
  return !host.includes('.') || PUBLIC_SUFFIXES.has(host);
}

/** The domain an owner registers for `host`: its public suffix plus one label (`shop.example.co.uk` -> `example.co.uk`). */
export function registrableDomain(host: string): string {
  const labels = host.split('.');
  for (let i = 1; i < labels.length; i++) {
    if (isPublicSuffix(labels.slice(i).join('.'))) return labels.slice(i - 1).join('.');
  }
  return host;
}

/** Whether the zone covers the host: the zone itself or any host under it. */
export function zoneCovers(zone: string, host: string): boolean {
  return host === zone || host.endsWith('.' + zone);
}

/** Two zones overlap when one covers the other. */
export function zonesOverlap(a: string, b: string): boolean {
  return zoneCovers(a, b) || zoneCovers(b, a);
}

/** The host a stored route pattern names, and whether it is a wildcard over the host's subdomains. */
export function routeHost(pattern: string): { host: string; wildcard: boolean } {
  const slash = pattern.indexOf('/');
  const host = slash === -1 ? pattern : pattern.slice(0, slash);
  return host.startsWith('*.') ? { host: host.slice(2), wildcard: true } : { host, wildcard: false };
}

/** Whether a route can match a request for some host in the zone (a wildcard above the zone does). */
export function routeTouchesZone(pattern: string, zone: string): boolean {
  const { host, wildcard } = routeHost(pattern);
  return zoneCovers(zone, host) || (wildcard && zone.endsWith('.' + host));
}

/** A zone as given to the admin API, normalized; throws an Error whose message says what to change. */
export function parseZone(text: unknown): string {
  if (typeof text !== 'string') throw new Error('A zone is a hostname or domain as text, e.g. "example.com" or "shop.example.com".');
  const zone = text.toLowerCase().replace(/\.$/, '');
  const labels = zone.split('.');
  if (zone.length === 0 || zone.length > 253 || !labels.every((label) => LABEL.test(label)) || /^\d+$/.test(labels.at(-1)!)) {
    throw new Error(`Invalid zone ${JSON.stringify(text)}: give a domain name such as 'example.com' (no scheme, port, path, '*' or IP address).`);
  }
  if (isPublicSuffix(zone)) {
    throw new Error(`'${zone}' is a public suffix, shared by many owners: assign a domain under it, e.g. 'example.${zone}'.`);
  }
  return zone;
}
