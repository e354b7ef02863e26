/**
 * Summarise a V8 `.cpuprofile` (written by `node --cpu-prof`): self time per
 * function, heaviest first, so the benchmark can say where Plinth's time goes.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

interface ProfileNode {
  readonly id: number;
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
  readonly nodes: readonly ProfileNode[];
  readonly samples: readonly number[];
  readonly timeDeltas: readonly number[];
}

export interface SelfTimeEntry {
  readonly frame: string;
  readonly selfMs: number;
  readonly percent: number;
}

function frameLabel(node: ProfileNode): string {
  const { functionName, url, lineNumber } = node.callFrame;
  const name = functionName === '' ? '(anonymous)' : functionName;
  if (url === '') return name;
  const shortUrl = url.replace(/^file:\/\/.*\/dist\//, '').replace(/^file:\/\//, '');
  return `${name} ${shortUrl}:${lineNumber + 1}`;
}

export function summariseProfile(profile: CpuProfile, limit: number): SelfTimeEntry[] {
  const labelById = new Map<number, string>();
  for (const node of profile.nodes) labelById.set(node.id, frameLabel(node));
  const selfUsByLabel = new Map<string, number>();
  let totalUs = 0;
  profile.samples.forEach((nodeId, index) => {
    const deltaUs = profile.timeDeltas[index] ?? 0;
    const label = labelById.get(nodeId) ?? '(unknown)';
    selfUsByLabel.set(label, (selfUsByLabel.get(label) ?? 0) + deltaUs);
    totalUs += deltaUs;
  });
  return [...selfUsByLabel.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([frame, selfUs]) => ({ frame, selfMs: selfUs / 1000, percent: totalUs === 0 ? 0 : (100 * selfUs) / totalUs }));
}

/** Summaries of every profile in the directory, rendered as text. */
export async function renderProfileDir(dir: string, limit: number): Promise<string> {
  const files = (await readdir(dir)).filter((file) => file.endsWith('.cpuprofile'));
  const sections: string[] = [];
  for (const file of files) {
    const profile = JSON.parse(await readFile(join(dir, file), 'utf8')) as CpuProfile;
    const lines = summariseProfile(profile, limit).map(
      (entry) => `${entry.percent.toFixed(1).padStart(5)}%  ${entry.selfMs.toFixed(0).padStart(7)} ms  ${entry.frame}`,
    );
    sections.push([`profile ${join(dir, file)} (self time, top ${limit}):`, ...lines].join('\n'));
  }
  return sections.length === 0 ? `no .cpuprofile in ${dir}` : sections.join('\n\n');
}
