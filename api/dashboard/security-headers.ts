/**
 * Headers of every dashboard response (issue 6 "dashboard"). The page loads
 * only its own files and talks only to its own origin, so the policy can be
 * the strictest one that still works: no inline script or style, no plugins,
 * no framing (clickjacking), no foreign connections.
 */
export const DASHBOARD_CONTENT_SECURITY_POLICY = [
  "default-src 'self'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "object-src 'none'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

export const DASHBOARD_SECURITY_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': DASHBOARD_CONTENT_SECURITY_POLICY,
  'x-content-type-options': 'nosniff',
  // Older browsers that ignore frame-ancestors.
  'x-frame-options': 'DENY',
  // The page never needs to tell another site where it came from.
  'referrer-policy': 'no-referrer',
  'cross-origin-opener-policy': 'same-origin',
  'cross-origin-resource-policy': 'same-origin',
};
