// `isolet deploy --dry-run`'s checks: what the server would refuse of this deployment whatever
// the server, run here. The body as the admin API parses it (parseDeployment), then the upload
// loaded in a Runtime of its own, as the server validates it before storing anything
// (src/server/platform.ts #validate): its top-level code runs, and what refuses a worker when it
// registers refuses it here too (a Durable Object class, crons without a scheduled handler, a
// binding of a bad shape). A dry run reported success for a worker the real deploy then refused.
//
// What depends on the server is left to it: the account's quotas and limit caps, how much code
// it takes, which worker names and KV namespaces are the account's, routes under its domain.

import { ApiError } from '../server/api-error.ts';
import { parseDeployment } from '../server/deployment.ts';
import { definitionOf } from '../server/platform.ts';
import { WorkerLoadError, type WorkerLimits } from '../runtime/types.ts';

/** A refusal: what the server would say, and where in the bundle when it knows (`worker.js:12:5`). */
export interface DeployProblem {
  message: string;
  location?: string;
}

/** No cap of the server's: a dry run cannot know them (the server checks them at deploy). */
const NO_CAPS: WorkerLimits = { cpuMs: Number.MAX_SAFE_INTEGER, startupCpuMs: Number.MAX_SAFE_INTEGER, memoryMb: Number.MAX_SAFE_INTEGER, subrequests: Number.MAX_SAFE_INTEGER };

/** What the server would refuse of `deployment` for worker `name`, or undefined when it would take it (as far as a dry run can tell). */
export async function checkDeployment(name: string, deployment: object): Promise<DeployProblem | undefined> {
  let content;
  try {
    // A copy through JSON, as the body reaches the server.
    content = parseDeployment(JSON.parse(JSON.stringify(deployment)), { domain: 'isolet.invalid', maxScriptBytes: Number.MAX_SAFE_INTEGER, limitCaps: NO_CAPS }).content;
  } catch (error) {
    if (!(error instanceof ApiError)) throw error;
    return { message: error.message, ...(error.location === undefined ? {} : { location: error.location }) };
  }
  // Loaded only here, so that a deploy that uploads does not start isolates on this machine.
  const { Runtime } = await import('../runtime/runtime.ts');
  // No secrets here (the server merges them in): the upload's own vars, as a first deploy has.
  const runtime = new Runtime({ log: () => {}, maxIsolates: 1 });
  try {
    await runtime.load(name, definitionOf(content, {}, 'dry-run'));
    return undefined;
  } catch (error) {
    if (!(error instanceof WorkerLoadError)) throw error;
    return { message: error.message, ...(error.location === undefined ? {} : { location: error.location }) };
  } finally {
    await runtime.close();
  }
}
