import type { FastifyError, FastifySchemaValidationError } from 'fastify';
import { PlinthError } from '../common/plinth-error.js';
import { VOLUME_NAME_RULE } from './schemas/request-schemas.js';

/**
 * Fastify raises its own errors (FST_ERR_*) before a handler runs: bad JSON,
 * wrong media type, oversized body, schema violations. Turning them into
 * PlinthErrors here keeps http-errors.ts the only code → status table.
 * Returns undefined for errors that are not request-level faults.
 */
export function translateFastifyError(error: FastifyError, bodyLimitBytes: number): PlinthError | undefined {
  if (error.validation !== undefined) {
    return translateValidationError(error.validation, error.validationContext ?? 'request');
  }
  switch (error.code) {
    case 'FST_ERR_CTP_INVALID_JSON_BODY': // also __proto__ / constructor poisoning
      return new PlinthError('INVALID_JSON', 'request body is not valid JSON');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new PlinthError('INVALID_JSON', 'request body is empty but Content-Type is application/json');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new PlinthError('UNSUPPORTED_MEDIA_TYPE', 'request body must be JSON (Content-Type: application/json)');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new PlinthError('BODY_TOO_LARGE', `request body is larger than ${bodyLimitBytes} bytes`, { bodyLimitBytes });
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new PlinthError('INVALID_ARGUMENT', 'request body size does not match Content-Length');
    default:
      return undefined;
  }
}

/**
 * Name the failing field ("body.replicas") in the message. Failures on the
 * volume name or size get their own codes so clients see INVALID_NAME /
 * INVALID_SIZE whether the schema or the control plane caught them.
 */
export function translateValidationError(
  failures: readonly FastifySchemaValidationError[],
  context: string,
): PlinthError {
  const first = failures[0];
  if (first === undefined) {
    return new PlinthError('INVALID_ARGUMENT', `invalid ${context}`);
  }
  const field = failingField(first, context);
  const structural = first.keyword === 'required' || first.keyword === 'additionalProperties';
  const leaf = structural ? undefined : field.split('.').pop();
  if (leaf === 'name') {
    return new PlinthError('INVALID_NAME', `invalid volume name: use ${VOLUME_NAME_RULE}`, { field });
  }
  if (leaf === 'size') {
    return new PlinthError(
      'INVALID_SIZE',
      'size must be a non-negative integer number of bytes or a string like "512MiB" or "10GiB"',
      { field },
    );
  }
  return new PlinthError('INVALID_ARGUMENT', describeFailure(first, field), { field, keyword: first.keyword });
}

function failingField(failure: FastifySchemaValidationError, context: string): string {
  const path = failure.instancePath.split('/').filter((part) => part !== '').join('.');
  const base = path === '' ? context : `${context}.${path}`;
  const missing = stringParam(failure, 'missingProperty');
  if (failure.keyword === 'required' && missing !== undefined) return `${base}.${missing}`;
  const extra = stringParam(failure, 'additionalProperty');
  if (failure.keyword === 'additionalProperties' && extra !== undefined) return `${base}.${extra}`;
  return base;
}

function describeFailure(failure: FastifySchemaValidationError, field: string): string {
  switch (failure.keyword) {
    case 'required':
      return `${field} is required`;
    case 'additionalProperties':
      return `${field} is not a known property`;
    default:
      return `${field} ${failure.message ?? 'is invalid'}`;
  }
}

function stringParam(failure: FastifySchemaValidationError, key: string): string | undefined {
  const value: unknown = failure.params[key];
  return typeof value === 'string' ? value : undefined;
}

export function isFastifyError(error: unknown): error is FastifyError {
  return error instanceof Error && 'code' in error && typeof error.code === 'string' && error.code.startsWith('FST_');
}
