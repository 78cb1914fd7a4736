"""Records conformance vectors (format 1) from the real baseplate 1.5.5 on random configs.

A differential test generator: random, often deliberately broken experiments.json documents
and call sequences are replayed through `baseplate.lib.experiments.Experiments` exactly as
`../shared/conformance/README.md` describes its recorder (fresh object per request, fixed
time.time, a recording event logger), and written as vector files that
`cargo xtask conformance DIR` replays.

    python3 -m venv target/baseplate && target/baseplate/bin/pip install baseplate==1.5.5
    target/baseplate/bin/python xtask/reference/record_vectors.py OUT_DIR SEED FILES [sane]

`sane` draws mostly valid, running experiments (more real bucketing); without it the
generator favours broken configs and odd inputs.
"""
import json, random, sys, time, os, warnings, logging

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)

import baseplate.lib.experiments as bx
from baseplate.lib.experiments import Experiments

NOW = None


class FakeWatcher:
    def __init__(self, data):
        self.data = data

    def get_data(self):
        return self.data


class DummySpan:
    context = None
    trace_id = "0"


class Rec:
    def __init__(self):
        self.events = []

    def log(self, **kw):
        exp = kw["experiment"]
        e = {"class": type(exp).__name__}
        for a in ("id", "name", "owner", "version"):
            if hasattr(exp, a):
                e[a] = getattr(exp, a)
        self.events.append({
            "event_type": kw["event_type"].value,
            "variant": kw["variant"],
            "user_id": kw["user_id"], "logged_in": kw["logged_in"],
            "cookie_created_timestamp": kw["cookie_created_timestamp"], "app_name": kw["app_name"],
            "experiment": e, "inputs": kw["inputs"],
        })


R = random.Random(int(sys.argv[2]) if len(sys.argv) > 2 else 1)
SANE = len(sys.argv) > 4 and sys.argv[4] == "sane"

STRS = ["t2_abc", "t2_1", "", "IOS", "ios", "Android", "web", "ÉCOLE", "école", "İstanbul", "ß", "ΑΣ", "ǅ",
        "it's", 'say "hi"', "both'\"", "back\\slash", "tab\tx", "nl\nx", "\u00a0nbsp", "\u2028ls", "e\u0301",
        "🚀rocket", "\u200bzw", "\x7fdel", "\x01c", "ﬁ", "K", "US", "us", "CA", "moderator", "True", "None", "1",
        "\ud7ff", "\ue000pua", "\U000e0001tag", "x" * 70]
FLOATS = [0.0, -0.0, 1.0, 1.5, 0.1, 1e16, 1e-05, 1e-5 * 3, 5e-324, 1.7976931348623157e+308, 9007199254740992.0,
          123456789.125, -2.5, 1e22, 0.57, 2.0 ** 63, 1603017021.5]
INTS = [0, 1, -1, 7, 50, 1000, 2 ** 53 + 1, -(2 ** 63), 2 ** 63 - 1, 12345]


def rval(depth=0):
    k = R.random()
    if k < 0.35:
        return R.choice(STRS)
    if k < 0.5:
        return R.choice(INTS)
    if k < 0.62:
        return R.choice(FLOATS)
    if k < 0.72:
        return R.choice([True, False])
    if k < 0.78:
        return None
    if depth < 2 and k < 0.92:
        return [rval(depth + 1) for _ in range(R.randint(0, 3))]
    if depth < 2:
        return {R.choice(["k", "n", "K", "ü", "'q"]): rval(depth + 1) for _ in range(R.randint(0, 2))}
    return "leaf"


FIELDS = ["user_id", "logged_in", "app_name", "country", "num_votes", "is_mod", "device_id", "user_created",
          "subreddit", "user_roles", "missing"]


def rfield():
    f = R.choice(FIELDS)
    r = R.random()
    if r < 0.1:
        return f.upper()
    if r < 0.15:
        return f.title()
    return f


