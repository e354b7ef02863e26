import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { finished } from 'node:stream/promises';
import { CliUsageError } from '../cli-usage-error.js';
import { renderJson } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';

/**
 * `plinth volume send VOLUME@SNAPSHOT [--base SNAP0] [--from-chunk N] [--output FILE|-]`
 * (issue 8; docs/snapshots.md "Send and receive"). The stream's bytes go
 * straight from the response to the file or stdout, written with
 * backpressure; nothing is buffered whole. Stdout only when it is not a
 * terminal, so `plinth volume send v@s | plinth --api B volume receive v` works
 * and a stray send at a prompt does not fill the screen with binary.
 */
export const volumeSendCommand: CommandSpec = {
  noun: 'volume', verbs: ['send'], args: ['VOLUME@SNAPSHOT'], options: ['base', 'from-chunk', 'output'], requiredOptions: [],
  synopsis: 'volume send VOLUME@SNAPSHOT [--base SNAP0] [--from-chunk N] [--output FILE|-]',
  summary: 'stream a snapshot (or its difference to --base) to a file or stdout',
  async run(context, args, options) {
    const { volume, snapshot } = splitSnapshotName(argAt(args, 0), 'volume send');
    const fromChunk = options.fromChunk === undefined ? undefined : parseChunkNumber(options.fromChunk);
    const target = options.output ?? '-';
    if (target === '-' && process.stdout.isTTY) {
      throw new CliUsageError('"volume send" writes a binary stream: pipe it (| plinth volume receive NAME) or give --output FILE');
    }
    const sent = await context.client.sendSnapshot(volume, snapshot, {
      ...(options.base === undefined ? {} : { base: options.base }),
      ...(fromChunk === undefined ? {} : { fromChunk }),
    });
    const bytes = target === '-' ? await copyToStdout(sent.body) : await copyToFile(sent.body, target);
    // Stdout carries the stream: a summary only goes out when the stream went to a file.
    if (target !== '-') {
      const summary = { volume, snapshot, base: options.base ?? null, file: target, bytes, chunks: sent.totalChunkCount };
      context.print(context.json ? renderJson(summary) : `sent ${volume}@${snapshot}${options.base === undefined ? '' : ` (since ${options.base})`} to ${target}: ${bytes} bytes, ${sent.totalChunkCount} chunks\n`);
    }
  },
};

export function splitSnapshotName(text: string, command: string): { volume: string; snapshot: string } {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) throw new CliUsageError(`"${command}" needs VOLUME@SNAPSHOT, got ${JSON.stringify(text)}`);
  return { volume: text.slice(0, at), snapshot: text.slice(at + 1) };
}

function parseChunkNumber(text: string): number {
  if (!/^\d{1,10}$/.test(text)) throw new CliUsageError(`--from-chunk must be a chunk number (plinth volume receive-status NAME says which), got "${text}"`);
  return Number(text);
}

async function copyToStdout(body: ReadableStream<Uint8Array>): Promise<number> {
  let bytes = 0;
  for await (const chunk of body) {
    bytes += chunk.byteLength;
    if (!process.stdout.write(chunk)) await once(process.stdout, 'drain');
  }
  return bytes;
}

async function copyToFile(body: ReadableStream<Uint8Array>, path: string): Promise<number> {
  const file = createWriteStream(path, { mode: 0o600 });
  let bytes = 0;
  try {
    for await (const chunk of body) {
      bytes += chunk.byteLength;
      if (!file.write(chunk)) await once(file, 'drain');
    }
  } finally {
    file.end();
    await finished(file);
  }
  return bytes;
}
