#!/usr/bin/env python3
"""Regenerates the committed seed corpora (fuzz/corpus/<target>/) and the fixed config of
`inputs_json` (fuzz/fixtures/inputs_config.json) from the shared vectors.

    python3 fuzz/make_corpus.py [../shared]

Deterministic: the same vectors give the same files. Keeps every corpus small (a few dozen
files, well under 2 MB in all); the fuzzer grows its runtime corpus elsewhere
(target/fuzz-corpus/<target>, see `cargo xtask fuzz`).
"""

import glob
import hashlib
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "..", "..", "shared"))
CONF = sorted(glob.glob(os.path.join(SHARED, "conformance", "vectors", "*.json")))
DECIDER = sorted(glob.glob(os.path.join(SHARED, "decider", "vectors", "*.json")))
BENCH = os.path.join(SHARED, "bench")

# Far in the past and far in the future: every window of the fixed config contains NOW.
NOW = 1_700_000_000
STOP = 4_102_444_800


def load(path):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def dump(value):
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def reset(target):
    d = os.path.join(HERE, "corpus", target)
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    return d


def write(d, name, data):
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def shape(entry):
    """What makes an experiment entry different for the parser."""
    if not isinstance(entry, dict):
        return ("not-an-object",)
    text = json.dumps(entry)
    return (str(entry.get("type")), "targeting" in text, "overrides" in text, "global_override" in entry)


def stem(path):
    return os.path.splitext(os.path.basename(path))[0]


def config_parse():
    d = reset("config_parse")
    for path in CONF[:6] + [CONF[12]]:  # one file of each theme, plus one "edge" file
        write(d, "doc_" + stem(path), dump(load(path)["config"]))
    write(d, "bench_experiments", open(os.path.join(BENCH, "experiments.json"), "rb").read())
    write(d, "empty_object", b"{}")
    seen, n = set(), 0
    for path in CONF:  # at most one new shape per file, so every theme contributes
        for key, entry in load(path)["config"].items():
            s = shape(entry)
            if s not in seen and n < 36:
                seen.add(s)
                n += 1
                write(d, f"one_{n:02}_{stem(path)[7:]}", dump({key: entry}))
                break


def fixed_config():
    """One valid experiment per (type, targeting, overrides) of the baseplate types, their
    windows widened to contain NOW, plus the shared bench experiments."""
    wanted = ["r2", "feature_flag", "single_variant", "multi_variant", "feature_rollout", "range_variant"]
    out, seen = {}, set()
    for path in CONF:
        for key, e in load(path)["config"].items():
            if not isinstance(e, dict) or e.get("type") not in wanted or e.get("enabled") is False:
                continue
            text = json.dumps(e)
            s = (e["type"], "targeting" in text, "overrides" in text)
            if s in seen or "global_override" in e or len(text) > 1500:
                continue
            seen.add(s)
            e = dict(e)
            e["start_ts"], e["stop_ts"] = 0, STOP
            e.pop("expires", None)
            out[key] = e
    out.update(load(os.path.join(BENCH, "experiments.json")))
    os.makedirs(os.path.join(HERE, "fixtures"), exist_ok=True)
    with open(os.path.join(HERE, "fixtures", "inputs_config.json"), "w", encoding="utf-8") as f:
        json.dump(out, f, ensure_ascii=False, indent=1)
        f.write("\n")


def inputs_json():
    d = reset("inputs_json")
    write(d, "empty_object", b"{}")
    write(d, "bench_b", dump({"user_id": "t2_6bk4ux", "logged_in": True, "app_name": "ios",
                              "country": "US", "is_employee": False, "num_votes": 7,
                              "account_age_days": 120, "device_id": "dev-7"}))
    n = 0
    for path in CONF:  # the first distinct inputs object of each file
        calls = [c for r in load(path)["requests"] for c in r.get("calls", [])]
        inputs = [c["inputs"] for c in calls if isinstance(c.get("inputs"), dict)]
        if inputs and n < 30:
            n += 1
            write(d, f"req_{n:02}_{stem(path)[7:]}", dump(inputs[(n * 7) % len(inputs)]))


def parents(config, key):
    """`key` and the entries its parent links reach (by config key), document order."""
    todo, keep = [key], set()
    while todo:
        k = todo.pop()
        if k in keep or k not in config:
            continue
        keep.add(k)
        e = config[k]
        if isinstance(e, dict):
            todo += [e[p] for p in ("parent_hg_name", "parent_meg_name") if isinstance(e.get(p), str)]
    return {k: v for k, v in config.items() if k in keep}


def decider_load():
    d = reset("decider_load")
    contexts = []
    for path in DECIDER:
        for call in load(path)["core_calls"]:
            ctx = call.get("context")
            if isinstance(ctx, dict) and ctx not in contexts:
                contexts.append(ctx)
    contexts.sort(key=lambda c: hashlib.sha1(dump(c)).hexdigest())
    pick = lambda i: dump(contexts[i % len(contexts)])
    i = 0
    for path in [p for p in DECIDER if len(dump(load(p)["config"])) < 12_000][::3]:
        write(d, "doc_" + stem(path), dump(load(path)["config"]) + b"\0" + pick(i))
        i += 1
    bench = open(os.path.join(BENCH, "decider.json"), "rb").read()
    write(d, "bench_decider", bench + b"\0" + dump({"user_id": "t2_abc", "app_name": "ios", "build_number": 3}))
    write(d, "manifest_only", b"{}")
    seen, n = set(), 0
    for path in DECIDER:
        config = load(path)["config"]
        extra = {k: v for k, v in config.items() if k.startswith("$")}
        for key, entry in config.items():
            s = shape(entry) + (isinstance(entry, dict) and "parent_hg_name" in entry,
                                isinstance(entry, dict) and "parent_meg_name" in entry, key[:1] == "$")
            if s in seen or n >= 30:
                continue
            seen.add(s)
            n += 1
            doc = dict(extra)
            doc.update(parents(config, key))
            write(d, f"one_{n:02}_{stem(path)}", dump(doc) + b"\0" + pick(i))
            i += 1
            break  # at most one per file, so every theme contributes


if __name__ == "__main__":
    config_parse()
    fixed_config()
    inputs_json()
    decider_load()
    for t in ("config_parse", "inputs_json", "decider_load"):
        files = glob.glob(os.path.join(HERE, "corpus", t, "*"))
        print(f"{t}: {len(files)} files, {sum(os.path.getsize(f) for f in files)} bytes")
