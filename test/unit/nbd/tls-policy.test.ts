import t from 'tap';
import {
  NBD_OPT_ABORT,
  NBD_OPT_EXPORT_NAME,
  NBD_OPT_GO,
  NBD_OPT_LIST,
  NBD_OPT_STARTTLS,
  NBD_REP_ERR_INVALID,
  NBD_REP_ERR_POLICY,
  NBD_REP_ERR_TLS_REQD,
} from '../../../blockdev/nbd/constants.js';
import { type NbdTlsMode, type TlsGate, tlsGate } from '../../../blockdev/nbd/tls-policy.js';

/** The TLS rules of proto.md "TLS support" as a table: (mode, state, option) → decision. */

function gate(mode: NbdTlsMode, tlsActive: boolean, option: number, dataBytes = 0, fixedNewstyle = true): TlsGate {
  return tlsGate({ mode, tlsActive, fixedNewstyle }, option, dataBytes);
}

function summary(decision: TlsGate): string {
  return decision.kind === 'refuse' ? `refuse:${(decision.errorType & 0xff).toString()}` : decision.kind;
}

const INVALID = `refuse:${(NBD_REP_ERR_INVALID & 0xff).toString()}`;
const POLICY = `refuse:${(NBD_REP_ERR_POLICY & 0xff).toString()}`;
const TLS_REQD = `refuse:${(NBD_REP_ERR_TLS_REQD & 0xff).toString()}`;

t.test('NOTLS: STARTTLS is POLICY, everything else proceeds', async (t) => {
  t.equal(summary(gate('none', false, NBD_OPT_STARTTLS)), POLICY);
  for (const option of [NBD_OPT_LIST, NBD_OPT_GO, NBD_OPT_EXPORT_NAME, NBD_OPT_ABORT, 0xdeadbeef]) {
    t.equal(summary(gate('none', false, option)), 'proceed', `option ${option}`);
  }
});

t.test('FORCEDTLS before TLS: only STARTTLS and ABORT pass; EXPORT_NAME closes', async (t) => {
  t.equal(summary(gate('required', false, NBD_OPT_STARTTLS)), 'starttls');
  t.equal(summary(gate('required', false, NBD_OPT_ABORT)), 'proceed');
  t.equal(summary(gate('required', false, NBD_OPT_EXPORT_NAME)), 'close');
  for (const option of [NBD_OPT_LIST, NBD_OPT_GO, 6, 8, 10, 11, 0xdeadbeef]) {
    t.equal(summary(gate('required', false, option)), TLS_REQD, `option ${option}`);
  }
});

t.test('after TLS: nothing is TLS_REQD, a second STARTTLS is INVALID', async (t) => {
  for (const mode of ['optional', 'required'] as const) {
    t.equal(summary(gate(mode, true, NBD_OPT_STARTTLS)), INVALID, mode);
    for (const option of [NBD_OPT_LIST, NBD_OPT_GO, NBD_OPT_EXPORT_NAME, 0xdeadbeef]) {
      t.equal(summary(gate(mode, true, option)), 'proceed', `${mode} option ${option}`);
    }
  }
});

t.test('optional TLS: plain options proceed, STARTTLS upgrades', async (t) => {
  t.equal(summary(gate('optional', false, NBD_OPT_STARTTLS)), 'starttls');
  t.equal(summary(gate('optional', false, NBD_OPT_LIST)), 'proceed');
  t.equal(summary(gate('optional', false, NBD_OPT_EXPORT_NAME)), 'proceed');
});

t.test('STARTTLS with data is INVALID; without fixed newstyle it is POLICY', async (t) => {
  t.equal(summary(gate('required', false, NBD_OPT_STARTTLS, 1)), INVALID);
  t.equal(summary(gate('optional', false, NBD_OPT_STARTTLS, 0, false)), POLICY);
  t.equal(summary(gate('required', false, NBD_OPT_LIST, 0, false)), POLICY, 'NOTLS rules forbid TLS_REQD');
  t.equal(summary(gate('required', false, NBD_OPT_EXPORT_NAME, 0, false)), 'close');
});

t.test('refusals carry a message naming the option', async (t) => {
  const decision = gate('required', false, NBD_OPT_LIST);
  if (decision.kind !== 'refuse') throw new Error('expected a refusal');
  t.match(decision.message, /STARTTLS before LIST/);
});
