// Test support: a headless Chromium the test starts itself (Debian's `chromium` package, or
// ISOLET_TEST_CHROMIUM), driven through the DevTools protocol by playwright-core, which never
// downloads a browser of its own. The browser runs in a process group of its own, with a
// throwaway profile, and close() kills the group whatever state the browser is in.

import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, rmdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Looked for on PATH, in this order (as scripts/test-prerequisites.sh does). */
const CANDIDATES = ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable'];

export interface StartedBrowser {
  browser: Browser;
  /** Where screenshots go: a temporary directory, never the repository. */
  artifacts: string;
  close(): Promise<void>;
}

/** The Chromium binary to drive, or an error that says how to get one. */
export function chromiumPath(env: NodeJS.ProcessEnv = process.env): string {
  const chosen = env.ISOLET_TEST_CHROMIUM;
  if (chosen !== undefined && chosen !== '') {
    if (!existsSync(chosen)) throw new Error(`ISOLET_TEST_CHROMIUM is ${chosen}, which does not exist: point it at a Chromium or Chrome binary.`);
    return chosen;
  }
  const directories = (env.PATH ?? '').split(delimiter).filter((dir) => dir !== '');
  const found = CANDIDATES.flatMap((name) => directories.map((dir) => join(dir, name))).find((path) => existsSync(path));
  if (found === undefined) {
    throw new Error(
      'The dashboard browser tests need Chromium: on Debian or Ubuntu `apt-get install -y chromium` ' +
        '(scripts/test-prerequisites.sh does it as root), or set ISOLET_TEST_CHROMIUM to a Chromium or Chrome binary.',
    );
  }
  return found;
}

export async function startBrowser({ timeoutMs = 30_000 } = {}): Promise<StartedBrowser> {
  const executable = chromiumPath();
  const profile = await mkdtemp(join(tmpdir(), 'isolet-chromium-'));
  const artifacts = await mkdtemp(join(tmpdir(), 'isolet-dashboard-shots-'));
  const args = [
    '--headless',
    '--remote-debugging-port=0',
    `--user-data-dir=${profile}`,
    '--no-first-run',
    '--no-default-browser-check',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--disable-gpu',
    // /dev/shm is small in containers; Chromium then writes shared memory under /tmp.
    '--disable-dev-shm-usage',
    // Chromium refuses to run as root with its sandbox on; as any other user it keeps it.
    ...(process.getuid?.() === 0 ? ['--no-sandbox'] : []),
    'about:blank',
  ];
  const child = spawn(executable, args, { detached: true, stdio: ['ignore', 'ignore', 'pipe'] });
  const kill = () => killGroup(child);
  // If the test process dies first, the browser goes with it.
  process.once('exit', kill);
  try {
    const endpoint = await devToolsEndpoint(child, timeoutMs);
    const browser = await chromium.connectOverCDP(endpoint, { timeout: timeoutMs });
    return {
      browser,
      artifacts,
      async close() {
        await Promise.race([browser.close().catch(() => {}), new Promise((resolve) => setTimeout(resolve, 5_000).unref())]);
        kill();
        process.removeListener('exit', kill);
        await rm(profile, { recursive: true, force: true, maxRetries: 3 });
        // Kept only when a failure left a screenshot in it.
        await rmdir(artifacts).catch(() => {});
      },
    };
  } catch (error) {
    kill();
    process.removeListener('exit', kill);
    await rm(profile, { recursive: true, force: true, maxRetries: 3 });
    await rmdir(artifacts).catch(() => {});
    throw error;
  }
}

/** Chromium prints `DevTools listening on ws://...` on stderr once it is ready. */
function devToolsEndpoint(child: ChildProcess, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => finish(new Error(`Chromium did not start within ${timeoutMs} ms. Its output:\n${output}`)), timeoutMs);
    const finish = (result: string | Error) => {
      clearTimeout(timer);
      child.stderr!.removeAllListeners('data');
      child.removeAllListeners('exit');
      child.removeAllListeners('error');
      // Keep draining, so a chatty browser never blocks on a full pipe.
      child.stderr!.resume();
      if (typeof result === 'string') resolve(result);
      else reject(result);
    };
    child.stderr!.setEncoding('utf8');
    child.stderr!.on('data', (chunk: string) => {
      output += chunk;
      const match = /DevTools listening on (ws:\/\/\S+)/.exec(output);
      if (match) finish(match[1]!);
    });
    child.on('error', (error) => finish(new Error(`Chromium could not be started: ${error.message}`)));
    child.on('exit', (code, signal) => finish(new Error(`Chromium exited (${signal ?? code}) before it was ready. Its output:\n${output}`)));
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}
