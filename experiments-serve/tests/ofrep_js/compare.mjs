// What the JavaScript OFREP checks share (`check.mjs`, run by node with the server SDK, and
// `../ofrep_web/check.mjs`, bundled for a browser with the web SDK): the defaults, the getter
// of each case type, and the comparison of an OpenFeature evaluation with a plan's
// expectation (the plan's format: `xtask/src/ofrep_clients.rs`).

// Defaults no answer of the configs under test can equal (check.py's).
export const DEFAULTS = {
  string: '\u2063default\u2063',
  integer: -987654321987,
  float: -1.2345e-300,
  object: { '\u2063default': true },
};

// JavaScript has one number type: integers and floats are both asked with getNumberDetails.
export const METHODS = {
  string: 'getStringDetails',
  boolean: 'getBooleanDetails',
  integer: 'getNumberDetails',
  float: 'getNumberDetails',
  object: 'getObjectDetails',
};

/** JSON equality with JavaScript's types: numbers are one type (1 === 1.0), booleans apart. */
export function same(a, b) {
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

export function defaultFor(c, exp) {
  if (c.type === 'boolean') {
    // The opposite of the expected value: a silent default cannot pass for a value.
    return typeof exp.value === 'boolean' ? !exp.value : false;
  }
  return DEFAULTS[c.type];
}

export const show = (v) => (v === undefined ? 'undefined' : JSON.stringify(v));

/** What differs between an OpenFeature evaluation and the expectation (empty: agreed). */
export function checkDetails(exp, details, fallback) {
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
export function contextOf(c) {
  const context = { ...c.attributes };
  if (c.targeting_key !== null) context.targetingKey = c.targeting_key;
  return context;
}

/** A run's counters, in the RESULT format of `xtask/src/ofrep_clients.rs`. */
export class Tally {
  constructor(requests = {}) {
    this.agreed = 0;
    this.failures = [];
    this.byKind = {};
    this.skipped = {};
    this.requests = requests;
  }

  skip(why) {
    this.skipped[why] = (this.skipped[why] ?? 0) + 1;
  }

  /** One case: agreed under `kind` when there are no `problems`, else a failure. */
  record(kind, label, problems) {
    if (problems.length > 0) {
      this.failures.push(`${label}: ${problems.join('; ')}`);
    } else {
      this.agreed += 1;
      this.byKind[kind] = (this.byKind[kind] ?? 0) + 1;
    }
  }

  result(client) {
    return {
      agreed: this.agreed,
      disagreed: this.failures.length,
      by_kind: this.byKind,
      requests: this.requests,
      failures: this.failures,
      skipped: this.skipped,
      client,
    };
  }
}
