// bulk2.js - jsforce (a real Salesforce client) against the emulator: JWT login, describe, bulk2 loads.
//
//   node bulk2.js LOGIN_URL KEY.pem CONSUMER_KEY USERNAME
//
// LOGIN_URL is the emulator's login host (it also serves /__emu). Exits 0 when every check holds.
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const jsforce = require('jsforce');

const [loginUrl, keyFile, consumerKey, username] = process.argv.slice(2);
if (!username) {
  console.error('usage: node bulk2.js LOGIN_URL KEY.pem CONSUMER_KEY USERNAME');
  process.exit(2);
}
let failures = 0;
function check(cond, what) {
  console.log(`${cond ? 'ok  ' : 'FAIL'} ${what}`);
  if (!cond) failures++;
}
async function admin(method, path, body) {
  const res = await fetch(loginUrl + '/__emu' + path, {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (!res.ok) throw new Error(`admin ${method} ${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

function jwtAssertion(aud) {
  const b64u = (b) => Buffer.from(b).toString('base64url');
  const header = b64u(JSON.stringify({ alg: 'RS256' }));
  const claims = b64u(JSON.stringify({
    iss: consumerKey, sub: username, aud, exp: Math.floor(Date.now() / 1000) + 180,
  }));
  const sig = crypto.sign('RSA-SHA256', Buffer.from(`${header}.${claims}`), fs.readFileSync(keyFile));
  return `${header}.${claims}.${b64u(sig)}`;
}

function voiceCall(prefix, i) {
  const start = new Date(Date.UTC(2026, 10, 25, 8, 0, 0) + i * 1000);
  const end = new Date(start.getTime() + (30 + (i % 600)) * 1000);
  const rec = {
    Callpipe_Id__c: `${prefix}-${i}`,
    CallType: i % 3 === 0 ? 'Outbound' : 'Inbound',
    VendorType: 'ContactCenter',
    CallStartDateTime: start.toISOString(),
    CallEndDateTime: end.toISOString(),
    FromPhoneNumber: `+1555${String(i).padStart(7, '0')}`,
    ToPhoneNumber: '+18005550100',
    CallDurationInSeconds: 30 + (i % 600),
    IsRecorded: i % 2 === 0,
    QueueName: i % 5 === 0 ? null : `queue-${i % 7}`,
  };
  // Values that need CSV quoting: commas, quotes, line breaks, non-ASCII.
  if (i % 97 === 0) rec.Description = `line one, "quoted"\nline two ✓ ${i}`;
  return rec;
}

async function main() {
  await admin('POST', '/reset');
  const orgs = await admin('GET', '/orgs');
  const org = orgs.find((o) => o.users.some((u) => u.username === username));
  check(!!org, `the emulator knows ${username}`);

  // 1. JWT bearer login through jsforce's own token request.
  const conn = new jsforce.Connection({ loginUrl, version: '62.0' });
  const userInfo = await conn.authorize({
    grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
    assertion: jwtAssertion(org.audience),
  });
  check(conn.instanceUrl === org.instance_url, `instance_url ${conn.instanceUrl}`);
  check(userInfo.organizationId === org.org_id, `org id from the id URL: ${userInfo.organizationId}`);
  check(userInfo.id === org.users.find((u) => u.username === username).id, 'user id from the id URL');

  // A wrong audience is refused with the OAuth error shape.
  const bad = new jsforce.Connection({ loginUrl, version: '62.0' });
  let err = null;
  try {
    await bad.authorize({
      grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer',
      assertion: jwtAssertion('https://test.salesforce.com'),
    });
  } catch (e) { err = e; }
  check(err && /audience is invalid/.test(err.message), `wrong aud refused: ${err && err.message}`);

  // 2. describe through jsforce.
  const d = await conn.sobject('VoiceCall').describe();
  const f = Object.fromEntries(d.fields.map((x) => [x.name, x]));
  check(d.name === 'VoiceCall' && f.CallType.type === 'picklist', 'describe VoiceCall');
  check(f.CallType.picklistValues.some((p) => p.value === 'Inbound'), 'CallType picklist values');
  check(f.Callpipe_Id__c && f.Callpipe_Id__c.externalId === true, 'custom external id field');
  const t = await conn.sobject('Task').describe();
  check(t.fields.some((x) => x.name === 'CallObject'), 'describe Task');

  // 3. 10,000 VoiceCalls with bulk2, two transient 503s on the polls on the way.
  await admin('POST', '/faults', { kind: 'http', status: 503, method: 'GET', path: '/jobs/ingest/750', count: 2 });
  const N = 10000;
  const records = Array.from({ length: N }, (_, i) => voiceCall('cf', i));
  const r1 = await conn.bulk2.loadAndWaitForResults({
    object: 'VoiceCall', operation: 'insert', input: records, pollInterval: 200, pollTimeout: 120000,
  });
  check(r1.successfulResults.length === N, `insert: ${r1.successfulResults.length} successful`);
  check(r1.failedResults.length === 0, `insert: ${r1.failedResults.length} failed`);
  check(r1.unprocessedRecords.length === 0, `insert: ${r1.unprocessedRecords.length} unprocessed`);
  check(r1.successfulResults.every((r) => /^0LQ[0-9A-Za-z]{15}$/.test(r.sf__Id)), 'every sf__Id is an 18-char VoiceCall id');
  check(r1.successfulResults.every((r) => r.sf__Created === 'true'), 'every sf__Created is "true"');
  const keys = new Set(r1.successfulResults.map((r) => r.Callpipe_Id__c));
  check(keys.size === N, 'results echo every Callpipe_Id__c once');
  const echo = r1.successfulResults.find((r) => r.Callpipe_Id__c === 'cf-97');
  check(echo && echo.Description === records[97].Description, 'quoted multi-line value echoed intact');
  const stored = await admin('GET', `/orgs/${org.name}/records/VoiceCall`);
  check(stored.length === N, `emulator stored ${stored.length} VoiceCalls`);
  const s97 = stored.find((r) => r.Callpipe_Id__c === 'cf-97');
  check(s97 && s97.Description === records[97].Description && s97.IsRecorded === false &&
        s97.CallDurationInSeconds === 127, 'stored values (text, boolean, int) match');
  const s5 = stored.find((r) => r.Callpipe_Id__c === 'cf-5');
  check(s5 && s5.QueueName === null, 'jsforce null (#N/A) stored as null');
  const polls = (await admin('GET', '/faults')).filter((x) => x.kind === 'http');
  check(polls.length === 1 && polls[0].used_up, 'the two 503s were served (jsforce retried)');
  await admin('DELETE', '/faults');

  // 4. Injected row failures: every 10th row UNABLE_TO_LOCK_ROW, one validation error (upsert).
  await admin('POST', '/faults', [
    { kind: 'row', every: 10, count: 0 },
    { kind: 'row', field: 'Callpipe_Id__c', value: 'up-7', code: 'FIELD_CUSTOM_VALIDATION_EXCEPTION', message: 'Call needs a queue' },
  ]);
  const M = 1000;
  const up = Array.from({ length: M }, (_, i) => voiceCall('up', i));
  const r2 = await conn.bulk2.loadAndWaitForResults({
    object: 'VoiceCall', operation: 'upsert', externalIdFieldName: 'Callpipe_Id__c', input: up,
    pollInterval: 200, pollTimeout: 60000,
  });
  check(r2.failedResults.length === 101, `upsert with faults: ${r2.failedResults.length} failed`);
  check(r2.successfulResults.length === 899, `upsert with faults: ${r2.successfulResults.length} successful`);
  const locks = r2.failedResults.filter((r) => r.sf__Error.startsWith('UNABLE_TO_LOCK_ROW:'));
  check(locks.length === 100, `${locks.length} UNABLE_TO_LOCK_ROW rows`);
  const v7 = r2.failedResults.find((r) => r.Callpipe_Id__c === 'up-7');
  check(v7 && v7.sf__Error === 'FIELD_CUSTOM_VALIDATION_EXCEPTION:Call needs a queue:--', `validation row: ${v7 && v7.sf__Error}`);
  check(r2.failedResults.every((r) => r.sf__Id === ''), 'failed inserts carry an empty sf__Id');
  await admin('DELETE', '/faults');

  // Retrying the failed rows: they insert, the 899 others update (sf__Created false).
  const r3 = await conn.bulk2.loadAndWaitForResults({
    object: 'VoiceCall', operation: 'upsert', externalIdFieldName: 'Callpipe_Id__c',
    input: up.map((r) => ({ Callpipe_Id__c: r.Callpipe_Id__c, QualityScore: 4.5 })),
    pollInterval: 200, pollTimeout: 60000,
  });
  const created = r3.successfulResults.filter((r) => r.sf__Created === 'true').length;
  check(r3.failedResults.length === 101 && created === 0,
        `upsert of missing rows without required fields fails (${r3.failedResults.length}), updates succeed`);
  check(r3.failedResults.every((r) => r.sf__Error.startsWith('REQUIRED_FIELD_MISSING:')), 'REQUIRED_FIELD_MISSING');

  // 5. A job that fails: jsforce reports the job's errorMessage.
  await admin('POST', '/faults', { kind: 'job_fail', after_rows: 5, message: 'InvalidBatch : injected failure' });
  err = null;
  try {
    await conn.bulk2.loadAndWaitForResults({
      object: 'VoiceCall', operation: 'insert', input: records.slice(0, 20).map((r) => ({ ...r, Callpipe_Id__c: 'jf-' + r.Callpipe_Id__c })),
      pollInterval: 200, pollTimeout: 60000,
    });
  } catch (e) { err = e; }
  check(err && /injected failure/.test(err.message), `failed job reported: ${err && err.message}`);
  const jobs = await admin('GET', `/orgs/${org.name}/jobs`);
  check(jobs.some((j) => j.state === 'Failed' && j.numberRecordsUnprocessed === 15), 'failed job left 15 rows unprocessed');

  console.log(failures === 0 ? 'conformance OK' : `conformance FAILED: ${failures} checks`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e) => {
  console.error('conformance FAILED:', e);
  process.exit(1);
});
