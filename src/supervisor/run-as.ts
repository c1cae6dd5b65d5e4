// The OS user runtime processes run as. A tenant who escapes V8 owns its runtime process; run as
// the control process's user, that process could still read the data directory (the store,
// the secrets key, the admin token) and signal the control process. Run as a user of its own,
// the kernel keeps both out of its reach.

import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export interface RunAs {
  uid: number;
  gid: number;
  /** As the operator wrote it, for messages. */
  user: string;
}

export class RunAsError extends Error {
  override name = 'RunAsError';
}

/** `name`, `uid` or `uid:gid`; a name (or a bare uid) takes its group from /etc/passwd. */
export function parseRunAs(spec: string, passwd: string = readPasswd()): RunAs {
  const numeric = /^(\d{1,10})(?::(\d{1,10}))?$/.exec(spec);
  const entries = passwd.split('\n').map((line) => line.split(':')).filter((fields) => fields.length >= 4);
  if (numeric !== null) {
    const uid = Number(numeric[1]);
    const gid = numeric[2] !== undefined ? Number(numeric[2]) : Number(entries.find((fields) => Number(fields[2]) === uid)?.[3] ?? uid);
    return { uid, gid, user: spec };
  }
  const entry = entries.find((fields) => fields[0] === spec);
  if (entry === undefined) throw new RunAsError(`--runtime-user: no user '${spec}' in /etc/passwd; give an existing user (e.g. nobody) or a uid[:gid]`);
  return { uid: Number(entry[2]), gid: Number(entry[3]), user: spec };
}

function readPasswd(): string {
  try {
    return readFileSync('/etc/passwd', 'utf8');
  } catch {
    return '';
  }
}

/** The code a runtime process loads, which its user must be able to read. */
const RUNTIME = fileURLToPath(new URL(`../runtime/runtime.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url));

/**
 * Fails with a clear error unless this process may start processes as `runAs` and that user can
 * load the runtime (isolet's files and isolated-vm's native build), so a wrong setting stops
 * `isolet serve` at start instead of making every runtime process crash on its way up.
 */
export function checkRunAs(runAs: RunAs): void {
  const self = process.getuid?.();
  if (self === undefined) throw new RunAsError('--runtime-user: this platform cannot start processes as another user');
  if (self !== 0 && (runAs.uid !== self || runAs.gid !== process.getgid?.())) {
    throw new RunAsError(`--runtime-user ${runAs.user}: only root may start processes as another user (this server runs as uid ${self}); start isolet serve as root, or leave --runtime-user out`);
  }
  const probe = spawnSync(process.execPath, ['--no-node-snapshot', '--input-type=module', '-e', 'await import(process.argv[1])', RUNTIME], {
    uid: runAs.uid,
    gid: runAs.gid,
    cwd: '/',
    encoding: 'utf8',
    timeout: 60_000,
  });
  if (probe.status !== 0) {
    const why = probe.error?.message ?? (probe.stderr.split('\n').find((line) => /Error/.test(line)) ?? `exit status ${probe.status}`).trim();
    throw new RunAsError(`--runtime-user ${runAs.user}: that user cannot load isolet's runtime (${why}); make isolet's installation readable by it (directories o+rx, files o+r), or choose another user`);
  }
}
