import t from 'tap';
import { findVolume, type ClusterState } from '../../../daemon/state/cluster-state.js';
import { decodeCommand, type Command } from '../../../daemon/state/commands.js';
import type { VolumeChapCommand } from '../../../daemon/state/volume-chap-commands.js';
import { volumeView } from '../../../daemon/control/views.js';
import { ok, refused, withNodes } from './helpers/cluster-state-fixture.js';

/** volume.chap: per-volume iSCSI CHAP secrets in the cluster state (docs/iscsi.md "CHAP"). */

const AT = '2026-01-01T00:00:00.000Z';
const SECRET = 'initiator-secret-1';
const TARGET_SECRET = 'target-secret-22';

/** Nodes n1, n2; volume v1 (replicas on both), detached. */
function baseState(): ClusterState {
  return ok(withNodes(['n1', 'n2'], AT), { type: 'volume.create', id: 'id-v1', name: 'v1', sizeBytes: 1024 ** 3, replicaCount: 2, createdAt: AT }).state;
}

function chapCommand(overrides: Partial<VolumeChapCommand> = {}): VolumeChapCommand {
  return { type: 'volume.chap', name: 'v1', user: 'alice', secret: SECRET, ...overrides };
}

t.test('set, replace with mutual, clear; attach and failover keep the secrets', async (t) => {
  const oneWay = ok(baseState(), chapCommand()).state;
  t.same(findVolume(oneWay, 'v1')?.chap, { user: 'alice', secret: SECRET });

  const mutual = ok(oneWay, chapCommand({ user: 'bob', targetUser: 'plinth', targetSecret: TARGET_SECRET })).state;
  t.same(findVolume(mutual, 'v1')?.chap, { user: 'bob', secret: SECRET, targetUser: 'plinth', targetSecret: TARGET_SECRET }, 'replaced as a whole');

  const attached = ok(mutual, { type: 'volume.attach', name: 'v1', nodeId: 'n1' }).state;
  const failedOver = ok(attached, { type: 'volume.attach', name: 'v1', nodeId: 'n2', force: true }).state;
  t.same(findVolume(failedOver, 'v1')?.chap, findVolume(mutual, 'v1')?.chap, 'the new owner enforces the same secrets');
  const resized = ok(failedOver, { type: 'volume.resize', name: 'v1', sizeBytes: 2 * 1024 ** 3 }).state;
  t.ok(findVolume(resized, 'v1')?.chap, 'other volume commands keep them');

  const cleared = ok(resized, { type: 'volume.chap', name: 'v1' }).state;
  const volume = findVolume(cleared, 'v1');
  t.equal(volume?.chap, undefined, 'cleared');
  t.notOk(volume !== undefined && 'chap' in volume, 'no leftover key in the record (snapshots stay minimal)');
  t.same(ok(cleared, { type: 'volume.chap', name: 'v1' }).state, cleared, 'clearing twice changes nothing');
});

t.test('refusals name the rule and never quote a secret', async (t) => {
  const state = baseState();
  const cases: [string, Command, RegExp][] = [
    ['short secret', chapCommand({ secret: 'short-11ch!' }), /secret must be 12 to 255 bytes long, got 11/],
    ['long secret', chapCommand({ secret: 'x'.repeat(256) }), /secret must be 12 to 255 bytes long, got 256/],
    ['control character', chapCommand({ secret: 'twelve-bytes\n' }), /secret must not contain control characters/],
    ['empty user', chapCommand({ user: '' }), /user must not be empty/],
    ['user without secret', { type: 'volume.chap', name: 'v1', user: 'alice' }, /user is set but secret is not/],
    ['secret without user', { type: 'volume.chap', name: 'v1', secret: SECRET }, /secret is set but user is not/],
    ['half a target pair', chapCommand({ targetUser: 'plinth' }), /targetUser is set but targetSecret is not/],
    ['short target secret', chapCommand({ targetUser: 'plinth', targetSecret: 'tiny' }), /targetSecret must be 12 to 255 bytes/],
    ['mutual without one-way', { type: 'volume.chap', name: 'v1', targetUser: 'plinth', targetSecret: TARGET_SECRET }, /mutual CHAP \(targetUser\) needs one-way CHAP too/],
    ['same secret both ways', chapCommand({ targetUser: 'plinth', targetSecret: SECRET }), /targetSecret must differ from secret \(RFC 7143 §12\.1\.3\)/],
  ];
  for (const [name, command, message] of cases) {
    const error = refused(state, command);
    t.equal(error.code, 'INVALID_ARGUMENT', name);
    t.match(error.message, message, name);
    const said = `${error.message} ${JSON.stringify(error.details)}`;
    for (const secret of [command.type === 'volume.chap' ? command.secret : undefined, command.type === 'volume.chap' ? command.targetSecret : undefined]) {
      if (secret !== undefined && secret.length >= 4) t.notOk(said.includes(secret), `${name}: the secret is not quoted`);
    }
  }
  t.equal(refused(state, chapCommand({ name: 'nope' })).code, 'VOLUME_NOT_FOUND');
  t.equal(refused(state, chapCommand({ secret: '' })).code, 'INVALID_ARGUMENT', 'an empty secret');
  // Multi-byte characters count in bytes (what CHAP hashes): 4 × 3 bytes = 12 bytes.
  t.ok(findVolume(ok(state, chapCommand({ secret: '€€€€' })).state, 'v1')?.chap, 'twelve bytes of UTF-8 are enough');
});

t.test('decodeCommand checks the shape of volume.chap', async (t) => {
  t.same(decodeCommand({ type: 'volume.chap', name: 'v1' }), { type: 'volume.chap', name: 'v1' });
  t.same(decodeCommand(chapCommand()), chapCommand());
  t.throws(() => decodeCommand({ type: 'volume.chap', name: 'v1', user: 7, secret: SECRET }), { code: 'INVALID_ARGUMENT', message: /field "user" must be a string/ });
  t.throws(() => decodeCommand({ ...chapCommand(), extra: true }), { code: 'INVALID_ARGUMENT', message: /unexpected field "extra"/ });
});

t.test('the volume view shows the user and mutual, never a secret', async (t) => {
  const facts = { allocatedBytes: 0, connections: 0 };
  const plain = findVolume(baseState(), 'v1');
  if (plain === undefined) throw new Error('v1 missing');
  t.equal(volumeView(plain, facts).chap, null, 'no per-volume CHAP: null');
  const state = ok(baseState(), chapCommand({ targetUser: 'plinth', targetSecret: TARGET_SECRET })).state;
  const volume = findVolume(state, 'v1');
  if (volume === undefined) throw new Error('v1 missing');
  const view = volumeView(volume, facts);
  t.same(view.chap, { user: 'alice', mutual: true });
  const text = JSON.stringify(view);
  t.notOk(text.includes(SECRET), 'no initiator secret in the view');
  t.notOk(text.includes(TARGET_SECRET), 'no target secret in the view');
  const oneWay = findVolume(ok(baseState(), chapCommand()).state, 'v1');
  if (oneWay === undefined) throw new Error('v1 missing');
  t.same(volumeView(oneWay, facts).chap, { user: 'alice', mutual: false });
});
