// What happens when V8 loses control of an isolate (isolated-vm's onCatastrophicError): the
// process's memory can no longer be trusted, so it logs which worker did it, synchronously,
// and exits with a status a supervisor can recognise.

import { writeSync } from 'node:fs';

/** Exit status of a runtime process after a fatal V8 error (EX_SOFTWARE). */
export const CATASTROPHIC_EXIT_CODE = 70;

export function catastrophicErrorHandler(
  exit: (code: number) => never = (code) => process.exit(code),
  fd = 2,
): (worker: string, message: string) => never {
  return (worker, message) => {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      level: 'fatal',
      type: 'catastrophic',
      worker,
      message: `V8 lost control of worker '${worker}''s isolate: ${message}. The process exits with status ${CATASTROPHIC_EXIT_CODE} so that it can be restarted clean.`,
    });
    try {
      writeSync(fd, line + '\n');
    } catch {}
    return exit(CATASTROPHIC_EXIT_CODE);
  };
}
