// Compatibility dates and flags, as wrangler and workerd take them. isolet implements one
// behaviour per API: workerd's at the compatibility date its conformance suite runs at
// (docs/COMPATIBILITY.md), whatever date a worker gives. So a flag that turns that behaviour on
// is accepted and changes nothing; a flag that asks for the older behaviour is refused, since
// isolet does not have it; and a flag isolet does not know is refused, never silently ignored.
// The exception is static assets' navigation rule, where isolet has both behaviours and
// follows the date and the flags as Cloudflare's asset worker does (`NAVIGATION_PREFERS_ASSETS`).
// The one date rule is workerd's: a date in the future is refused.

/** How isolet takes a flag. */
export interface FlagRule {
  /**
   * 'on': isolet always behaves so; 'honoured': isolet has both behaviours and does as the flag
   * says; 'partial': accepted with a note; 'refused': isolet cannot.
   */
  use: 'on' | 'honoured' | 'partial' | 'refused';
  /** Why, for the message (refused) or the note (partial). */
  why: string;
}

const on = (why = 'isolet always behaves so'): FlagRule => ({ use: 'on', why });
const refused = (why: string): FlagRule => ({ use: 'refused', why });
const standardOnly = (standard: string): FlagRule => refused(`isolet has only the standard behaviour (${standard})`);

/**
 * Cloudflare's asset flag pair (its asset worker's `compatibility-flags.ts`): with it on, a
 * browser navigation (`Sec-Fetch-Mode: navigate`) that matches no file is answered by
 * `not_found_handling` (single-page-application, 404-page) before the worker runs, where it
 * would otherwise go to the worker. On from `date`, unless `disable` is set; `enable` turns it
 * on for an older date (and wins when both are set, as there).
 */
export const NAVIGATION_PREFERS_ASSETS = {
  enable: 'assets_navigation_prefers_asset_serving',
  disable: 'assets_navigation_has_no_effect',
  date: '2025-04-01',
} as const;

/** Whether a worker's navigations prefer its assets, by its compatibility date and flags. */
export function navigationPrefersAssets(date: string | undefined, flags: readonly string[] | undefined): boolean {
  const { enable, disable, date: from } = NAVIGATION_PREFERS_ASSETS;
  if (flags?.includes(enable) === true) return true;
  return (date ?? '') >= from && flags?.includes(disable) !== true;
}

