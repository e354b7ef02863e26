import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Level } from 'level';
import { PlinthError } from '../../common/plinth-error.js';

export const DATABASE_DIR = 'db';

/** The one LevelDB of a node; rooms get prefixed sublevels of it ('state', 'pool', ...). */
export type NodeDatabase = Level<string, unknown>;

/**
 * Open `<data-dir>/db`. LevelDB's LOCK file is the data dir's lock: a second
 * plinthd on the same data dir fails here with DATA_DIR_LOCKED, before it
 * touches anything else in the directory.
 */
export async function openNodeDatabase(dataDir: string): Promise<NodeDatabase> {
  await mkdir(dataDir, { recursive: true, mode: 0o750 });
  const database = new Level<string, unknown>(join(dataDir, DATABASE_DIR), { valueEncoding: 'json' });
  try {
    await database.open();
  } catch (err) {
    if (causeCode(err) === 'LEVEL_LOCKED') {
      throw new PlinthError('DATA_DIR_LOCKED', `data dir ${dataDir} is in use by another plinthd`, { dataDir }, { cause: err });
    }
    throw err;
  }
  return database;
}

function causeCode(err: unknown): unknown {
  if (!(err instanceof Error) || !(err.cause instanceof Error)) return undefined;
  return 'code' in err.cause ? err.cause.code : undefined;
}
