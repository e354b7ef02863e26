/**
 * Secrets out of a support bundle (docs/operations.md "Support bundle"), in
 * two passes because either alone can miss one:
 *
 * 1. by name — `redactSecretFields`: every field whose name says secret,
 *    token, key, password, passphrase or credential (the cluster secret, the
 *    API token, CHAP secrets, TLS keys, join tokens, and the file settings
 *    naming them) shows as "<redacted>", however deep it is nested;
 * 2. by value — `scrubSecretValues`: every known secret value (this node's
 *    API token and cluster secret, every CHAP secret in its config and in
 *    the cluster state) is replaced wherever it appears in a file, e.g. a
 *    log line that quoted one.
 */
export const REDACTED = '<redacted>';

/**
 * Field names that hold (or name a file holding) a secret, judged word by
 * word (camelCase, kebab-case, snake_case alike) so `tlsKey`, `api-token`
 * and `iscsi-chap-secret-file` match and `keyed` or `monkey` do not.
 */
const SECRET_WORD = /^(keys?|(secret|token|passw|passphrase|credential)[a-z]*)$/;

/** Below this length a "secret" would match ordinary text everywhere; such values are not scrubbed by value. */
export const MIN_SCRUBBED_SECRET_LENGTH = 6;

/** Bounds the walk: deeper structures are cut rather than recursed into. */
const MAX_DEPTH = 32;

export function isSecretFieldName(name: string): boolean {
  const words = name.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase().split(/[^a-z0-9]+/);
  return words.some((word) => SECRET_WORD.test(word));
}

/** A deep copy of a JSON-like value with every secret-named field that is set replaced by REDACTED. */
export function redactSecretFields(value: unknown, depth = 0): unknown {
  if (depth > MAX_DEPTH) return '<too deep>';
  if (Array.isArray(value)) return value.map((item: unknown) => redactSecretFields(item, depth + 1));
  if (value instanceof Map) return redactSecretFields(Object.fromEntries(value), depth);
  if (typeof value !== 'object' || value === null) return value;
  const copy: Record<string, unknown> = {};
  for (const [name, field] of Object.entries(value)) {
    // An unset secret (null) stays null: whether one is configured is worth knowing, and reveals nothing.
    copy[name] = isSecretFieldName(name) && field !== null && field !== undefined ? REDACTED : redactSecretFields(field, depth + 1);
  }
  return copy;
}

/**
 * The string values of secret-named fields anywhere in `value` (CHAP
 * secrets of a config or of the cluster state), for `scrubSecretValues`.
 */
export function secretValuesIn(value: unknown, depth = 0): string[] {
  if (depth > MAX_DEPTH || typeof value !== 'object' || value === null) return [];
  const found: string[] = [];
  for (const [name, field] of Object.entries(value)) {
    if (isSecretFieldName(name) && typeof field === 'string') found.push(field);
    else found.push(...secretValuesIn(field, depth + 1));
  }
  return found;
}

/**
 * `text` with every occurrence of each secret replaced by REDACTED, longest
 * first (so a secret containing another is removed whole). Secrets shorter
 * than MIN_SCRUBBED_SECRET_LENGTH are skipped; each is also matched in its
 * JSON-escaped form, as it appears inside a JSON log line.
 */
export function scrubSecretValues(text: string, secrets: Iterable<string>): string {
  const forms = new Set<string>();
  for (const secret of secrets) {
    if (secret.length < MIN_SCRUBBED_SECRET_LENGTH) continue;
    forms.add(secret);
    forms.add(JSON.stringify(secret).slice(1, -1));
  }
  let scrubbed = text;
  for (const form of [...forms].sort((a, b) => b.length - a.length)) scrubbed = scrubbed.split(form).join(REDACTED);
  return scrubbed;
}
