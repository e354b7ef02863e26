import { createHash } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PlinthError } from '../../common/plinth-error.js';

/**
 * The dashboard's static files. They are read once at start-up into a map
 * keyed by file name, and a request can only ever name a key of that map:
 * no request path reaches the filesystem, so traversal (`..`, `%2e%2e`,
 * absolute paths, symlinks) has nothing to act on.
 */
export interface DashboardAsset {
  readonly body: Buffer;
  readonly contentType: string;
  /** Strong validator for If-None-Match (RFC 9110 §8.8.3): a hash of the body. */
  readonly etag: string;
}

/** Every file the page needs; a file not listed here is never served. */
export const DASHBOARD_FILES: readonly string[] = [
  'index.html',
  'style.css',
  'app.js',
  'api-client.js',
  'token-store.js',
  'dom.js',
  'format.js',
  'equivalents.js',
  'refresher.js',
  'render-cluster.js',
  'render-nodes.js',
  'render-volumes.js',
  'volume-forms.js',
  'form-helpers.js',
  'render-snapshots.js',
  'snapshot-forms.js',
  'favicon.svg',
];

export const CONTENT_TYPE_BY_EXTENSION: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** A sanity bound: the whole page is a few tens of KiB. */
export const DASHBOARD_ASSET_MAX_BYTES = 512 * 1024;

/** dist/api/dashboard/ → the package's api/dashboard/public/ (the files ship as source; no bundler). */
export function defaultDashboardAssetDir(): string {
  return fileURLToPath(new URL('../../../api/dashboard/public/', import.meta.url));
}

export function contentTypeFor(fileName: string): string {
  const contentType = CONTENT_TYPE_BY_EXTENSION[extname(fileName)];
  if (contentType === undefined) {
    throw new PlinthError('CONFIG_INVALID', `dashboard file ${fileName} has no known content type`, { fileName });
  }
  return contentType;
}

/** Reads the allow-listed files; a missing or oversized one is a packaging fault and stops start-up. */
export async function loadDashboardAssets(
  assetDir: string,
  files: readonly string[] = DASHBOARD_FILES,
): Promise<ReadonlyMap<string, DashboardAsset>> {
  const assets = new Map<string, DashboardAsset>();
  for (const fileName of files) {
    const path = join(assetDir, fileName);
    const sizeBytes = await fileSizeBytes(path);
    if (sizeBytes > DASHBOARD_ASSET_MAX_BYTES) {
      throw new PlinthError('TOO_LARGE', `dashboard file ${path} is ${sizeBytes} bytes, over ${DASHBOARD_ASSET_MAX_BYTES}`, { path, sizeBytes });
    }
    const body = await readFile(path);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 27)}"`;
    assets.set(fileName, { body, contentType: contentTypeFor(fileName), etag });
  }
  return assets;
}

async function fileSizeBytes(path: string): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    throw new PlinthError('CONFIG_INVALID', `dashboard file ${path} is missing: the package is incomplete`, { path }, { cause: err });
  }
}
