/**
 * Numbers from RFC 7143 used by the codec and the state machines, named
 * after the RFC's own terms (section cited at each group).
 */

/** §11.2.1.2 opcodes, initiator to target. */
export const InitiatorOpcode = {
  NOP_OUT: 0x00,
  SCSI_COMMAND: 0x01,
  TASK_MANAGEMENT_REQUEST: 0x02,
  LOGIN_REQUEST: 0x03,
  TEXT_REQUEST: 0x04,
  DATA_OUT: 0x05,
  LOGOUT_REQUEST: 0x06,
  SNACK_REQUEST: 0x10,
} as const;

/** §11.2.1.2 opcodes, target to initiator. */
export const TargetOpcode = {
  NOP_IN: 0x20,
  SCSI_RESPONSE: 0x21,
  TASK_MANAGEMENT_RESPONSE: 0x22,
  LOGIN_RESPONSE: 0x23,
  TEXT_RESPONSE: 0x24,
  DATA_IN: 0x25,
  LOGOUT_RESPONSE: 0x26,
  R2T: 0x31,
  ASYNC_MESSAGE: 0x32,
  REJECT: 0x3f,
} as const;

export const BHS_BYTES = 48;
export const DIGEST_BYTES = 4;
/** The reserved tag value (§11.2.1.8, §11.18.4): "no task" / "no target transfer". */
export const RESERVED_TAG = 0xffffffff;

/** §11.4.2 Response field of the SCSI Response PDU. */
export const ScsiResponseCode = { COMMAND_COMPLETED: 0x00, TARGET_FAILURE: 0x01 } as const;

/** §11.5.1 task management function codes. */
export const TaskFunctionCode = {
  ABORT_TASK: 1,
  ABORT_TASK_SET: 2,
  CLEAR_ACA: 3,
  CLEAR_TASK_SET: 4,
  LOGICAL_UNIT_RESET: 5,
  TARGET_WARM_RESET: 6,
  TARGET_COLD_RESET: 7,
  TASK_REASSIGN: 8,
} as const;

/** §11.6.1 task management responses. */
export const TaskResponseCode = {
  FUNCTION_COMPLETE: 0,
  TASK_DOES_NOT_EXIST: 1,
  LUN_DOES_NOT_EXIST: 2,
  TASK_STILL_ALLEGIANT: 3,
  REASSIGNMENT_NOT_SUPPORTED: 4,
  NOT_SUPPORTED: 5,
  AUTHORIZATION_FAILED: 6,
  FUNCTION_REJECTED: 255,
} as const;

/** §11.17.1 reject reasons. */
export const RejectReason = {
  DATA_DIGEST_ERROR: 0x02,
  SNACK_REJECT: 0x03,
  PROTOCOL_ERROR: 0x04,
  COMMAND_NOT_SUPPORTED: 0x05,
  IMMEDIATE_COMMAND_REJECT: 0x06,
  TASK_IN_PROGRESS: 0x07,
  INVALID_DATA_ACK: 0x08,
  INVALID_PDU_FIELD: 0x09,
  OUT_OF_RESOURCES: 0x0a,
  WAITING_FOR_LOGOUT: 0x0c,
} as const;

/** §11.13.1 login stages (CSG/NSG). */
export const LoginStage = { SECURITY: 0, OPERATIONAL: 1, FULL_FEATURE: 3 } as const;

/** §11.13.5 Status-Class and Status-Detail as one 16-bit value. */
export const LoginStatus = {
  SUCCESS: 0x0000,
  INITIATOR_ERROR: 0x0200,
  AUTHENTICATION_FAILURE: 0x0201,
  AUTHORIZATION_FAILURE: 0x0202,
  NOT_FOUND: 0x0203,
  TARGET_REMOVED: 0x0204,
  UNSUPPORTED_VERSION: 0x0205,
  TOO_MANY_CONNECTIONS: 0x0206,
  MISSING_PARAMETER: 0x0207,
  CANNOT_INCLUDE_IN_SESSION: 0x0208,
  SESSION_TYPE_NOT_SUPPORTED: 0x0209,
  SESSION_DOES_NOT_EXIST: 0x020a,
  INVALID_DURING_LOGIN: 0x020b,
  TARGET_ERROR: 0x0300,
  SERVICE_UNAVAILABLE: 0x0301,
  OUT_OF_RESOURCES: 0x0302,
} as const;

/** §11.14.1 logout reason codes and §11.15.1 responses. */
export const LogoutReason = { CLOSE_SESSION: 0, CLOSE_CONNECTION: 1, REMOVE_FOR_RECOVERY: 2 } as const;
export const LogoutResponseCode = { SUCCESS: 0, CID_NOT_FOUND: 1, RECOVERY_NOT_SUPPORTED: 2, CLEANUP_FAILED: 3 } as const;

/** §11.9.1 AsyncEvent codes. */
export const AsyncEvent = { SCSI_ASYNC_EVENT: 0, LOGOUT_REQUESTED: 1, CONNECTION_DROP: 2, SESSION_DROP: 3, NEGOTIATION_REQUEST: 4 } as const;

/** ARCHITECTURE "iSCSI": one target per volume, named after it. */
export const TARGET_IQN_PREFIX = 'iqn.2026-11.io.plinth:';

export function targetNameOf(volumeName: string): string {
  return `${TARGET_IQN_PREFIX}${volumeName}`;
}

/** The volume a target name designates, or undefined when it is not one of ours. */
export function volumeNameOf(targetName: string): string | undefined {
  if (!targetName.toLowerCase().startsWith(TARGET_IQN_PREFIX)) {
    return undefined;
  }
  const volume = targetName.slice(TARGET_IQN_PREFIX.length);
  return volume.length === 0 ? undefined : volume;
}
