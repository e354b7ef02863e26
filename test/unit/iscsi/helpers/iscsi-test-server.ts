import { execFile } from 'node:child_process';
import pino from 'pino';
import type { ChapSecretProvider } from '../../../../blockdev/iscsi/chap.js';
import { startIscsiServer, type IscsiServer } from '../../../../blockdev/iscsi/iscsi-server.js';
import type { IscsiLimits } from '../../../../blockdev/iscsi/limits.js';
import { MemoryBlockDevice } from '../../../helpers/memory-block-device.js';
import { StaticExportProvider } from '../../nbd/helpers/static-export-provider.js';
import { MinimalScsiRegistry } from './minimal-scsi-registry.js';

/** A server on 127.0.0.1:0 over memory volumes and the test double registry, closed at teardown. */

export interface TestTarget {
  readonly server: IscsiServer;
  readonly port: number;
  readonly provider: StaticExportProvider;
  readonly registry: MinimalScsiRegistry;
  readonly devices: Map<string, MemoryBlockDevice>;
  url(volume: string, credentials?: string): string;
}

interface Teardown {
  teardown(fn: () => unknown): void;
}

export async function startTestTarget(
  t: Teardown,
  options: { volumes?: Record<string, number>; limits?: Partial<IscsiLimits>; chap?: ChapSecretProvider } = {},
): Promise<TestTarget> {
  const devices = new Map<string, MemoryBlockDevice>();
  for (const [name, sizeBytes] of Object.entries(options.volumes ?? { vol1: 16 << 20, vol2: 8 << 20 })) {
    devices.set(name, new MemoryBlockDevice({ sizeBytes }));
  }
  const provider = new StaticExportProvider([...devices].map(([name, device]) => ({ name, device })));
  const registry = new MinimalScsiRegistry();
  const logger = pino({ level: process.env['PLINTH_TEST_LOG_LEVEL'] ?? 'silent' });
  const server = await startIscsiServer(
    { host: '127.0.0.1', port: 0, ...(options.limits === undefined ? {} : { limits: options.limits }) },
    { exports: provider, registry, logger, ...(options.chap === undefined ? {} : { chap: options.chap }) },
  );
  t.teardown(() => server.close(AbortSignal.abort()));
  const port = server.address().port;
  return {
    server,
    port,
    provider,
    registry,
    devices,
    url: (volume, credentials) => `iscsi://${credentials === undefined ? '' : `${credentials}@`}127.0.0.1:${port}/iqn.2026-11.io.plinth:${volume}/0`,
  };
}

export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Run one of libiscsi's tools, bounded in time. */
export function runTool(command: string, args: readonly string[], timeoutMs = 15000): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(command, [...args], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

export async function eventually(check: () => boolean, timeoutMs = 3000): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) return false;
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return true;
}
