import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { CliUsageError } from '../cli-usage-error.js';
import { parseReplicaCount } from '../parse-args.js';
import { renderJson, renderKeyValues } from '../table.js';
import { argAt, type CommandSpec } from './command-spec.js';

/**
 * `plinth volume receive NAME [--input FILE|-] [--replicas N] [--resume | --abort]`
 * and `plinth volume receive-status NAME` (issue 8; docs/snapshots.md
 * "Send and receive"). The input is streamed to the daemon as it is read;
 * stdin only when it is not a terminal.
 */
export const volumeReceiveCommands: readonly CommandSpec[] = [
  {
    noun: 'volume', verbs: ['receive'], args: ['NAME'], options: ['input', 'replicas', 'resume', 'abort'], requiredOptions: [],
    synopsis: 'volume receive NAME [--input FILE|-] [--replicas N] [--resume|--abort]',
    summary: 'receive a send stream into NAME (it stays hidden until verified)',
    async run(context, args, options) {
      const name = argAt(args, 0);
      if (options.abort === true) {
        if (options.resume === true || options.input !== undefined) throw new CliUsageError('"volume receive --abort" takes no stream');
        await context.client.abortReceive(name);
        context.print(context.json ? renderJson({ volume: name, aborted: true }) : `receive into ${name} abandoned\n`);
        return;
      }
      const input = options.input ?? '-';
      if (input === '-' && process.stdin.isTTY) throw new CliUsageError('"volume receive" reads a binary stream: pipe one in (plinth volume send VOL@SNAP | …) or give --input FILE');
      const source: Readable = input === '-' ? process.stdin : createReadStream(input);
      const result = await context.client.receiveVolume(name, webStreamOf(source), {
        resume: options.resume === true,
        ...(options.replicas === undefined ? {} : { replicas: parseReplicaCount(options.replicas) }),
      });
      context.print(context.json ? renderJson(result) : `received ${result.volume}@${result.snapshot}${result.base === null ? '' : ` (incremental on ${result.base})`}: ${result.chunksWritten} of ${result.chunkCount} chunks written, ${result.bytesWritten} bytes, stream sha256 ${result.streamSha256}\n`);
    },
  },
  {
    noun: 'volume', verbs: ['receive-status'], args: ['NAME'], options: [], requiredOptions: [],
    synopsis: 'volume receive-status NAME',
    summary: 'where an interrupted receive stands (resume: send --from-chunk NEXT)',
    async run(context, args) {
      const status = await context.client.receiveStatus(argAt(args, 0));
      if (context.json) {
        context.print(renderJson(status));
        return;
      }
      if (!status.receiving) {
        context.print(`${status.volume}: no receive in progress\n`);
        return;
      }
      context.print(renderKeyValues([
        ['volume', status.volume],
        ['receiving', `${status.sourceVolume ?? '?'}@${status.snapshot ?? '?'} from cluster ${status.sourceClusterId ?? '?'}${status.incremental === true ? ' (incremental)' : ''}`],
        ['next chunk', `${status.nextChunk ?? 0} of ${status.totalChunkCount ?? 0}`],
        ['started', status.startedAt ?? '-'],
      ]));
    },
  },
];

/** The file or stdin as a web stream for fetch, pulled (so read) only as fast as the upload goes. */
function webStreamOf(source: Readable): ReadableStream<Uint8Array> {
  const iterator = source[Symbol.asyncIterator]();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      const step: IteratorResult<unknown> = await iterator.next();
      if (step.done === true) {
        controller.close();
        return;
      }
      const chunk = step.value;
      controller.enqueue(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
    },
    async cancel() {
      await iterator.return?.();
    },
  });
}
