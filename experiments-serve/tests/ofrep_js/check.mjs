// Interop check of `experiments serve` with OFREP clients nobody here wrote: the OpenFeature
// JavaScript server SDK (`@openfeature/server-sdk@1.23.0`) with the OFREP provider from npm
// (`@openfeature/ofrep-provider@0.1.3` over `@openfeature/ofrep-core@0.1.4`).
//
// Driven by `cargo xtask ofrep-js --node-dir DIR`, which starts the servers and computes every
// expected answer by evaluating the engines directly in Rust; the cases file is the one
// `tests/ofrep_python/check.py` reads (its format: `xtask/src/ofrep_clients.rs`). The raw
// bulk / ETag / 304 / 401 checks are check.py's alone: they test the server, not the client.
// Usage:
//
//     node check.mjs DIR PLAN.json RESULT.json      (DIR: the npm prefix with node_modules)
//
// The comparison is check.py's, as strict, except where this provider legitimately answers
// otherwise; each such place is in `expectationFor` with its reason, nowhere else.

import { readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

import { METHODS, Tally, checkDetails, contextOf, defaultFor, show } from './compare.mjs';

const [nodeDir, planPath, resultPath] = process.argv.slice(2);
if (!resultPath) {
  console.error('usage: node check.mjs DIR PLAN.json RESULT.json');
  process.exit(2);
}
// The packages live in DIR/node_modules, not beside this script: resolve them from there,
// all through `require`, so that the provider and this script share one SDK instance.
const require = createRequire(path.resolve(nodeDir, 'package.json'));
const { OpenFeature } = require('@openfeature/server-sdk');
const { OFREPProvider } = require('@openfeature/ofrep-provider');

const PACKAGES = [
  '@openfeature/server-sdk',
  '@openfeature/core',
  '@openfeature/ofrep-provider',
  '@openfeature/ofrep-core',
];

// What ofrep-core 0.1.4 throws for a 200 without `value` (`isEvaluationSuccessResponse`).
const UNEXPECTED_FORMAT = 'The OFREP response does not match the expected format';

/**
 * The answer this client should give for a case, or why it cannot be asked. Where the plan's
 * `expect` (what the protocol means, and what the Python client gives) is not this client's
 * answer, the difference is the provider's own and stated here.
 */
function expectationFor(c) {
  if (c.needs_number_types) {
    // One number type, a double: an integer beyond 2^53 in the context or the answer would
    // be rounded (and so would an integral float that large, sent as an integer).
    return { skip: 'a number beyond 2^53, which JavaScript rounds' };
  }
  if (/[\u0000-\u0020]$/.test(c.flag)) {
    // fetch's URL parser (WHATWG) strips C0 controls and spaces from both ends of the URL,
    // and the provider puts the key, unescaped, at its end: the server would get another key.
    return { skip: 'a flag key with spaces at the end, which fetch trims from the URL' };
  }
  // One number type, computed by the engines where it matters: (1) JSON.stringify sends an
  // integral float of the context (`1663515744.0`) as an integer, which the engines may
  // treat otherwise; (2) the float getter of an integer config passes the provider's type
  // check (typeof value === typeof default) and gets the integer's answer, where Python's
  // provider answers TYPE_MISMATCH.
  const exp = c.expect_one_number_type ?? c.expect;
  if (exp.error === null && !('value' in exp)) {
    // The protocol's code-default answer (200, no `value`, `"variant": null`): ofrep-core
    // 0.1.4 accepts a 200 only with a `value` member and throws its unexpected-format error,
    // which the SDK reports as GENERAL. The caller's default applies either way, as the
    // server means it to; the reason is ERROR instead of DEFAULT / DISABLED.
    return {
      exp: { error: 'GENERAL', message: UNEXPECTED_FORMAT, variant: null, reasons: ['ERROR'] },
      kind: 'no value (GENERAL)',
    };
  }
  return { exp, kind: exp.error ?? ('value' in exp ? 'value' : 'no value') };
}

function versions() {
  return PACKAGES.map((p) => {
    // Not `require.resolve`: the SDK's `exports` do not list its package.json.
    const file = path.resolve(nodeDir, 'node_modules', p, 'package.json');
    const manifest = JSON.parse(readFileSync(file, 'utf8'));
    return `${p}@${manifest.version}`;
  }).join(', ');
}

async function main() {
  const plan = JSON.parse(readFileSync(planPath, 'utf8'));
  if (plan.raw.length > 0) {
    throw new Error('raw checks are check.py\'s: the plan of this client must have none');
  }
  const tally = new Tally();
  for (const [gi, group] of plan.groups.entries()) {
    const domain = `group-${gi}`;
    await OpenFeature.setProviderAndWait(
      domain,
      new OFREPProvider({ baseUrl: group.url, headers: group.headers ?? undefined }),
    );
    const client = OpenFeature.getClient(domain);
    for (const c of group.cases) {
      const { exp, kind, skip } = expectationFor(c);
      if (skip) {
        tally.skip(skip);
        continue;
      }
      const fallback = defaultFor(c, exp);
      const details = await client[METHODS[c.type]](c.flag, fallback, contextOf(c));
      tally.requests[group.url] = (tally.requests[group.url] ?? 0) + 1;
      const label = `${group.name} ${c.id} ${show(c.flag)} (${c.type})`;
      tally.record(kind, label, checkDetails(exp, details, fallback));
    }
  }
  await OpenFeature.close();
  for (const line of tally.failures.slice(0, 30)) console.error('DISAGREE', line);
  const result = tally.result(`node ${process.version}, ${versions()}`);
  writeFileSync(resultPath, JSON.stringify(result, null, 1));
  return result.disagreed > 0 ? 1 : 0;
}

process.exitCode = await main();
