/**
 * iSCSI in a 3-node cluster (ARCHITECTURE "iSCSI": one target per volume,
 * IQN `iqn.2026-11.io.plinth:<volume>`, LUN 0, SendTargets discovery on
 * every node), through libiscsi's own tools:
 *
 * - `iscsi-ls` (a SendTargets discovery session, RFC 7143 §4.3 and
 *   appendix C) on every node lists every volume, whichever node owns it;
 * - a login to a volume attached to another live node is refused with a
 *   login error (openExport → VOLUME_ATTACHED), and the refusing node keeps
 *   serving its other volumes; the owner still serves the volume.
 */
import t from 'tap';
import { PLINTH_IQN_PREFIX, type DaemonProcess } from '../helpers/daemon-harness.js';
import { createVolume, eventually, startCluster } from '../integration/fixtures/replication-cluster.js';
import { describeRun, missingToolsReason, run } from '../setup/e2e-process.js';

const VOLUMES = ['disc-a', 'disc-b', 'disc-c'] as const;
const TOOL_TIMEOUT_MS = 20_000;

const skip = missingToolsReason(['iscsi-ls', 'iscsi-inq', 'iscsi-readcapacity16']);

/** `Target:<iqn> Portal:<host:port>,<tpgt>` lines of `iscsi-ls`, as a list of target names. */
function discoveredTargets(stdout: string): string[] {
  return [...stdout.matchAll(/^Target:(\S+) Portal:(\S+)$/gm)].map((match) => match[1] ?? '');
}

async function volumeAttachedTo(node: DaemonProcess, name: string): Promise<unknown> {
  const response = await node.api('GET', `/v1/volumes/${name}`);
  return (response.body as { attachedTo?: unknown }).attachedTo;
}

t.test('SendTargets on every node lists every volume; a volume owned elsewhere is refused', { skip: skip ?? false }, async (t) => {
  const nodes = await startCluster(t, { dataDirPrefix: 'plinth-iscsi-discovery-' });
  const [n1, n2] = nodes;
  for (const name of VOLUMES) await createVolume(t, n1, name);
  const expected = VOLUMES.map((name) => `${PLINTH_IQN_PREFIX}${name}`).sort();

  await t.test('iscsi-ls on each node lists all volumes', async (t) => {
    for (const [index, node] of nodes.entries()) {
      // A follower learns of the volumes once it has applied the create entries.
      const listed = await eventually(`node n${index + 1} to list every volume`, 10_000, async () => {
        const result = await run('iscsi-ls', [node.iscsiPortalUri()], { timeoutMs: TOOL_TIMEOUT_MS });
        if (result.code !== 0) throw new Error(describeRun(result));
        const targets = discoveredTargets(result.stdout).sort();
        return expected.every((iqn) => targets.includes(iqn)) ? { targets, result } : undefined;
      });
      t.same(listed.targets, expected, `n${index + 1} lists exactly the volumes`);
      t.match(listed.result.stdout, `Portal:127.0.0.1:${node.ports.iscsi}`, 'with its own portal');
    }
  });

  await t.test('a login to a volume attached to another node is refused, cleanly', async (t) => {
    const attached = await n1.api('POST', '/v1/volumes/disc-a/attach', { node: 'n1' });
    t.equal(attached.status, 200, `attach disc-a to n1: ${JSON.stringify(attached.body)}`);
    await eventually('n2 to see disc-a attached to n1', 10_000, async () => ((await volumeAttachedTo(n2, 'disc-a')) === 'n1' ? true : undefined));

    const refused = await run('iscsi-inq', [n2.iscsiUri('disc-a')], { timeoutMs: TOOL_TIMEOUT_MS });
    t.not(refused.code, 0, `n2 refuses disc-a: ${describeRun(refused)}`);
    // A Login Response with a non-zero Status-Class (RFC 7143 §11.13.5), not a dropped or refused connection.
    t.match(refused.stderr, /Failed to log in to target\. Status: /, 'as a login response with an error status');
    t.equal(await volumeAttachedTo(n1, 'disc-a'), 'n1', 'disc-a stays attached to n1');

    const owner = await run('iscsi-inq', [n1.iscsiUri('disc-a')], { timeoutMs: TOOL_TIMEOUT_MS });
    t.equal(owner.code, 0, `n1 serves disc-a: ${describeRun(owner)}`);
    t.match(owner.stdout, /Peripheral Device Type:DIRECT_ACCESS/, 'a direct-access block device');

    const other = await run('iscsi-inq', [n2.iscsiUri('disc-b')], { timeoutMs: TOOL_TIMEOUT_MS });
    t.equal(other.code, 0, `n2 still serves disc-b: ${describeRun(other)}`);
    t.equal(await volumeAttachedTo(n2, 'disc-b'), 'n2', 'logging in attached disc-b to n2');

    const capacity = await run('iscsi-readcapacity16', [n2.iscsiUri('disc-b')], { timeoutMs: TOOL_TIMEOUT_MS });
    t.match(capacity.stdout, /^Total size:67108864$/m, `LUN 0 is the 64 MiB volume: ${describeRun(capacity)}`);
    for (const node of nodes) t.equal(node.exitStatus, null, 'every node is still running');
  });
});
