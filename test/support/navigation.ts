// Test support: the browser-navigation rule of static assets (a navigation matching no file gets
// not_found_handling before the worker, by compatibility date and the assets_navigation_* flags),
// as one table of cases and one project, for isolet dev and isolet serve alike.

/** [compatibility_date, compatibility_flags, whether a navigation gets the assets' answer]. */
export const NAVIGATION_CASES = [
  ['2025-06-01', [], true],
  ['2024-09-01', [], false],
  ['2024-09-01', ['assets_navigation_prefers_asset_serving'], true],
  ['2025-06-01', ['assets_navigation_has_no_effect'], false],
] as const;

/** A Request header a browser sends on a navigation (node:http: fetch() sends `cors` whatever it is given). */
export const NAVIGATE = { headers: { 'sec-fetch-mode': 'navigate' } };

/** A project named `nav` whose worker answers `worker <path>`, with `page` as the not_found_handling's file. */
export function navigationProject(date: string, flags: readonly string[], notFound: '404-page' | 'single-page-application', page: Record<string, string>): Record<string, string> {
  return {
    'wrangler.toml': `name = "nav"\nmain = "src/index.ts"\ncompatibility_date = "${date}"\ncompatibility_flags = ${JSON.stringify(flags)}\n[assets]\ndirectory = "dist"\nnot_found_handling = "${notFound}"\n`,
    'src/index.ts': 'export default { fetch(request: Request) { return new Response(`worker ${new URL(request.url).pathname}`); } };\n',
    ...page,
  };
}
