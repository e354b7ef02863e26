import type { ReceiveResultView, ReceiveStatusView } from '../../daemon/snapshots/receive-service.js';
import type { SnapshotScheduleView } from '../../daemon/snapshots/retention-schedule-service.js';
import { PlinthApiError } from './plinth-api-error.js';
import { isJsonObject } from './response-decoding.js';

/** Light shape checks of the send/receive and schedule answers (issue 8), like response-decoding.ts. */

function malformed(what: string, status: number): PlinthApiError {
  return new PlinthApiError('BAD_RESPONSE', status, `plinthd sent a malformed ${what}`);
}

export function decodeReceiveResult(value: unknown, status: number): ReceiveResultView {
  if (!isJsonObject(value) || typeof value['volume'] !== 'string' || typeof value['chunkCount'] !== 'number' || typeof value['streamSha256'] !== 'string') {
    throw malformed('receive result', status);
  }
  // Shape vouched for by the route's response schema.
  return value as unknown as ReceiveResultView;
}

export function decodeReceiveStatus(value: unknown, status: number): ReceiveStatusView {
  if (!isJsonObject(value) || typeof value['volume'] !== 'string' || typeof value['receiving'] !== 'boolean') throw malformed('receive status', status);
  return value as unknown as ReceiveStatusView;
}

export function decodeSnapshotSchedule(value: unknown, status: number): SnapshotScheduleView {
  if (!isJsonObject(value) || typeof value['volume'] !== 'string' || !('schedule' in value)) throw malformed('snapshot schedule', status);
  const schedule = value['schedule'];
  if (schedule !== null && !(isJsonObject(schedule) && typeof schedule['everyMs'] === 'number' && typeof schedule['keep'] === 'number')) {
    throw malformed('snapshot schedule', status);
  }
  return value as unknown as SnapshotScheduleView;
}
