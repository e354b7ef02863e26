import type { FastifyInstance, LightMyRequestResponse } from 'fastify';
import { pino } from 'pino';
import { Counter, Registry } from 'prom-client';
import { buildApiApp } from '../../../api/build-api-app.js';
import { FakeControlPlane, type FakeControlPlaneOptions } from '../../helpers/fake-control-plane.js';

export const TEST_TOKEN = 'test-token-0123456789abcdef';
export const AUTH_HEADERS = { authorization: `Bearer ${TEST_TOKEN}` } as const;

export interface ApiFixture {
  readonly app: FastifyInstance;
  readonly control: FakeControlPlane;
  readonly metrics: Registry;
}

/** The real app over the in-memory control plane; close it in t.teardown. */
export async function buildTestApp(
  options: { readonly bodyLimitBytes?: number; readonly control?: FakeControlPlaneOptions } = {},
): Promise<ApiFixture> {
  const control = new FakeControlPlane(options.control);
  const metrics = new Registry();
  const requests = new Counter({ name: 'plinth_test_requests_total', help: 'test counter', registers: [metrics] });
  requests.inc(3);
  const app = await buildApiApp(
    {
      token: TEST_TOKEN,
      version: '0.1.0-test',
      logger: pino({ level: 'silent' }),
      ...(options.bodyLimitBytes === undefined ? {} : { bodyLimitBytes: options.bodyLimitBytes }),
    },
    { control, metrics },
  );
  return { app, control, metrics };
}

export interface ErrorJson {
  readonly error: { readonly code: string; readonly message: string; readonly details?: Record<string, unknown> };
}

/** Parse an error response and check its shape, so tests read `.error.code` without casts. */
export function errorOf(response: LightMyRequestResponse): ErrorJson['error'] {
  const parsed: unknown = response.json();
  if (typeof parsed !== 'object' || parsed === null || !('error' in parsed)) {
    throw new Error(`not an error body: ${response.body}`);
  }
  const { error } = parsed;
  if (typeof error !== 'object' || error === null || !('code' in error) || !('message' in error)) {
    throw new Error(`malformed error body: ${response.body}`);
  }
  const { code, message } = error;
  if (typeof code !== 'string' || typeof message !== 'string') throw new Error(`malformed error body: ${response.body}`);
  const details = 'details' in error && typeof error.details === 'object' && error.details !== null
    ? { ...error.details }
    : undefined;
  return details === undefined ? { code, message } : { code, message, details };
}

/** The app on a real loopback port for client and CLI tests; closed at teardown. */
export async function listenTestApp(
  t: { teardown(fn: () => unknown): void },
  options: Parameters<typeof buildTestApp>[0] = {},
): Promise<ApiFixture & { readonly baseUrl: string }> {
  const fixture = await buildTestApp(options);
  t.teardown(() => fixture.app.close());
  await fixture.app.listen({ host: '127.0.0.1', port: 0 });
  const address = fixture.app.server.address();
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return { ...fixture, baseUrl: `http://127.0.0.1:${address.port}` };
}

/** A loopback port nobody listens on (bound then released). */
export async function closedLoopbackPort(): Promise<number> {
  const { createServer } = await import('node:net');
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve, reject) => server.close((err) => (err ? reject(err) : resolve())));
  if (address === null || typeof address === 'string') throw new Error('expected a TCP address');
  return address.port;
}
