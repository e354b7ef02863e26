import pino from 'pino';
import type { Test } from 'tap';
import type { NbdLimits } from '../../../../blockdev/nbd/limits.js';
import { type NbdServer, type NbdTlsOptions, startNbdServer } from '../../../../blockdev/nbd/nbd-server.js';
import type { StaticExportProvider } from './static-export-provider.js';

/** Start a server on 127.0.0.1 with an ephemeral port (with STARTTLS when `tls` is given); closed (aborted) at teardown. */
export async function startTestServer(
  t: Test,
  provider: StaticExportProvider,
  limits: Partial<NbdLimits> = {},
  tls?: NbdTlsOptions,
): Promise<{ server: NbdServer; port: number }> {
  const server = await startNbdServer(
    { host: '127.0.0.1', port: 0, limits, ...(tls === undefined ? {} : { tls }) },
    { exports: provider, logger: pino({ level: process.env['NBD_TEST_LOG'] ?? 'silent' }) },
  );
  t.teardown(() => server.close(AbortSignal.abort()));
  return { server, port: server.address().port };
}

/** Poll `condition` until true; fail after `timeoutMs` with `what`. */
export async function waitFor(condition: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
