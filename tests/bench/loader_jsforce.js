// loader_jsforce.js - bench-loader's peer: jsforce's bulk2 loads the loader's records into the emulator.
//
//   node loader_jsforce.js SPEC.json
//
// SPEC: {"orgs": [{"name", "instanceUrl", "accessToken", "object", "operation",
//         "externalIdFieldName"?, "file" (JSON lines), "jobSize", "maxJobs"}], "pollInterval"}
// Per org, the records are cut into jobs of jobSize, at most maxJobs running at once (as the
// loader does); every job is jsforce's loadAndWaitForResults (upload, close, poll, fetch the
// three result sets).  Prints one JSON line: records, successes, failures, wall and CPU seconds
// (utime + stime from /proc/self/stat, as the shell reads them for the loader).
'use strict';
const fs = require('fs');
const path = require('path');
const jsforce = require(path.join(__dirname, '../conformance/node_modules/jsforce'));

function cpuSeconds() {
  const f = fs.readFileSync('/proc/self/stat', 'utf8');
  const rest = f.slice(f.lastIndexOf(')') + 2).split(' ');
  return (Number(rest[11]) + Number(rest[12])) / 100; // utime, stime in clock ticks (100 Hz)
}

async function loadOrg(o, pollInterval) {
  const conn = new jsforce.Connection({ instanceUrl: o.instanceUrl, accessToken: o.accessToken, version: '62.0' });
  const recs = fs.readFileSync(o.file, 'utf8').split('\n').filter((l) => l).map((l) => JSON.parse(l));
  const jobs = [];
  for (let i = 0; i < recs.length; i += o.jobSize) jobs.push(recs.slice(i, i + o.jobSize));
  let next = 0, ok = 0, failed = 0, unprocessed = 0;
  async function worker() {
    while (next < jobs.length) {
      const input = jobs[next++];
      const opts = { object: o.object, operation: o.operation, input, pollInterval, pollTimeout: 600000 };
      if (o.externalIdFieldName) opts.externalIdFieldName = o.externalIdFieldName;
      const r = await conn.bulk2.loadAndWaitForResults(opts);
      ok += r.successfulResults.length;
      failed += r.failedResults.length;
      unprocessed += r.unprocessedRecords.length;
    }
  }
  await Promise.all(Array.from({ length: o.maxJobs }, worker));
  return { org: o.name, records: recs.length, ok, failed, unprocessed, jobs: jobs.length };
}

async function main() {
  const spec = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  const cpu0 = cpuSeconds();
  const t0 = Date.now();
  const per = await Promise.all(spec.orgs.map((o) => loadOrg(o, spec.pollInterval)));
  const wall = (Date.now() - t0) / 1000;
  console.log(JSON.stringify({ wall, cpu: cpuSeconds(), cpu_after_start: cpuSeconds() - cpu0, orgs: per }));
}
main().catch((e) => { console.error('jsforce run failed:', e); process.exit(1); });