def rtree(depth=0):
    ops = ["ALL", "ANY", "NOT", "EQ", "NE", "GT", "GE", "LT", "LE", "OVERRIDE"]
    op = R.choice(ops if depth < 3 else ops[3:])
    if R.random() < 0.2:
        op = op.lower() if R.random() < 0.5 else op.title()
    lop = op.lower()
    if R.random() < 0.03:
        return R.choice([{}, {"BOGUS": 1}, [], "x", {"EQ": {"field": 5, "value": 1}}, {"NOT": []},
                         {"EQ": {"field": "a", "values": []}}, {"EQ": {"field": "a", "value": 1, "x": 2}}])
    if lop in ("all", "any"):
        return {op: [rtree(depth + 1) for _ in range(R.randint(0, 3))]}
    if lop == "not":
        return {op: rtree(depth + 1)}
    if lop == "override":
        return {op: R.choice([True, False, "true", 1])}
    if lop == "eq":
        if R.random() < 0.5:
            vals = R.choice([[rval() for _ in range(R.randint(1, 3))], "abcUS", {"US": 1, "ios": 2}, 5, True, []])
            node = {"field": rfield(), "values": vals}
            if vals in ([],) or R.random() < 0.1:
                node = {"field": rfield(), "values": vals}
        else:
            node = {"field": rfield(), "value": rval()}
        items = list(node.items())
        R.shuffle(items)
        return {op: dict(items)}
    return {op: {"field": rfield(), "value": R.choice([rval(), R.choice(INTS), R.choice(FLOATS), "m", [1, 2]])}}


def rsize():
    r = R.random()
    if r < 0.7:
        return R.choice([0.1, 0.2, 0.25, 0.3, 0.333, 0.5, 0.57, 0.0, 1.0, 0.05, 0.035, 0.3333333333333333]) if not SANE else R.choice([0.1, 0.2, 0.25, 0.3])
    return R.choice([True, False, -0.1, 1.5, 1, 0, 2, 1e308, -1e308, 0.9999999999999999, "0.1", None, [0.1]])


def rname(i):
    r = R.random()
    if r < 0.9:
        return R.choice(["control_1", "treatment", "a", "b", "c", "Active", "active", "ÄKTIV", "v2", "🚀", "x"]) + (
            "" if R.random() < 0.7 else str(i))
    return R.choice([None, 5, "", "MISSING"])


def rvariants_list(kind):
    n = {"single_variant": 2, "multi_variant": R.randint(3, 5), "feature_rollout": 1, "range_variant": R.randint(1, 4)}[kind]
    if R.random() < 0.08:
        n += R.choice([-1, 1])
    out = []
    start = 0.0
    for i in range(max(n, 0)):
        v = {}
        nm = rname(i)
        if nm != "MISSING":
            v["name"] = nm
        if kind == "range_variant":
            w = R.choice([0.1, 0.2, 0.25, 0.333, 0.5])
            v["range_start"] = round(start, 3) if R.random() < 0.9 else R.choice([0.9, 1e308, "0"])
            v["range_end"] = round(start + w, 3) if R.random() < 0.9 else R.choice([0.1, 1e308, 2])
            start += w
        else:
            s = rsize()
            if s is not None or R.random() < 0.5:
                v["size"] = s
        out.append(v)
    return out


def simple_block(kind):
    b = {"variants": rvariants_list(kind)}
    if R.random() < 0.95:
        b["experiment_version"] = R.choice([1, 2, 7, 0, "3", None, 1.0]) if R.random() < 0.2 else R.randint(1, 20)
    if R.random() < 0.8:
        b["shuffle_version"] = R.choice([0, 1, 2, 1.0, None, "s"])
    if R.random() < 0.3:
        b["bucket_val"] = R.choice(["user_id", "device_id", "Device_ID", "USER_ID", 5, None, "app_name"])
    if R.random() < 0.25:
        b["num_buckets"] = R.choice([1000, 100, 7, 1, 2 ** 40 + 15, 10 ** 6])
    if R.random() < 0.25:
        b["bucket_seed"] = R.choice(["seed", "", 12345, 1.5, True, "ßeed"])
    if R.random() < 0.2:
        b["log_bucketing"] = R.choice([True, False, "false", 0, "", None, 1])
    if R.random() < (0.3 if SANE else 0.6):
        b["targeting"] = R.choice([rtree(), rtree(), None])
    if R.random() < 0.4:
        ov = []
        for _ in range(R.randint(0, 3)):
            r = R.random()
            if r < 0.8:
                ov.append({R.choice(["treatment", "control_1", "forced_x", "", "a"]): R.choice([rtree(), None])})
            else:
                ov.append(R.choice(["junk", {}, {"a": None, "b": None}, 5]))
        b["overrides"] = ov if R.random() < 0.9 else R.choice([{"treatment": {"OVERRIDE": True}}, None, "x"])
    return b


