import t from 'tap';
import { translateValidationError } from '../../../api/fastify-error-translation.js';
import { errorBody, httpStatusForCode } from '../../../api/http-errors.js';
import type { PlinthErrorCode } from '../../../common/plinth-error.js';

t.test('the code → status table of the contract', async (t) => {
  const expected: [PlinthErrorCode, number][] = [
    ['INVALID_NAME', 400], ['INVALID_SIZE', 400], ['INVALID_ARGUMENT', 400], ['CONFIG_INVALID', 400], ['TOO_LARGE', 400],
    ['INVALID_JSON', 400], ['UNAUTHORIZED', 401], ['VOLUME_NOT_FOUND', 404], ['NOT_FOUND', 404],
    ['VOLUME_EXISTS', 409], ['VOLUME_ATTACHED', 409], ['BODY_TOO_LARGE', 413], ['UNSUPPORTED_MEDIA_TYPE', 415],
    ['NO_SPACE', 507], ['NOT_LEADER', 503], ['SHUTTING_DOWN', 503], ['TIMEOUT', 504],
    ['IO_ERROR', 500], ['INTERNAL', 500], ['DISK_CORRUPT', 500],
    // Issue 8: a snapshot raced by a new owner is a conflict to retry (docs/api.md "Errors" lists FENCED under 409).
    ['FENCED', 409], ['SNAPSHOT_NOT_FOUND', 404], ['SNAPSHOT_EXISTS', 409],
  ];
  for (const [code, status] of expected) t.equal(httpStatusForCode(code), status, code);
});

t.test('errorBody omits empty details', async (t) => {
  t.same(errorBody('X', 'm'), { error: { code: 'X', message: 'm' } });
  t.same(errorBody('X', 'm', {}), { error: { code: 'X', message: 'm' } });
  t.same(errorBody('X', 'm', { a: 1 }), { error: { code: 'X', message: 'm', details: { a: 1 } } });
});

t.test('validation failures name the field and pick the specific code', async (t) => {
  const required = translateValidationError(
    [{ keyword: 'required', instancePath: '', schemaPath: '#/required', params: { missingProperty: 'name' }, message: "must have required property 'name'" }],
    'body',
  );
  t.match(required, { code: 'INVALID_ARGUMENT', message: 'body.name is required', details: { field: 'body.name' } });

  const extra = translateValidationError(
    [{ keyword: 'additionalProperties', instancePath: '', schemaPath: '#', params: { additionalProperty: 'name' } }],
    'body',
  );
  t.equal(extra.code, 'INVALID_ARGUMENT', 'an unknown property called "name" is not a bad volume name');

  const pattern = translateValidationError(
    [{ keyword: 'pattern', instancePath: '/name', schemaPath: '#', params: {}, message: 'must match pattern' }],
    'params',
  );
  t.match(pattern, { code: 'INVALID_NAME', details: { field: 'params.name' } });

  const size = translateValidationError([{ keyword: 'type', instancePath: '/size', schemaPath: '#', params: {} }], 'body');
  t.equal(size.code, 'INVALID_SIZE');

  const nested = translateValidationError(
    [{ keyword: 'maximum', instancePath: '/replicas', schemaPath: '#', params: {}, message: 'must be <= 5' }],
    'body',
  );
  t.equal(nested.message, 'body.replicas must be <= 5');
  t.equal(translateValidationError([], 'querystring').code, 'INVALID_ARGUMENT');
});