/** The flags isolet knows: each pair of workerd's enable and disable flags it has an answer for. */
export const COMPATIBILITY_FLAGS: Readonly<Record<string, FlagRule>> = {
  [NAVIGATION_PREFERS_ASSETS.enable]: {
    use: 'honoured',
    why: `a browser navigation that matches no asset gets not_found_handling before the worker runs (the default from ${NAVIGATION_PREFERS_ASSETS.date})`,
  },
  [NAVIGATION_PREFERS_ASSETS.disable]: {
    use: 'honoured',
    why: 'a navigation that matches no asset goes to the worker, as any other request',
  },
  formdata_parser_supports_files: on(),
  formdata_parser_converts_files_to_strings: standardOnly('formdata_parser_supports_files'),
  fetch_refuses_unknown_protocols: on(),
  fetch_treats_unknown_protocols_as_http: standardOnly('fetch_refuses_unknown_protocols'),
  streams_enable_constructors: on(),
  streams_disable_constructors: standardOnly('streams_enable_constructors'),
  transformstream_enable_standard_constructor: on(),
  transformstream_disable_standard_constructor: standardOnly('transformstream_enable_standard_constructor'),
  streams_byob_reader_detaches_buffer: on(),
  workers_api_getters_setters_on_prototype: on(),
  workers_api_getters_setters_on_instance: standardOnly('workers_api_getters_setters_on_prototype'),
  url_standard: on(),
  url_original: standardOnly('url_standard'),
  response_redirect_url_standard: on(),
  response_redirect_url_original: standardOnly('response_redirect_url_standard'),
  global_navigator: on(),
  no_global_navigator: standardOnly('global_navigator'),
  capture_async_api_throws: on(),
  do_not_capture_async_api_throws: standardOnly('capture_async_api_throws'),
  dont_substitute_null_on_type_error: on(),
  substitute_null_on_type_error: standardOnly('dont_substitute_null_on_type_error'),
  http_headers_getsetcookie: on(),
  no_http_headers_getsetcookie: standardOnly('http_headers_getsetcookie'),
  upper_case_all_http_methods: on(),
  no_upper_case_all_http_methods: standardOnly('upper_case_all_http_methods'),
  export_commonjs_default: on('isolet bundles CommonJS with esbuild, which exports module.exports'),
  // About Cloudflare's proxy in front of subrequests and requests: nothing here to change.
  minimal_subrequests: on('no Cloudflare proxy runs on subrequests here'),
  no_minimal_subrequests: refused('there is no Cloudflare proxy here to apply its features to subrequests'),
  no_cots_on_external_fetch: on('no Cloudflare proxy runs on subrequests here'),
  cots_on_external_fetch: refused('there is no Cloudflare proxy here'),
  no_cf_botmanagement_default: on('request.cf is empty here'),
  cf_botmanagement_default: refused('isolet has no bot management data for request.cf'),
  // fetch() goes to the public internet only, unless the operator opens networks (egress policy).
  global_fetch_strictly_public: on('fetch() reaches public addresses only, unless the operator allows more'),
  global_fetch_private_origin: refused('isolet has no Cloudflare origin to send fetch() to'),
  nodejs_compat: {
    use: 'partial',
    why: 'isolet has no Node.js APIs yet: a worker that imports node:* modules fails to bundle, naming the Web API to use instead',
  },
  nodejs_compat_v2: {
    use: 'partial',
    why: 'isolet has no Node.js APIs yet: a worker that imports node:* modules fails to bundle, naming the Web API to use instead',
  },
  no_nodejs_compat: on('isolet has no Node.js APIs'),
  no_nodejs_compat_v2: on('isolet has no Node.js APIs'),
  nodejs_als: refused('isolet has no AsyncLocalStorage (node:async_hooks)'),
};

/** Most flags one worker may set: far beyond any real list, far below what costs to check. */
const MAX_FLAGS = 64;

/** Hours by which a date may be ahead of UTC's: a date is "today" somewhere until UTC+14 moves on. */
const AHEAD_HOURS = 14;

/**
 * What is wrong with a compatibility date and flags, as one message naming each problem, or
 * undefined. `now` is for tests.
 */
export function compatibilityProblem(date: string | undefined, flags: readonly string[] | undefined, now = new Date()): string | undefined {
  const problems: string[] = [];
  if (date !== undefined) {
    const latest = new Date(now.getTime() + AHEAD_HOURS * 3_600_000).toISOString().slice(0, 10);
    if (date > latest) problems.push(`the compatibility date ${date} is in the future (today is ${now.toISOString().slice(0, 10)}): use today's date or an earlier one`);
  }
  if (flags !== undefined) {
    if (flags.length > MAX_FLAGS) problems.push(`${flags.length} compatibility flags are more than the ${MAX_FLAGS} allowed`);
    const seen = new Set<string>();
    for (const flag of flags.slice(0, MAX_FLAGS)) {
      const rule = Object.hasOwn(COMPATIBILITY_FLAGS, flag) ? COMPATIBILITY_FLAGS[flag] : undefined;
      if (seen.has(flag)) problems.push(`the compatibility flag ${flag} is given twice`);
      seen.add(flag);
      if (rule === undefined) problems.push(`isolet does not know the compatibility flag '${String(flag).slice(0, 100)}'`);
      else if (rule.use === 'refused') problems.push(`the compatibility flag ${flag} is not supported: ${rule.why}`);
    }
  }
  return problems.length === 0 ? undefined : problems.join('; ');
}

/** Notes for the flags isolet takes only in part. */
export function compatibilityNotes(flags: readonly string[] | undefined): string[] {
  return (flags ?? []).filter((flag) => COMPATIBILITY_FLAGS[flag]?.use === 'partial').map((flag) => `${flag}: ${COMPATIBILITY_FLAGS[flag]!.why}`);
}