def r2_block(flag):
    names = ["active"] if flag else R.sample(["control_1", "treatment", "Active", "active", "ÄKTIV", "b"], R.randint(1, 3))
    if flag and R.random() < 0.1:
        names.append("control_1")
    variants = {n: R.choice([10, 30, 40, 50, 100, 0.57, 33.4, 5, 0]) for n in names}
    if R.random() < 0.05:
        variants = R.choice([{}, ["active"], {"active": "10"}, {"active": 1e308}, None, {"active": True}])
    b = {"id": 1, "name": "x", "variants": variants}
    if R.random() < 0.8:
        t = {}
        for _ in range(R.randint(0, 3)):
            p = R.choice(["logged_in", "app_name", "Logged_In", "subreddit", "user_roles", "country"])
            t[p] = R.choice([[True, False], [True], ["ios", "Android"], ["Funny", "pics"], ["moderator"], [1], ["US"]])
        if R.random() < 0.2:
            t["__case_sensitive__"] = R.choice([["subreddit"], ["App_Name"], "subreddit", ["country", "subreddit"]])
        if R.random() < 0.05:
            t = R.choice([[["logged_in", [True]]], {"logged_in": True}, "ab", None, {}])
        b["targeting"] = t
    if R.random() < 0.5:
        o = {}
        for _ in range(R.randint(1, 2)):
            p = R.choice(["user_id", "app_name", "user_name", "User_ID"])
            o[p] = {R.choice(["t2_abc", "ios", "IOS", "Spez", "t2_1"]): R.choice(names + ["not_a_variant", None, 5])
                    for _ in range(R.randint(1, 3))}
        if R.random() < 0.2:
            o["__case_sensitive__"] = R.choice([["user_name"], ["User_Name"], "u"])
        b["overrides"] = o
    if R.random() < 0.2:
        b["seed"] = R.choice(["seed", "", 7, "Sééd"])
    if R.random() < 0.2:
        b["bucket_val"] = R.choice(["user_id", "device_id", "Device_ID", 5, None, ["x"]])
    if R.random() < 0.2:
        b["newer_than"] = R.choice([NOW - 1000, NOW + 1000, 0, "x", None])
    return b


def rexperiment(key):
    kind = R.choice(["r2", "feature_flag", "single_variant", "multi_variant", "feature_rollout", "range_variant"])
    c = {"id": R.randint(1, 99999), "name": key, "owner": R.choice(["growth", None, "t2_admin"]), "version": str(R.randint(0, 20))}
    t = kind
    r = R.random()
    if r < 0.1:
        t = t.upper()
    elif r < 0.13:
        t = R.choice(["unknown", "", 7, None, "dynamic_config"])
    if t is not None:
        c["type"] = t
    if SANE and R.random() < 0.9:
        c["start_ts"] = NOW - 1000
        c["stop_ts"] = NOW + 1000
    elif R.random() < 0.85:
        c["start_ts"] = R.choice([NOW - 1e6, NOW - 10, NOW, NOW + 100, int(NOW) - 100, int(NOW)])
        c["stop_ts"] = R.choice([NOW + 1e6, NOW + 10, NOW, NOW - 100, int(NOW) + 1000])
    else:
        c["expires"] = R.choice(["2099-12-31", "2030-6-5", "1999-01-01", "12/31/2099", "2041-02-29", "2030-01- 5",
                                 "2030-1-15", "2030-10-5", "２０３０-01-01"])
        if R.random() < 0.5:
            c["start_ts"] = NOW - 10
    if R.random() < (0.05 if SANE else 0.4):
        c["enabled"] = R.choice([True, True, False, "false", 0, None, 1])
    if R.random() < 0.06:
        c["global_override"] = R.choice(["treatment", None, "x", ""])
    if R.random() < 0.04:
        c["id"] = R.choice([5.0, "5", True, None])
    if R.random() < 0.03:
        c["name"] = R.choice([None, 5, ""])
    if R.random() < 0.03:
        c["start_ts"] = R.choice(["x", None, [1]])
    if R.random() < 0.02:
        del c["version"]
    if kind in ("r2", "feature_flag"):
        blk = r2_block(kind == "feature_flag")
    else:
        blk = simple_block(kind)
    if R.random() < 0.97:
        c["experiment"] = blk
    return c


