import t from 'tap';
import { targetNameOf } from '../../../blockdev/iscsi/iscsi-constants.js';
import { createIscsiChapSecrets } from '../../../daemon/control/iscsi-chap-secrets.js';
import type { ClusterState } from '../../../daemon/state/cluster-state.js';
import type { Command } from '../../../daemon/state/commands.js';
import { ok, withNodes } from './helpers/cluster-state-fixture.js';

/** Precedence of the node's iSCSI CHAP provider: per volume > cluster-wide; discovery: cluster-wide only. */

const AT = '2026-01-01T00:00:00.000Z';
const CLUSTER = { initiator: { user: 'cluster-user', secret: 'cluster-secret-1' }, target: { user: 'cluster-target', secret: 'cluster-target-2' } };

function apply(state: ClusterState, command: Command): ClusterState {
  return ok(state, command).state;
}

/** Volumes open (no CHAP), oneway (per-volume one-way) and mutual (per-volume mutual). */
function stateWithVolumes(): ClusterState {
  let state = withNodes(['n1'], AT);
  for (const name of ['open', 'oneway', 'mutual']) {
    state = apply(state, { type: 'volume.create', id: `id-${name}`, name, sizeBytes: 1024 ** 2, replicaCount: 1, createdAt: AT });
  }
  state = apply(state, { type: 'volume.chap', name: 'oneway', user: 'vol-user', secret: 'volume-secret-1' });
  return apply(state, {
    type: 'volume.chap', name: 'mutual', user: 'vol-user', secret: 'volume-secret-2', targetUser: 'vol-target', targetSecret: 'volume-target-3',
  });
}

t.test('with cluster-wide CHAP: per-volume secrets override it for their target only', async (t) => {
  let state = stateWithVolumes();
  const secrets = createIscsiChapSecrets({ clusterChap: CLUSTER }, { state: () => state });
  t.same(secrets.initiatorCredentials(undefined), CLUSTER.initiator, 'discovery: cluster-wide');
  t.same(secrets.targetCredentials(undefined), CLUSTER.target, 'discovery: cluster-wide mutual');
  t.same(secrets.initiatorCredentials(targetNameOf('open')), CLUSTER.initiator, 'a volume without its own: cluster-wide');
  t.same(secrets.targetCredentials(targetNameOf('open')), CLUSTER.target);
  t.same(secrets.initiatorCredentials(targetNameOf('oneway')), { user: 'vol-user', secret: 'volume-secret-1' }, 'per volume');
  t.equal(secrets.targetCredentials(targetNameOf('oneway')), undefined, 'per-volume one-way stays one-way');
  t.same(secrets.initiatorCredentials(targetNameOf('mutual')), { user: 'vol-user', secret: 'volume-secret-2' });
  t.same(secrets.targetCredentials(targetNameOf('mutual')), { user: 'vol-target', secret: 'volume-target-3' });
  t.same(secrets.initiatorCredentials('iqn.2001-04.com.example:other'), CLUSTER.initiator, 'a foreign target name: cluster-wide');
  t.same(secrets.initiatorCredentials(targetNameOf('deleted-or-unknown')), CLUSTER.initiator, 'an unknown volume: cluster-wide');

  // Read per login from the applied state: a clear applies from the next login.
  state = apply(state, { type: 'volume.chap', name: 'oneway' });
  t.same(secrets.initiatorCredentials(targetNameOf('oneway')), CLUSTER.initiator, 'after a clear: cluster-wide again');
});

t.test('without cluster-wide CHAP: only volumes with their own secrets require CHAP', async (t) => {
  const state = stateWithVolumes();
  const secrets = createIscsiChapSecrets({ clusterChap: null }, { state: () => state });
  t.equal(secrets.initiatorCredentials(undefined), undefined, 'discovery is open');
  t.equal(secrets.targetCredentials(undefined), undefined);
  t.equal(secrets.initiatorCredentials(targetNameOf('open')), undefined, 'a volume without secrets is open');
  t.same(secrets.initiatorCredentials(targetNameOf('oneway')), { user: 'vol-user', secret: 'volume-secret-1' });
  t.same(secrets.targetCredentials(targetNameOf('mutual')), { user: 'vol-target', secret: 'volume-target-3' });
});

t.test('cluster-wide one-way: no target credentials anywhere', async (t) => {
  const state = stateWithVolumes();
  const secrets = createIscsiChapSecrets({ clusterChap: { initiator: CLUSTER.initiator, target: null } }, { state: () => state });
  t.equal(secrets.targetCredentials(undefined), undefined);
  t.equal(secrets.targetCredentials(targetNameOf('open')), undefined);
});
