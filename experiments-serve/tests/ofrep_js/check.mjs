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

// Defaults no answer of the configs under test can equal (check.py's).
const DEFAULTS = {
  string: '\u2063default\u2063',
  integer: -987654321987,
  float: -1.2345e-300,
  object: { '\u2063default': true },
};

// JavaScript has one number type: integers and floats are both asked with getNumberDetails.
const METHODS = {
  string: 'getStringDetails',
  boolean: 'getBooleanDetails',
  integer: 'getNumberDetails',
  float: 'getNumberDetails',
  object: 'getObjectDetails',
};

// What ofrep-core 0.1.4 throws for a 200 without `value` (`isEvaluationSuccessResponse`).
const UNEXPECTED_FORMAT = 'The OFREP response does not match the expected format';

/** JSON equality with JavaScript's types: numbers are one type (1 === 1.0), booleans apart. */
function same(a, b) {
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b)) return false;
  if (a === null || b === null) return a === b;
  if (Array.isArray(a)) return a.length === b.length && a.every((x, i) => same(x, b[i]));
  if (typeof a === 'object') {
    const keys = Object.keys(a);
    return (
      keys.length === Object.keys(b).length &&
      keys.every((k) => Object.hasOwn(b, k) && same(a[k], b[k]))
    );
  }
  return a === b;
}

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

function defaultFor(c, exp) {
  if (c.type === 'boolean') {
    // The opposite of the expected value: a silent default cannot pass for a value.
    return typeof exp.value === 'boolean' ? !exp.value : false;
  }
  return DEFAULTS[c.type];
}

const show = (v) => (v === undefined ? 'undefined' : JSON.stringify(v));

/** What differs between an OpenFeature evaluation and the expectation (empty: agreed). */
function checkDetails(exp, details, fallback) {
  const problems = [];
  const gotError = details.errorCode ?? null;
  if (gotError !== exp.error) {
    problems.push(`errorCode ${show(gotError)} (${details.errorMessage}), expected ${show(exp.error)}`);
    return problems;
  }
  if (exp.error !== null) {
    if (!same(details.value, fallback)) {
      problems.push(`value ${show(details.value)} on an error, expected the default`);
    }
    if (details.reason !== 'ERROR') problems.push(`reason ${show(details.reason)} on an error`);
    if (exp.message !== undefined && details.errorMessage !== exp.message) {
      problems.push(`errorMessage ${show(details.errorMessage)}, expected ${show(exp.message)}`);
    }
    return problems;
  }
  if ('value' in exp) {
    if (!same(details.value, exp.value)) {
      problems.push(`value ${show(details.value)}, expected ${show(exp.value)}`);
    }
  } else if (!same(details.value, fallback)) {
    problems.push(`value ${show(details.value)}, expected the caller's default (no value)`);
  }
  // Strict: `null` is not `undefined` (a missing `variant` member would be the latter).
  if (details.variant !== exp.variant) {
    problems.push(`variant ${show(details.variant)}, expected ${show(exp.variant)}`);
  }
  if (!exp.reasons.includes(details.reason)) {
    problems.push(`reason ${show(details.reason)}, expected one of ${show(exp.reasons)}`);
  }
  if (!Object.hasOwn(details.flagMetadata ?? {}, 'config_version')) {
    problems.push(`metadata ${show(details.flagMetadata)} without config_version`);
  }
  return problems;
}

/** The evaluation context of a case: its attributes and, unless null, its targeting key. */
function contextOf(c) {
  const context = { ...c.attributes };
  if (c.targeting_key !== null) context.targetingKey = c.targeting_key;
  return context;
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
  let agreed = 0;
  const failures = [];
  const requests = {};
  const byKind = {};
  const skipped = {};
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
        skipped[skip] = (skipped[skip] ?? 0) + 1;
        continue;
      }
      const fallback = defaultFor(c, exp);
      const details = await client[METHODS[c.type]](c.flag, fallback, contextOf(c));
      requests[group.url] = (requests[group.url] ?? 0) + 1;
      const problems = checkDetails(exp, details, fallback);
      if (problems.length > 0) {
        failures.push(`${group.name} ${c.id} ${show(c.flag)} (${c.type}): ${problems.join('; ')}`);
      } else {
        agreed += 1;
        byKind[kind] = (byKind[kind] ?? 0) + 1;
      }
    }
  }
  await OpenFeature.close();
  for (const line of failures.slice(0, 30)) console.error('DISAGREE', line);
  const result = {
    agreed,
    disagreed: failures.length,
    by_kind: byKind,
    requests,
    failures,
    skipped,
    client: `node ${process.version}, ${versions()}`,
  };
  writeFileSync(resultPath, JSON.stringify(result, null, 1));
  return failures.length > 0 ? 1 : 0;
}

process.exitCode = await main();
