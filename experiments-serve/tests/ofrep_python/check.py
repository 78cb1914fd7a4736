#!/usr/bin/env python3
"""Interop check of `experiments serve` with OFREP clients nobody here wrote: the OpenFeature
Python SDK (`openfeature-sdk==0.10.0`) with the OFREP provider from PyPI
(`openfeature-provider-ofrep==0.3.0`), plus raw `requests` calls for what the provider does
not do (bulk evaluation, ETag / If-None-Match, 401).

Driven by `cargo xtask ofrep-python`, which starts the servers and computes every expected
answer by evaluating the engines directly in Rust. Usage:

    check.py PLAN.json RESULT.json

PLAN: {"groups": [{"name", "url", "headers": {..}|null, "cases": [CASE...]}],
       "raw": [RAW...]}
CASE: {"id", "flag", "type": "string"|"boolean"|"integer"|"float"|"object",
       "targeting_key": str|null, "attributes": {..}, "expect": EXPECT}
EXPECT: {"error": null|"FLAG_NOT_FOUND"|..., "value"?: V (absent: no value, the default
         applies), "variant": str|null, "reasons": [REASON...]}
RAW: {"kind": "bulk", "url", "headers", "context", "other_context", "keys": [..],
      "expect": {flag: EXPECT}}
   | {"kind": "unauthorized", "url", "context"}

RESULT: {"agreed", "disagreed", "requests": {url: HTTP requests made}, "failures": [...]}
"""

import json
import sys

import requests
from openfeature import api
from openfeature.contrib.provider.ofrep import OFREPProvider
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode

# Defaults no answer of the configs under test can equal.
DEFAULTS = {
    "string": "\u2063default\u2063",
    "integer": -987654321987,
    "float": -1.2345e-300,
    "object": {"\u2063default": True},
}

METHODS = {
    "string": "get_string_details",
    "boolean": "get_boolean_details",
    "integer": "get_integer_details",
    "float": "get_float_details",
    "object": "get_object_details",
}


