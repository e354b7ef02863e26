import type { ChapCredentials, ChapSecretProvider } from '../../blockdev/iscsi/chap.js';
import { volumeNameOf } from '../../blockdev/iscsi/iscsi-constants.js';
import type { IscsiChapConfig } from '../config/config-types.js';
import { findVolume, type ClusterState } from '../state/cluster-state.js';
import type { VolumeChapSecrets } from '../state/volume-chap-commands.js';

/**
 * The iSCSI target's CHAP secrets on this node (docs/iscsi.md "CHAP"):
 *
 * - a target whose volume has its own secrets (volume.chap, committed
 *   through Raft, so every node and every future owner enforces them) uses
 *   those and only those: one-way per-volume CHAP is one-way even when the
 *   node's cluster-wide settings are mutual;
 * - any other target, and discovery sessions (no target name), use the
 *   node's cluster-wide `--iscsi-chap-*` settings; none: no CHAP.
 *
 * Read on every login from the applied state, so a change applies from the
 * next login on; sessions already logged in keep running.
 */
export interface IscsiChapSecretsOptions {
  readonly clusterChap: IscsiChapConfig | null;
}

export interface IscsiChapSecretsModules {
  /** The applied cluster state (CommandProposer.state). */
  readonly state: () => ClusterState;
}

export function createIscsiChapSecrets(options: IscsiChapSecretsOptions, modules: IscsiChapSecretsModules): ChapSecretProvider {
  const { clusterChap } = options;
  const volumeChapOf = (targetName: string): VolumeChapSecrets | undefined => {
    const volumeName = volumeNameOf(targetName);
    return volumeName === undefined ? undefined : findVolume(modules.state(), volumeName)?.chap;
  };
  return {
    initiatorCredentials(targetName: string | undefined): ChapCredentials | undefined {
      const volumeChap = targetName === undefined ? undefined : volumeChapOf(targetName);
      if (volumeChap !== undefined) return { user: volumeChap.user, secret: volumeChap.secret };
      return clusterChap?.initiator;
    },
    targetCredentials(targetName: string | undefined): ChapCredentials | undefined {
      const volumeChap = targetName === undefined ? undefined : volumeChapOf(targetName);
      if (volumeChap !== undefined) {
        const { targetUser, targetSecret } = volumeChap;
        return targetUser === undefined || targetSecret === undefined ? undefined : { user: targetUser, secret: targetSecret };
      }
      return clusterChap?.target ?? undefined;
    },
  };
}
