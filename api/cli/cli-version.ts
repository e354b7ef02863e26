import { readFile } from 'node:fs/promises';

/**
 * The package version, read from package.json next to dist/ at run time
 * (dist/api/cli/cli-version.js → ../../../package.json).
 */
export async function readCliVersion(): Promise<string> {
  const text = await readFile(new URL('../../../package.json', import.meta.url), 'utf8');
  const parsed: unknown = JSON.parse(text);
  if (typeof parsed === 'object' && parsed !== null && 'version' in parsed && typeof parsed.version === 'string') {
    return parsed.version;
  }
  throw new Error('package.json has no version');
}
