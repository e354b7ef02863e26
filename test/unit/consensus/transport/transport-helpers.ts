/** Loopback transports carrying strings, for the transport tests. */
import pino from 'pino';
import { PlinthError } from '../../../../common/plinth-error.js';
import { DEFAULT_TRANSPORT_LIMITS, TcpTransport, type TcpTransportOptions } from '../../../../consensus/transport/tcp-transport.js';
import type { MessageCodec } from '../../../../consensus/transport/transport-types.js';

export const stringCodec: MessageCodec<string> = {
  encode: (message) => Buffer.from(message, 'utf8'),
  decode: (payload) => {
    const text = payload.toString('utf8');
    if (text.startsWith('!')) throw new PlinthError('BAD_FRAME', 'test codec refuses messages starting with !');
    return text;
  },
};

export interface Received {
  readonly from: string;
  readonly message: string;
}

export function makeTransport(
  nodeId: string,
  overrides: Partial<TcpTransportOptions> = {},
): { transport: TcpTransport<string>; received: Received[] } {
  let seed = 1;
  const transport = new TcpTransport<string>(
    {
      ...DEFAULT_TRANSPORT_LIMITS,
      nodeId,
      listen: { host: '127.0.0.1', port: 0 },
      secret: Buffer.from('test-secret'),
      backoff: { baseDelayMs: 10, maxDelayMs: 100 },
      ...overrides,
    },
    {
      logger: pino({ level: 'silent' }),
      codec: stringCodec,
      random: () => {
        seed = (seed * 16807) % 2147483647;
        return seed / 2147483647;
      },
    },
  );
  const received: Received[] = [];
  transport.onMessage((from, message) => received.push({ from, message }));
  return { transport, received };
}

/** Polls `condition` every few ms until true or `timeoutMs` passes. */
export async function waitFor(condition: () => boolean, timeoutMs = 3000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
