// Interop check of `experiments serve` with an OFREP client nobody here wrote, in a browser:
// the OpenFeature web SDK (`@openfeature/web-sdk@1.10.0`) with its OFREP web provider
// (`@openfeature/ofrep-web-provider@0.4.3` over `@openfeature/ofrep-core@2.3.0`), which
// evaluates from bulk answers (`POST /ofrep/v1/evaluate/flags`, `ETag`) fetched whenever the
// context changes, across origins (CORS).
//
// Driven by `cargo xtask ofrep-web --node-dir DIR --chromium PATH`, which bundles this file
// with esbuild, serves it with the plan (`plan.json`: `xtask/src/ofrep_clients.rs`) from its
// own origin, starts the servers allowing that origin, and loads the page in headless
// Chromium. The page posts its result to `/result` on its origin. Loaded with
// `?refused=URL` (from another origin, which the servers do not allow), it instead checks
// that the browser refuses the provider the server's answers and posts to `/refused`.
//
// The comparison is `../ofrep_js/compare.mjs`'s, as strict as check.py's, except where this
// provider legitimately answers otherwise; each such place is in `expectationFor` with its
// reason, nowhere else.

import { OpenFeature } from '@openfeature/web-sdk';
import { OFREPWebProvider } from '@openfeature/ofrep-web-provider';

import {
  METHODS,
  Tally,
  checkDetails,
  contextOf,
  defaultFor,
  show,
} from '../ofrep_js/compare.mjs';

// Bulk requests made, by server URL, counted as the provider makes them (preflights, which
// the browser makes itself, are counted by the server's metrics).
const requests = {};
const pageFetch = window.fetch.bind(window);
window.fetch = (input, init) => {
  const url = String(input instanceof Request ? input.url : input);
  const base = url.split('/ofrep/v1/')[0];
  requests[base] = (requests[base] ?? 0) + 1;
  return pageFetch(input, init);
};

/**
 * The answer this client should give for a case (`first`: the first of its group, which
 * starts the provider; `keys`: the flags of the server's config), or why it cannot be asked.
 * Where the plan's `expect` (what the protocol means, and what the Python client gives) is
 * not this client's answer, the difference is the provider's own and stated here.
 */
function expectationFor(c, first, keys) {
  if (c.needs_number_types) {
    // One number type, a double: an integer beyond 2^53 in the context or the answer would
    // be rounded (and so would an integral float that large, sent as an integer).
    return { skip: 'a number beyond 2^53, which JavaScript rounds' };
  }
  if (c.unauthorized) {
    // The bulk request is refused (401): the provider's start fails for good (the SDK's
    // PROVIDER_FATAL), and each later context change is refused again, leaving it no flags
    // (FLAG_NOT_FOUND). The caller's default applies either way.
    const error = first ? 'PROVIDER_FATAL' : 'FLAG_NOT_FOUND';
    return { exp: { error, variant: null, reasons: ['ERROR'] }, kind: `401 (${error})` };
  }
  if (c.targeting_key !== null && typeof c.targeting_key !== 'string' && !first) {
    // The server refuses such a context as a whole (400 INVALID_CONTEXT, as check.py sees
    // on single evaluations). The provider does not report it: its context change resolves
    // and it keeps serving the previous context's flags, unchanged.
    return { keepsPrevious: true, kind: 'refused context: previous flags kept' };
  }
  if (!keys.includes(c.flag)) {
    // A bulk answer holds the config's flags only: the provider answers FLAG_NOT_FOUND for
    // any other, whatever a single evaluation would have refused first (a context that does
    // not convert is INVALID_CONTEXT there, before the lookup).
    const exp = { error: 'FLAG_NOT_FOUND', variant: null, reasons: ['ERROR'] };
    return { exp, kind: 'FLAG_NOT_FOUND' };
  }
  // One number type, as for the JavaScript server SDK (see ../ofrep_js/check.mjs).
  const exp = c.expect_one_number_type ?? c.expect;
  return { exp, kind: exp.error ?? ('value' in exp ? 'value' : 'no value') };
}

async function post(path, body) {
  await pageFetch(path, { method: 'POST', body: JSON.stringify(body) });
}

async function check(plan) {
  const tally = new Tally(requests);
  for (const [gi, group] of plan.groups.entries()) {
    const domain = `group-${gi}`;
    const provider = new OFREPWebProvider({
      baseUrl: group.url,
      // As a list of pairs: ofrep-core 2.3.0's `buildHeaders` iterates what it is given.
      headers: Object.entries(group.headers ?? {}),
      cacheMode: 'disabled',
      disableVisibilityRefresh: true,
      pollInterval: 0,
    });
    const client = OpenFeature.getClient(domain);
    let ready = false;
    for (const c of group.cases) {
      const { exp, kind, skip, keepsPrevious } = expectationFor(c, !ready, group.keys);
      if (skip) {
        tally.skip(skip);
        continue;
      }
      const context = contextOf(c);
      if (keepsPrevious) {
        const fallback = defaultFor(c, {});
        const before = client[METHODS[c.type]](c.flag, fallback);
        await OpenFeature.setContext(domain, context);
        const after = client[METHODS[c.type]](c.flag, fallback);
        const fields = ['value', 'variant', 'reason', 'errorCode'];
        const changed = fields.filter((f) => show(before[f]) !== show(after[f]));
        const label = `${group.name} ${c.id} ${show(c.flag)}: after a refused context`;
        const problems = changed.map((f) => `${f} ${show(after[f])} (was ${show(before[f])})`);
        tally.record(kind, label, problems);
        continue;
      }
      // A refused bulk request fails the context change (or the provider's start).
      let changeError = null;
      try {
        if (!ready) {
          ready = true;
          await OpenFeature.setContext(domain, context);
          await OpenFeature.setProviderAndWait(domain, provider);
        } else {
          await OpenFeature.setContext(domain, context);
        }
      } catch (e) {
        changeError = String(e);
      }
      const fallback = defaultFor(c, exp);
      const details = client[METHODS[c.type]](c.flag, fallback);
      const problems = checkDetails(exp, details, fallback);
      if (problems.length > 0) {
        problems.push(`got ${show(details.value)}, reason ${show(details.reason)}`);
        if (changeError !== null) problems.push(`context change: ${changeError}`);
      }
      tally.record(kind, `${group.name} ${c.id} ${show(c.flag)} (${c.type})`, problems);
    }
  }
  await OpenFeature.close();
  return tally.result(navigator.userAgent);
}

/** From an origin the server does not allow: the provider must not get the answers. */
async function refused(url) {
  const provider = new OFREPWebProvider({ baseUrl: url, cacheMode: 'disabled', pollInterval: 0 });
  await OpenFeature.setContext('refused', { targetingKey: 't2_1' });
  try {
    await OpenFeature.setProviderAndWait('refused', provider);
    return { refused: false, error: null, requests };
  } catch (e) {
    return { refused: true, error: String(e), requests };
  }
}

async function main() {
  const params = new URLSearchParams(location.search);
  const refusedUrl = params.get('refused');
  try {
    if (refusedUrl) {
      await post('/refused', await refused(refusedUrl));
    } else {
      const plan = await (await pageFetch('plan.json')).json();
      await post('/result', await check(plan));
    }
  } catch (e) {
    await post(refusedUrl ? '/refused' : '/result', { error: String(e?.stack ?? e) });
  }
  document.title = 'done';
}

main();