def rinputs(keys):
    inp = {}
    if R.random() < 0.9:
        k = "user_id" if R.random() < 0.85 else R.choice(["User_ID", "USER_ID"])
        inp[k] = R.choice(["t2_" + str(R.randint(0, 10 ** 6)), "t2_" + str(R.randint(0, 10 ** 6))] * 4 + [rval()])
        if SANE and R.random() < 0.5:
            inp["logged_in"] = True
    for _ in range(R.randint(0, 5)):
        f = rfield()
        if f in ("name",):
            continue
        inp[f] = rval() if R.random() < 0.5 else R.choice([True, False, "ios", "US", 7, 100, "moderator", ["moderator"], NOW - 10])
    if R.random() < 0.1:
        inp["device_id"] = R.choice(["dev-1", "", 0])
    items = list(inp.items())
    R.shuffle(items)
    return dict(items)


def main():
    global NOW
    out_dir = sys.argv[1]
    seed = int(sys.argv[2])
    nfiles = int(sys.argv[3])
    os.makedirs(out_dir, exist_ok=True)
    for fi in range(nfiles):
        NOW = R.choice([1603017021.144623, 1754323618.0, 1700000000.5])
        keys = [f"exp_{i}" for i in range(R.randint(5, 25))]
        config = {k: rexperiment(k) for k in keys}
        if R.random() < 0.3:
            # alias: key differs from name
            config["alias_x"] = dict(config[keys[0]])
        config = json.loads(json.dumps(config))
        orig_time = time.time
        time.time = lambda: NOW
        import baseplate.lib.experiments.providers as prov
        import baseplate.lib.experiments.providers.simple_experiment as se
        prov.time.time = lambda: NOW
        se.time.time = lambda: NOW
        requests = []
        pending = []
        for _ in range(R.randint(20, 60)):
            calls = []
            for _ in range(R.randint(1, 8)):
                r = R.random()
                key = R.choice(list(config.keys()) + ["nope"]) if R.random() < 0.97 else ""
                if r < 0.7:
                    calls.append({"op": "variant", "experiment": key, "inputs": rinputs(keys),
                                  "bucketing_event_override": R.choice([None, None, None, False, True])})
                    if R.random() < 0.3:
                        calls.append(dict(calls[-1]))
                elif r < 0.85:
                    calls.append({"op": "expose", "experiment": key,
                                  "variant": R.choice(["treatment", None, "", "x"]), "inputs": rinputs(keys)})
                elif r < 0.9:
                    calls.append({"op": "names"})
                else:
                    calls.append({"op": "is_valid", "experiment": key})
            pending.append(calls)
        while pending:
            calls = pending.pop(0)
            rec = Rec()
            client = Experiments(config_watcher=FakeWatcher(config), server_span=DummySpan(), context_name="x",
                                 cfg_data=None, global_cache={}, event_logger=rec)
            done = []
            for i, call in enumerate(calls):
                call = json.loads(json.dumps(call))
                rec.events = []
                op = call["op"]
                try:
                    if op == "variant":
                        v = client.variant(experiment_name=call["experiment"],
                                           bucketing_event_override=call["bucketing_event_override"], **call["inputs"])
                        call["expect"] = {"variant": v, "events": rec.events}
                    elif op == "expose":
                        client.expose(call["experiment"], call["variant"], **call["inputs"])
                        call["expect"] = {"events": rec.events}
                    elif op == "names":
                        call["expect"] = client.get_all_experiment_names()
                    else:
                        call["expect"] = client.is_valid_experiment(call["experiment"])
                except Exception as e:  # noqa
                    assert not rec.events
                    call["expect"] = {"python_error": f"{type(e).__name__}: {e}"}
                    done.append(call)
                    if calls[i + 1:]:
                        pending.insert(0, calls[i + 1:])
                    break
                done.append(call)
            requests.append({"calls": done})
        time.time = orig_time
        doc = {"format": 1, "generator": {"split": "fuzz", "seed": seed, "file_index": fi}, "now": NOW,
               "config": config, "requests": requests}
        with open(os.path.join(out_dir, f"fuzz_{seed}_{fi:03d}.json"), "w") as f:
            json.dump(doc, f, ensure_ascii=False, allow_nan=False)


main()
