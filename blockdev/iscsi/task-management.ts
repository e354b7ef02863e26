import { TaskFunctionCode, TaskResponseCode } from './iscsi-constants.js';
import { serialLessThan } from './command-window.js';
import type { TaskManagementPdu } from './pdu-decode.js';
import type { TaskManagementFunction } from './scsi/scsi-task.js';

/**
 * What a Task Management Function Request does (RFC 7143 §11.5), pure:
 * which of the connection's tasks it ends (they are not answered,
 * §4.2.3.3), what the device server is told, what we answer, and whether
 * the connection goes (TARGET COLD RESET, §11.5.1).
 */

export interface OpenTask {
  readonly initiatorTaskTag: number;
  readonly cmdSN: number;
  readonly lun: number;
}

export interface TaskManagementPlan {
  readonly affectedTaskTags: number[];
  /** The device-server function to run after the affected tasks ended, if any. */
  readonly forward: TaskManagementFunction | undefined;
  /** The answer unless the device server's result changes it. */
  readonly response: number;
  readonly dropConnection: boolean;
}

const LUN_FUNCTIONS = new Set<number>([
  TaskFunctionCode.ABORT_TASK,
  TaskFunctionCode.ABORT_TASK_SET,
  TaskFunctionCode.CLEAR_ACA,
  TaskFunctionCode.CLEAR_TASK_SET,
  TaskFunctionCode.LOGICAL_UNIT_RESET,
]);

export function planTaskManagement(
  request: TaskManagementPdu,
  context: { readonly tasks: Iterable<OpenTask>; readonly expCmdSN: number; readonly maxCmdSN: number; readonly lunExists: (lun: number) => boolean },
): TaskManagementPlan {
  const done = (response: number): TaskManagementPlan => ({ affectedTaskTags: [], forward: undefined, response, dropConnection: false });
  if (LUN_FUNCTIONS.has(request.functionCode) && !context.lunExists(request.lun)) {
    return done(TaskResponseCode.LUN_DOES_NOT_EXIST);
  }
  const tasks = [...context.tasks];
  const onLun = tasks.filter((task) => task.lun === request.lun).map((task) => task.initiatorTaskTag);
  const all = tasks.map((task) => task.initiatorTaskTag);
  const forward = (fn: TaskManagementFunction, affected: number[], dropConnection = false): TaskManagementPlan => ({
    affectedTaskTags: affected,
    forward: fn,
    response: TaskResponseCode.FUNCTION_COMPLETE,
    dropConnection,
  });
  switch (request.functionCode) {
    case TaskFunctionCode.ABORT_TASK:
      return planAbortTask(request, tasks, context);
    case TaskFunctionCode.ABORT_TASK_SET:
      return forward('abort-task-set', onLun);
    case TaskFunctionCode.CLEAR_TASK_SET:
      return forward('clear-task-set', onLun);
    case TaskFunctionCode.CLEAR_ACA:
      return forward('clear-aca', []);
    case TaskFunctionCode.LOGICAL_UNIT_RESET:
      return forward('lun-reset', onLun);
    case TaskFunctionCode.TARGET_WARM_RESET:
      return forward('target-warm-reset', all);
    case TaskFunctionCode.TARGET_COLD_RESET:
      return forward('target-cold-reset', all, true);
    case TaskFunctionCode.TASK_REASSIGN:
      // §11.5.1: at ErrorRecoveryLevel < 2 reassignment is not supported.
      return done(TaskResponseCode.REASSIGNMENT_NOT_SUPPORTED);
    default:
      return done(TaskResponseCode.NOT_SUPPORTED);
  }
}

/** §11.5.1 ABORT TASK cases a) to c). */
function planAbortTask(
  request: TaskManagementPdu,
  tasks: readonly OpenTask[],
  context: { readonly expCmdSN: number; readonly maxCmdSN: number },
): TaskManagementPlan {
  const target = tasks.find((task) => task.initiatorTaskTag === request.referencedTaskTag);
  if (target !== undefined) {
    return { affectedTaskTags: [target.initiatorTaskTag], forward: undefined, response: TaskResponseCode.FUNCTION_COMPLETE, dropConnection: false };
  }
  const inWindow = !serialLessThan(request.refCmdSN, context.expCmdSN) && !serialLessThan(context.maxCmdSN, request.refCmdSN);
  const beforeRequest = serialLessThan(request.refCmdSN, request.cmdSN);
  const response = inWindow && beforeRequest ? TaskResponseCode.FUNCTION_COMPLETE : TaskResponseCode.TASK_DOES_NOT_EXIST;
  return { affectedTaskTags: [], forward: undefined, response, dropConnection: false };
}

export function responseForResult(result: 'complete' | 'not-supported' | 'rejected'): number {
  if (result === 'complete') return TaskResponseCode.FUNCTION_COMPLETE;
  if (result === 'not-supported') return TaskResponseCode.NOT_SUPPORTED;
  return TaskResponseCode.FUNCTION_REJECTED;
}