def same(a, b):
    """JSON equality that keeps Python's types apart (1 != 1.0 != True)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return a == b


def default_for(case):
    if case["type"] == "boolean":
        # The opposite of the expected value: a silent default cannot pass for a value.
        value = case["expect"].get("value")
        return not value if isinstance(value, bool) else False
    return DEFAULTS[case["type"]]


def check_details(case, details, default):
    """What differs between an OpenFeature evaluation and the expectation (empty: agreed)."""
    exp = case["expect"]
    problems = []
    got_error = details.error_code.value if details.error_code is not None else None
    if got_error != exp["error"]:
        problems.append(f"error_code {got_error!r} ({details.error_message}), "
                        f"expected {exp['error']!r}")
        return problems
    if exp["error"] is not None:
        if not same(details.value, default):
            problems.append(f"value {details.value!r} on an error, expected the default")
        if str(details.reason) != "ERROR":
            problems.append(f"reason {details.reason!r} on an error")
        return problems
    if "value" in exp:
        if not same(details.value, exp["value"]):
            problems.append(f"value {details.value!r}, expected {exp['value']!r}")
    elif not same(details.value, default):
        problems.append(f"value {details.value!r}, expected the caller's default (no value)")
    if details.variant != exp["variant"]:
        problems.append(f"variant {details.variant!r}, expected {exp['variant']!r}")
    if str(details.reason) not in exp["reasons"]:
        problems.append(f"reason {details.reason!r}, expected one of {exp['reasons']}")
    if "config_version" not in (details.flag_metadata or {}):
        problems.append(f"metadata {details.flag_metadata!r} without config_version")
    return problems


def context_of(case):
    return EvaluationContext(targeting_key=case["targeting_key"],
                             attributes=case["attributes"])


def headers_factory(headers):
    if not headers:
        return None
    return lambda: dict(headers)


def check_bulk_item(item, exp):
    """What differs between one flag of a bulk answer and the expectation."""
    if exp["error"] is not None:
        if item.get("errorCode") != exp["error"]:
            return [f"bulk item {item!r}, expected error {exp['error']}"]
        return []
    problems = []
    if "errorCode" in item:
        return [f"bulk item {item!r}, expected no error"]
    if "value" in exp:
        if "value" not in item or not same(item["value"], exp["value"]):
            problems.append(f"bulk value {item.get('value')!r}, expected {exp['value']!r}")
    elif "value" in item:
        problems.append(f"bulk value {item['value']!r}, expected none")
    if item.get("variant") != exp["variant"]:
        problems.append(f"bulk variant {item.get('variant')!r}, expected {exp['variant']!r}")
    if item.get("reason") not in exp["reasons"]:
        problems.append(f"bulk reason {item.get('reason')!r}, expected one of {exp['reasons']}")
    return problems


def run_raw(raw, count):
    """The raw checks of one RAW entry: (checks passed, failures)."""
    url = raw["url"].rstrip("/") + "/ofrep/v1/evaluate/flags"
    headers = dict(raw.get("headers") or {})
    failures = []
    passed = 0

    def post(body, extra=None):
        count[raw["url"]] = count.get(raw["url"], 0) + 1
        return requests.post(url, json=body, headers={**headers, **(extra or {})}, timeout=10)

    if raw["kind"] == "unauthorized":
        r = post({"context": raw["context"]})
        if r.status_code == 401 and r.json().get("errorCode") == "GENERAL":
            passed += 1
        else:
            failures.append(f"unauthorized bulk: {r.status_code} {r.text[:200]}")
        return passed, failures

    label = f"bulk {raw['name']}"
    r = post({"context": raw["context"]})
    etag = r.headers.get("ETag")
    if r.status_code != 200 or not etag:
        return passed, [f"{label}: {r.status_code} ETag {etag!r} {r.text[:300]}"]
    flags = r.json().get("flags")
    keys = [f.get("key") for f in flags]
    if keys != raw["keys"]:
        failures.append(f"{label}: keys {keys[:10]}..., expected {raw['keys'][:10]}...")
    else:
        for item in flags:
            problems = check_bulk_item(item, raw["expect"][item["key"]])
            if problems:
                failures.append(f"{label} {item['key']}: {'; '.join(problems)}")
            else:
                passed += 1
    # The same context and config: 304 with the same tag, also for a weak tag or a list.
    for inm in [etag, "W/" + etag, '"nope", ' + etag]:
        r = post({"context": raw["context"]}, {"If-None-Match": inm})
        if r.status_code == 304 and r.headers.get("ETag") == etag and not r.content:
            passed += 1
        else:
            failures.append(f"{label}: If-None-Match {inm}: {r.status_code} "
                            f"ETag {r.headers.get('ETag')!r} {r.text[:200]}")
    # Another context: a full answer with another tag.
    r = post({"context": raw["other_context"]}, {"If-None-Match": etag})
    if r.status_code == 200 and r.headers.get("ETag") not in (None, etag):
        passed += 1
    else:
        failures.append(f"{label}: another context with the old tag: {r.status_code} "
                        f"ETag {r.headers.get('ETag')!r}")
    return passed, failures


def main():
    plan_path, result_path = sys.argv[1], sys.argv[2]
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    agreed, failures, count = 0, [], {}
    by_kind = {}
    for gi, group in enumerate(plan["groups"]):
        domain = f"group-{gi}"
        api.set_provider(OFREPProvider(group["url"],
                                       headers_factory=headers_factory(group["headers"])),
                         domain)
        client = api.get_client(domain)
        for case in group["cases"]:
            default = default_for(case)
            details = getattr(client, METHODS[case["type"]])(
                case["flag"], default, context_of(case))
            count[group["url"]] = count.get(group["url"], 0) + 1
            problems = check_details(case, details, default)
            if problems:
                failures.append(f"{group['name']} {case['id']} {case['flag']!r} "
                                f"({case['type']}): {'; '.join(problems)}")
            else:
                agreed += 1
                kind = case["expect"]["error"] or ("value" if "value" in case["expect"]
                                                   else "no value")
                by_kind[kind] = by_kind.get(kind, 0) + 1
    for raw in plan["raw"]:
        passed, raw_failures = run_raw(raw, count)
        agreed += passed
        by_kind["raw " + raw["kind"]] = by_kind.get("raw " + raw["kind"], 0) + passed
        failures.extend(raw_failures)
    api.shutdown()
    for line in failures[:30]:
        print("DISAGREE", line, file=sys.stderr)
    with open(result_path, "w", encoding="utf-8") as f:
        json.dump({"agreed": agreed, "disagreed": len(failures), "by_kind": by_kind,
                   "requests": count, "failures": failures}, f, ensure_ascii=False, indent=1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
