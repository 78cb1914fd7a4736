"""Records reddit-decider conformance vectors (format 1) from the real reddit-decider 1.18.2.

A differential test generator for the decider dialect, the sibling of `record_vectors.py`:
random but realistic decider documents (range/rollout features, holdout and MEG parents,
dynamic configs, targeting, overrides, `$override_groups`, independently broken entries) and
random core calls are run through the real `rust_decider` extension, and written exactly in
the layout of `../shared/decider/README.md`, so `cargo xtask conformance OUT_DIR` replays them.

    python3 -m venv target/decider-ref && target/decider-ref/bin/pip install reddit-decider==1.18.2
    target/decider-ref/bin/python xtask/reference/record_decider_vectors.py OUT_DIR SEED N_FILES [theme]

Writes `OUT_DIR/NN_<theme>.json`. Without `theme`, files cycle through THEMES (12 files cover each once).
The `edge` theme (and, rarely, every theme through `edge()`) draws from the EDGE pools: range ends on the f32
rounding boundaries of the buckets of the identifiers the contexts use, 17-digit floats (which serde_json
without float_roundtrip reads 1-2 ULPs off), ids/timestamps/versions at their limits, odd `version`
strings, numeric strings, long (multi-block SHA-1) and unicode strings, odd operand shapes, `$none`-like
override names, duplicate variant names, `$`-keys, odd `$override_groups` keys (incl. PREQ references),
disabled parents, and raw-text corners (number spellings, serde's recursion limit, duplicate keys). The output is byte for
byte the same for a seed (event timestamps and random UUIDs are recorded as placeholders).
`requests` stays empty: the wrapper package (reddit-experiments) is not used. The generator
never produces the two inputs that crash the reference (a DC whose value is a JSON array, and
parent cycles), nor NaN/Infinity.
"""
import copy, hashlib, json, logging, math, os, random, re, struct, sys, tempfile, time, uuid, warnings

warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)  # the public Decider logs partial loads

import rust_decider
from rust_decider import Exposer
from rust_decider.rust_decider import Decider as RawDecider  # raises PartialLoadException

assert rust_decider.version() == "1.18.2", rust_decider.version()
PACKAGES = {"reddit-decider": "1.18.2", "reddit-experiments": "-", "rust_decider.version()": rust_decider.version()}
THEMES = ["basic", "rollout", "targeting", "overrides", "holdout", "meg", "dynamic_config", "context",
          "identifiers", "broken", "mixed", "edge"]
# knobs: entries, DC / holdout / MEG share, targeting / override probability, broken entry probability,
# mistyped context probability, probability of an unusual bucket_val, probability of each edge-case hook
# (the EDGE pools below: boundary ranges, limits, numeric strings, long/unicode strings, odd operands)
KNOBS = dict(n=(8, 22), dc=0.2, hg=0.1, meg=0.1, tgt=0.35, ovr=0.3, broken=0.08, badctx=0.05, oddbv=0.15, edge=0.03)
THEME_KNOBS = {"rollout": dict(tgt=0.15, ovr=0.1), "targeting": dict(tgt=0.85), "overrides": dict(ovr=0.85),
               "holdout": dict(hg=0.3), "meg": dict(meg=0.3, hg=0.15), "dynamic_config": dict(dc=0.55),
               "context": dict(badctx=0.2), "identifiers": dict(oddbv=0.6), "broken": dict(broken=0.35),
               "mixed": dict(hg=0.15, meg=0.15, tgt=0.5, ovr=0.5, broken=0.15, badctx=0.1, edge=0.1),
               "edge": dict(hg=0.17, meg=0.15, tgt=0.5, ovr=0.5, broken=0.05, badctx=0.08, oddbv=0.3, edge=0.35)}
R = random.Random(1)
K = dict(KNOBS)

TYPED_STR = ["user_id", "locale", "country_code", "device_id", "canonical_url", "base_url", "user_agent", "referrer_url",
             "subreddit_id", "ad_account_id", "business_id", "origin_service", "app_name", "oauth_client_id", "correlation_id"]
TYPED_OTHER = ["user_is_employee", "logged_in", "build_number", "cookie_created_timestamp"]
OTHER = ["conversion_pixel_id", "account_id", "num_votes", "score", "cohort", "plan", "is_mod", "Is_Mod", "karma",
         "app_version", "account_age_days"]
UNKNOWN = ["nonexistent", "User_Id", "", "other_fields", "loid_created_timestamp", "Country_Code", "user_id "]
URLS = ["https://www.reddit.com/r/pics/comments/1", "https://new.reddit.com/", "https://www.reddit.com/r/ÉCOLE/", "",
        "https://www.reddit.com/r/rust/"]
FIELD_VALUES = {
    "locale": ["en", "en_US", "de_DE", "EN_us", "fr_FR"], "country_code": ["US", "us", "Us", "CA", "GB", "DE", "IN"],
    "canonical_url": URLS, "base_url": URLS, "referrer_url": URLS,
    "user_agent": ["Mozilla/5.0", "curl/8.0", "Reddit/2024.10 iOS", ""],
    "origin_service": ["web", "Web", "graphql", "svc-feeds"], "app_name": ["ios", "IOS", "android", "android ", "web"],
    "oauth_client_id": ["client_abc", "client_xyz", "ÄÖÜ_client"], "logged_in": [True, False],
    "user_is_employee": [True, False], "build_number": [0, -5, 2024001, 307593, 2147483647, -2147483648, True],
    "cookie_created_timestamp": [0, 1, 1600000000000, 1700000000123, 2 ** 63 - 1, -(2 ** 63), False],
    "num_votes": [0, 5, 5.0, "5", "10", 10, 4.5, -1, 2 ** 63 - 1, "1e3", True, 2 ** 64],
    "score": [0.3, 0.30000000000000004, 0.3000000000000003, 0.2, "0.3", 1e16, 10000000000000002.0, 0, 5e-324, 1e-300,
              1e-07, 123456789.125, 1.5e300, -0.0, 9.223372036854776e18, 9007199254740992.0, -2.5],
    "karma": [0, 12345, 12345.5, "inf", "NaN", -(2 ** 63), 1e21, "-0"],
    "account_age_days": [0, 29.9, 30, 365, "365", 3650, " 5", "0x10", "1_000"],
    "is_mod": [True, False, 0, 1, "true"], "Is_Mod": [True, False, 1, "True"], "cohort": ["A", "B", 1, True, 1.0],
    "plan": ["premium", "Premium", "gold", None], "app_version": ["10", "10.0", "9.9", "2024.10.1", 10, 10.0, True],
}
MIXED = ["10", "1e3", "inf", "NaN", "-0", " 5", "0x10", "1_000", "+5", ".5", "5.", "true", "True", "", "0.3",
         "0.30000000000000004", "ÉCOLE", "école", "🚀", "a::::b", 'q"uote', "back\\slash", "tab\tx", "\x01c", "\u2028",
         True, False, None, 0, 1, -1, 5, 10, 2 ** 53 + 1, 2 ** 63 - 1, -(2 ** 63), 2 ** 64, 0.0, -0.0, 0.3,
         0.30000000000000004, 0.3000000000000003, 1e16, 10000000000000002.0, 1e-300, 5e-324, 10.0, 4.5, 1e21,
         1.7976931348623157e308, 9007199254740992.0, 9.223372036854776e18, 2 ** 64 - 1, 1.8446744073709552e19]
NUMS = [0, 1, -1, 5, 10, 1000, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, -(2 ** 63), 2 ** 64, 0.0, -0.0, 0.3,
        0.30000000000000004, 1e16, 1e-300, 5e-324, 4.5, 10.0, 12345.5, 1700000000000, 2024001]
BOUNDS = [0, -0.0, 1, 1.0, 0.1255, 0.5005, 0.0005, 0.1245, 0.2505, 0.9995, 0.0015, 0.001, 0.999, 0.5, -0.1, -1, 1.5,
          2, 65.535, 65.536, 100, 1e10, 0.3333333333333333, 0.6666666666666666, 1e-45, 0.1, 0.7, 1e39]
VARIANTS = ["control_1", "control_2", "treatment_1", "treatment_2", "variant_a", "enabled", "with space", "новый",
            "vàriant_ü", "Control_1", "holdout_x", "🚀", "a::::b", 'q"uote', "$none", ""]
CHOOSE_ALL_FILTERS = [None, None, None, "user_id", "device_id", "subreddit_id", "canonical_url", "nonexistent",
                      "conversion_pixel_id", "account_id", "country_code", "business_id", "num_votes", "logged_in", ""]
WEIRD = ["ÉCOLE", "nl\nx", 'q"uote', "\x7fdel", "\u2028ls", "\x01c", "tab\tx", "🚀", "a::::b", "", "back\\slash"]
SPECIAL_UUIDS = ["00000000-0000-0000-0000-000000000000", "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
                 "ffffffff-ffff-ffff-ffff-ffffffffffff"]


def ulps(x, ks=(1, 2, 3, 4, 5, 8)):
    """x and its f64 neighbours k ULPs away on both sides (EQ is "within f64::EPSILON or 4 ULPs")."""
    out = [x]
    for k in ks:
        for d in (math.inf, -math.inf):
            y = x
            for _ in range(k):
                y = math.nextafter(y, d)
            if math.isfinite(y):
                out.append(y)
    return out


# --- edge pools (used by the `edge` theme, and rarely elsewhere, through `edge()`) ---
EDGE_FLOATS = sorted({y for b in [0.3, 1.0, 100.0, -2.5, 1e16, 0.0, 1e-300, 2.0 ** 53, 1.7976931348623157e308,
                                  2.220446049250313e-16, 5.0] for y in ulps(b)})
FMT_FLOATS = [1e-5, 9.99e-6, 1e-6, 1.2e-5, 0.00012, 0.0001, 1e15, 9.999999999999998e15, 1e16, 1.0000000000000002e16,
              1.5e16, 1e17, 123456789012345680.0, 1e22, 1e23, 2.2250738585072014e-308, 3e-310, 12345678.9, -1e-5,
              -1e16, 0.1 + 0.2, 100.0, 2.0 ** 63, 2.0 ** 64, 5.0, -5.0, 0.5, 1.7976931348623157e308, -0.0]
EDGE_INTS = [2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32 - 1, 2 ** 32, 2 ** 53, 2 ** 53 + 1, 2 ** 63 - 1,
             -(2 ** 63), 2 ** 63, -(2 ** 63) - 1, 2 ** 64 - 1, 2 ** 64, 10 ** 30, -(10 ** 30), 5, 0]
NUMSTR = ["inf", "-inf", "+inf", "infinity", "Infinity", "INF", "NaN", "nan", "-NaN", "1e3", "1E3", "1e+3", " 5", "5 ",
          "+5", "-5", ".5", "5.", "-.5", "1_000", "0x10", "00005", "5e", "e5", "1e400", "-1e400", "1e-400", "-0", "-0.0",
          "0.30000000000000004", "١", "５", "1,5", "9007199254740993", "18446744073709551616", "2e308", "5.0", "5",
          "1.7976931348623157e308", "0.3", "100", "1e16", "1e+16"]
EDGE_NUMS = EDGE_FLOATS + FMT_FLOATS + EDGE_INTS
EDGE_VERSIONS = ["1.0.0.", "1.+0.0", "+1.0.0", "1.0.0 ", "...", ".", "1..0", "001.000.000", "1.0.0.x", "1.-0.0",
                 "1.00000.0", "1.0.0.0.0", "١.0.0", "1.0.0\n", "0.0.0", "1.255.255", "1.255.256", "256", "1.0.0.0",
                 "01.2.3", "", " ", "v1", "1,0,0", "1.0.0-beta", "1.0.0+x", "1.a.0", "1.0.a", "2", "1. 0.0", "1.0.0\u2028",
                 "1.0", "1.0.0", "1.0.0.0.0.0", "1.0.00000000000000000001", "1.0.-1", "1.0.0 .0"]
EDGE_IDS = [0, 1, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 2, 2 ** 32 - 1]
EDGE_TS = [0, 1, 2 ** 31 - 1, 2 ** 32, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63 - 1, 2 ** 63, 2 ** 64 - 1]
NONE_LIKE = ["$none", "$none", "$None", "$NONE", " $none", "$none ", "none", "None", "$", "", "null", "$none$"]
NAME_SUFFIXES = ["::::x", "\x00", 'q"', "\\", "\u2028", "\t", "é" * 20, "x" * 60, " ", "🚀", "\x7f", "\x1f",
                 "e\u0301", "\ufeff", "\u200b"]


def edge():
    return R.random() < K["edge"]


def long_str(prefix="t2_"):
    """Strings around the 55/64-byte SHA-1 block boundaries of the hash input (ASCII and multi-byte)."""
    n = R.randint(15, 75)
    return prefix + R.choice(["x" * n, "é" * (n // 2), "🚀" * (n // 4), "".join(R.choice("abc0é") for _ in range(n)),
                              "e\u0301" * (n // 3)])


def f32_bits(x):
    return struct.unpack("<I", struct.pack("<f", x))[0]


def f32_from_bits(i):
    return struct.unpack("<f", struct.pack("<I", i))[0]


def bound_cands(b):
    """range values around the rounding boundaries of bucket b: round(f32(x) * 1000f32) is b-1, b or b+1."""
    out = []
    for c in ((b - 0.5) / 1000, (b + 0.5) / 1000, b / 1000):
        if c <= 0:
            continue
        out += [c, c + 1e-12, c - 1e-12]
        i = f32_bits(c)
        out += [f32_from_bits(i + k) for k in (-2, -1, 1, 2)] + [f32_from_bits(i)]
        # a hair off the midpoint between two f32 neighbours: which f32 it becomes depends on exact f64 parsing
        k = R.randrange(-2, 2)
        m = (f32_from_bits(i + k) + f32_from_bits(i + k + 1)) / 2
        out.append(math.nextafter(m, R.choice([math.inf, -math.inf])))
    return out or [0, 0.0, -0.0]


def bucket_of(fid, name, sv, ident):
    return int(hashlib.sha1(("%s.%s.%s%s" % (fid, name, sv, ident)).encode()).hexdigest(), 16) % 1000


def rid(prefix, n=7):
    return prefix + "".join(R.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(n))


def uuid_form(ok=0.8):
    u = uuid.UUID(int=R.getrandbits(128), version=4) if R.random() < 0.9 else uuid.UUID(R.choice(SPECIAL_UUIDS))
    s = str(u)
    if R.random() < ok:
        return R.choice([s, s, s.upper(), u.hex, "{%s}" % s, "urn:uuid:" + s])
    bad = [s[:-1], s + "0", " " + s, "URN:UUID:" + s, "{%s}" % u.hex, s.replace("-", "", 1), "not-a-uuid",
           "", u.hex.upper(), s.replace("-", "_")]
    if edge():  # non-ASCII look-alikes, unbalanced braces, mixed forms
        bad += [s.replace("-", "\u2010", 1), "\uff10" + s[1:], "é" + s[2:], "{" + s, s + "}", "urn:uuid:{%s}" % s,
                "urn:uuid:" + u.hex, "Urn:Uuid:" + s, s[:8] + s[8:].upper(), "{%s}" % s.upper(), s + "\x00", "urn:uuid:"]
    return R.choice(bad)


class Pools:
    """Per-file identifier pools shared by contexts, targeting trees and overrides (so they hit)."""

    def __init__(self):
        self.users = [rid("t2_", R.randint(5, 9)) for _ in range(R.randint(8, 14))] + R.sample(WEIRD, R.randint(0, 2))
        self.users += [long_str() for _ in range(R.randint(1, 4))] if edge() else []
        self.vals = dict(FIELD_VALUES, user_id=self.users, subreddit_id=[rid("t5_", 5) for _ in range(4)],
                         ad_account_id=[rid("a2_", 5) for _ in range(3)], business_id=[rid("b_", 5) for _ in range(3)],
                         device_id=[uuid_form() for _ in range(6)] + [rid("dev-", 5), ""],
                         correlation_id=[uuid_form(0.7) for _ in range(8)],
                         conversion_pixel_id=[rid("px_", 5) for _ in range(4)] + [R.choice(self.users), 7, 1.5, True],
                         account_id=[rid("acc_", 4) for _ in range(3)] + [True, 7])
        self.groups = {}
        for _ in range(R.randint(0, 3)):
            f = R.choice(["user_id", "user_id", "country_code", "app_name", "device_id", "num_votes"])
            g = rid("grp_", 4)
            values = R.sample(self.vals[f], min(3, len(self.vals[f]))) + ([R.choice(MIXED)] if R.random() < 0.15 else [])
            self.groups[g] = {"name": g if R.random() < 0.9 else "other", "values": values, "field": f}
        # 17-digit floats shared by trees, DC values and contexts: serde_json (without float_roundtrip) reads about one
        # in seven of them from config text 1-2 ULPs away from the correctly rounded value
        self.floats = [R.choice([R.random(), R.uniform(-1e3, 1e3), R.random() * 10.0 ** R.randint(-30, 30)]) for _ in range(4)]
        if edge():  # odd group keys ("" and numeric-looking), values naming other groups (expansion is one level)
            for g in R.sample(["", "5", "true", "1.0", "null", R.choice(self.users), "ü g"], R.randint(1, 3)):
                f = R.choice(["user_id", "user_id", "num_votes", "country_code", "", "is_mod"])
                values = R.sample(self.vals.get(f, MIXED), min(2, len(self.vals.get(f, MIXED))))
                values += R.sample(sorted(self.groups) + [g, R.choice(MIXED), R.choice(NUMSTR)], R.randint(0, 2))
                self.groups[g] = {"name": g, "values": values, "field": f}

    def fval(self, f):
        if edge():
            return self.edge_val(f)
        return R.choice(self.vals.get(f, MIXED))

    def edge_val(self, f):
        if f == "build_number":
            return R.choice([2 ** 31 - 1, -(2 ** 31), 0, True, False, 2 ** 31])
        if f == "cookie_created_timestamp":
            return R.choice([2 ** 63 - 1, -(2 ** 63), 0, True, False, 2 ** 63])
        if f in TYPED_STR:
            return R.choice([long_str(), R.choice(NUMSTR), R.choice(WEIRD), R.choice(self.vals.get(f, MIXED))])
        if f in ("logged_in", "user_is_employee"):
            return R.random() < 0.5
        return R.choice([R.choice(EDGE_NUMS), R.choice(NUMSTR), R.choice(EDGE_NUMS + self.floats), long_str(""),
                         R.random() < 0.5, R.choice(self.floats)])


def rfield():
    r = R.random()
    if r < 0.55:
        return R.choice(["user_id", "user_id", "country_code", "app_name", "device_id", "locale", "subreddit_id",
                         "canonical_url", "logged_in", "user_is_employee", "build_number", "cookie_created_timestamp"])
    if r < 0.93:
        return R.choice(OTHER)
    return R.choice(UNKNOWN)


def tval(P, f):
    if edge():
        return R.choice([P.edge_val(f), R.choice(EDGE_NUMS), R.choice(NUMSTR)])
    return P.fval(f) if R.random() < 0.6 else R.choice(MIXED + [[1, 2], {"a": 1}] if R.random() < 0.05 else MIXED)


def redge_leaf(P, f):
    """Odd operand shapes: some are load errors of the entry, the rest probe numeric/string corners."""
    v = tval(P, f)
    r = R.random()
    if r < 0.25:  # comparison against boundary numbers (valid)
        return {R.choice(["GT", "GE", "LT", "LE"]): {"field": R.choice([f, "score", "karma"]),
                                                     "value": R.choice(EDGE_NUMS + P.floats * 10)}}
    if r < 0.4:  # EQ/NE value from the edge pools, possibly with a `values` too (value wins) or extra keys
        node = {"field": f, "value": v}
        node.update(R.choice([{}, {"values": [tval(P, f)]}, {"extra": [1, {"a": None}]}, {"value_": 1}]))
        return {R.choice(["EQ", "NE"]): node}
    if r < 0.5:
        return {"EQ": {"field": f, "values": [tval(P, f) for _ in range(R.randint(1, 5))]}}
    if r < 0.58 and P.groups:  # a non-string value (or "") that spells a group key
        g = R.choice(sorted(P.groups))
        lit = {"5": 5, "true": True, "1.0": 1.0, "null": None}.get(g, g)
        return {R.choice(["EQ", "NE"]): {"field": P.groups[g]["field"] or f, "value": lit}}
    if r < 0.85:
        return {"PREQ": {"field": f, "values": [R.choice(["", "t2_", "é", "🚀", "x" * 20, "T2_"]),
                                                R.choice(P.users)[:R.randint(0, 12)]]}}
    return R.choice([  # mostly load errors of the entry
        {"NE": {"field": f, "values": [v]}}, {"GT": {"field": f, "values": [5]}}, {"PREQ": {"field": f, "value": "t2_"}},
        {"GT": {"field": f, "value": True}}, {"GE": {"field": f, "value": None}}, {"LT": {"field": f, "value": "5"}},
        {"EQ": {"field": R.choice([5, None, True]), "value": v}}, {"EQ": {"field": "", "value": v}},
        {"EQ": {"field": "other_fields", "value": v}}, {"ALL": {}}, {"ANY": {"EQ": {"field": f, "value": v}}},
        {"NOT": [{"EQ": {"field": f, "value": v}}]}, {"NOT": None}, {"ALL": None}, {"EQ": {"field": f, "value": v}, "x": 1},
        {"Eq": {"field": f, "value": v}}, {"PREQ": {"field": f, "values": "t2_"}}, {"PREQ": {"field": f, "values": []}},
        {"EQ": {"field": f, "values": []}}, {"EQ": {"field": f, "values": None}}, {"EQ": {"field": f, "value": [v]}},
        {"EQ": {"field": f, "value": {"a": v}}}, {"PREQ": {"field": f, "values": [None]}},
        {"GT": {"field": f, "value": 2 ** 64 - 1}}, {"LE": {"field": f, "value": -(2 ** 63)}}])


def rleaf(P, groups=False):
    f = rfield()
    if edge() and R.random() < 0.5:
        return redge_leaf(P, f)
    op = R.choice(["EQ", "EQ", "EQs", "EQs", "NE", "GT", "GE", "LT", "LE", "PREQ"])
    if groups and P.groups and R.random() < 0.5:  # $override_groups references
        g, spec = R.choice(sorted(P.groups.items()))
        f = spec["field"] if R.random() < 0.8 else f
        op = R.choice(["EQ", "EQ", "EQs", "NE", "PREQ"])
        if op == "PREQ":  # PREQ entries naming a group of the node's field expand too (override trees only)
            return {op: {"field": f, "values": [g] + R.sample(["t2_", "", "x", R.choice(sorted(P.groups))], R.randint(0, 1))}}
        if op == "EQs":
            return {"EQ": {"field": f, "values": [g] + ([tval(P, f)] if R.random() < 0.5 else [])}}
        return {op: {"field": f, "value": g}}
    if op == "EQs":
        node = {"EQ": {"field": f, "values": [tval(P, f) for _ in range(R.randint(0, 4))]}}
    elif op in ("EQ", "NE"):
        node = {op: {"field": f, "value": tval(P, f)}}
    elif op == "PREQ":
        pre = [s[:R.randint(0, len(s))] for s in (P.fval(f), R.choice(P.users)) if isinstance(s, str)]
        node = {op: {"field": f, "values": pre + R.sample(["t2_", "", "T2", "http", "ios", "a"], R.randint(0, 2))}}
    else:
        node = {op: {"field": f, "value": R.choice(NUMS)}}
    if R.random() < 0.04:  # extra operand keys are ignored; EQ with both value and values uses value
        node[next(iter(node))].update(R.choice([{"comment": "x"}, {"values": [tval(P, f)]}]))
    return node


def rtree(P, depth=0, groups=False):
    if depth == 0 and R.random() < 0.6:  # often true, so bucketing is reached
        friendly = R.choice([{"NE": {"field": "user_id", "value": R.choice(P.users)}},
                             {"PREQ": {"field": "user_id", "values": ["t2_"]}},
                             {"EQ": {"field": "country_code", "values": FIELD_VALUES["country_code"]}},
                             {"GE": {"field": "build_number", "value": -5}}, {"ALL": []}])
        return {"ANY": [rtree(P, 1, groups), friendly]}
    if depth < 3 and R.random() < 0.35:
        op = R.choice(["ALL", "ANY", "NOT"])
        if op == "NOT":
            return {op: rtree(P, depth + 1, groups)}
        return {op: [rtree(P, depth + 1, groups) for _ in range(R.randint(0, 3))]}
    return rleaf(P, groups)


def roverrides(P, names):
    out = []
    for _ in range(R.randint(1, 3)):
        r = R.random()
        name = R.choice(names) if names and r < 0.7 else "$none" if r < 0.85 else R.choice(["not_a_variant", "Treatment"])
        name = R.choice(NONE_LIKE + names) if edge() else name
        if R.random() < 0.5:
            users = R.sample(P.users, R.randint(1, 3))
            tree = {"EQ": {"field": "user_id", "values": users} if len(users) > 1 else {"field": "user_id", "value": users[0]}}
        else:
            tree = rtree(P, 1, groups=True)
        out.append({name: tree} if R.random() < 0.97 else {})
    return out


def rranges(n):
    r = R.random()
    if r < 0.45:  # contiguous partition, cut points at multiples of 0.0005 (f32 rounding halves)
        pts = sorted(R.randrange(0, 2001) / 2000 for _ in range(n + 1))
        if R.random() < 0.6:
            pts[0], pts[-1] = R.choice([0, 0.0]), R.choice([1, 1.0])
        return list(zip(pts, pts[1:]))
    if r < 0.75:  # back to back from 0 with round widths
        out, s = [], 0.0
        for _ in range(n):
            w = R.choice([0.1, 0.2, 0.25, 0.5, 0.01, 0.333, 1.0])
            out.append((round(s, 3), round(s + w, 3)))
            s += w
        return out
    return [(R.choice(BOUNDS), R.choice(BOUNDS)) if R.random() < 0.7 else (R.random(), R.random()) for _ in range(n)]


EDGE_BOUNDS = [2 ** 64, -(2 ** 63), 2 ** 70, 10 ** 30, 65.5355, 65.5345, 65.535499, 65.5365, 1e-46, -1e-46, 3.4028235e38,
               3.4028236e38, 0.0625, 0.0015, 0.0025, 0.0035, 0.1235, 0.9985, 0.9995, 1.0005, 0.9994999, 5e-324, -0.0005,
               -0.0004999, 0.00049999997, 0.0004999999, 0.5005000000000001]


def rranges_near(n, buckets):
    """Ranges whose ends sit on the f32 rounding boundaries of the buckets of pool identifiers."""
    out = []
    for _ in range(n):
        b = R.choice(buckets)
        near = bound_cands(b) + bound_cands(b + 1)
        r = R.random()
        if r < 0.4:  # just bucket b, or nothing, or b and a neighbour
            out.append((R.choice(bound_cands(b)), R.choice(bound_cands(b + 1))))
        elif r < 0.7:
            out.append((R.choice([0, 0.0]), R.choice(near)))
        else:
            out.append((R.choice(near), R.choice([1, 1.0, R.choice(BOUNDS + EDGE_BOUNDS)])))
    return out


def rvariants(names, buckets=None):
    out = []
    if buckets:
        ranges = rranges_near(len(names), buckets)
    elif edge():
        ranges = [(R.choice(BOUNDS + EDGE_BOUNDS), R.choice(BOUNDS + EDGE_BOUNDS)) for _ in names]
    else:
        ranges = rranges(len(names))
    for nm, (a, b) in zip(names, ranges):
        v = {"name": nm, "range_start": a, "range_end": b}
        v.update({"emit_event_override": R.random() < 0.6} if R.random() < 0.15 else {})
        v.update({"description": "ignored"} if R.random() < 0.03 else {})
        out.append(v)
    return out


def rbucket_val():
    if R.random() > K["oddbv"]:
        return R.choice(["user_id"] * 4 + ["device_id"])
    return R.choice(["canonical_url", "subreddit_id", "ad_account_id", "business_id", "correlation_id", "country_code",
                     "locale", "logged_in", "build_number", "cookie_created_timestamp", "app_name"] + OTHER + UNKNOWN)


def rbase(slot, typ):
    e = {"id": R.randint(1, 99999) if R.random() < 0.8 else R.choice([0, 4294967295, R.randint(0, 2 ** 32 - 1)]),
         "name": slot["name"], "enabled": R.random() < 0.9,
         "version": R.choice(["1"] * 6 + ["", "2", "abc", "1.0.0", "1.2.3", "1.0.0.0", "01.0.0", "1.255.255"]),
         "type": typ}
    if edge():
        e["id"] = R.choice(EDGE_IDS)
    if edge() and R.random() < 0.4:
        e["version"] = R.choice(EDGE_VERSIONS)
    if edge():  # disabled entries (parents included)
        e["enabled"] = R.random() < 0.5
    if R.random() < 0.8:
        e["owner"] = R.choice(["growth", "ads-eng", "feeds@reddit.com", None])
    return e


def rrange_entry(P, slot):
    e = rbase(slot, "feature_rollout" if R.random() < 0.25 else "range_variant")
    for k, pool in (("start_ts", [0, 1690327303, 1700000000, 2 ** 63, 2 ** 64 - 1]),
                    ("stop_ts", [0, 1800000000, 4102444800, 1720573285, 2 ** 63, 2 ** 64 - 1])):
        if R.random() < 0.8:
            e[k] = R.choice(pool[:-2] * 30 + pool[-2:]) if not edge() else R.choice(EDGE_TS)
    e.update({"emit_event": R.random() < 0.85} if R.random() < 0.85 else {})
    e.update({"measured": R.random() < 0.5} if R.random() < 0.2 else {})
    if slot["role"] == "hg":
        names = ["holdout", "control_1"] + R.sample(["Holdout", "control_2", "treatment_1"], R.randint(0, 2))
    elif slot["role"] == "meg":
        names = slot["children"] + R.sample(["not_a_child", "Other"] + [c.upper() for c in slot["children"]], R.randint(0, 2))
    else:
        names = R.sample(VARIANTS[:-2], R.randint(1, 4)) + (R.sample(VARIANTS[-2:], 1) if R.random() < 0.05 else [])
    if names and edge():  # duplicate variant names (the first match wins)
        names += R.sample(names, R.randint(1, min(2, len(names))))
    R.shuffle(names)
    x = {"experiment_version": R.randint(0, 20) if R.random() < 0.97 else 4294967295}
    if edge():
        x["experiment_version"] = R.choice([0, 2 ** 31, 2 ** 32 - 1])
    if R.random() < 0.8:
        x["shuffle_version"] = R.choice([0, 0, 1, 2, 5, 4294967295])
    x["bucket_val"] = rbucket_val()
    idents = [v for v in P.vals.get(x["bucket_val"], []) if isinstance(v, str)] if x["bucket_val"] in TYPED_STR else []
    buckets = None
    if idents and edge():  # put range ends right on the rounding boundaries of identifiers the contexts use
        buckets = [bucket_of(e["id"], slot["name"], x.get("shuffle_version", 0), u)
                   for u in R.sample(idents, min(len(idents), 6))]
    x["variants"] = rvariants(names, buckets) if R.random() < 0.97 else []
    if R.random() < K["tgt"]:
        x["targeting"] = rtree(P, groups=R.random() < 0.3) if R.random() < 0.95 else None
    if R.random() < K["ovr"]:
        x["overrides"] = roverrides(P, names) if R.random() < 0.95 else None
    e["experiment"] = x
    if R.random() < 0.03:  # the array form: its 6 fields in serde order (a wrong length fails the entry)
        e["experiment"] = [x["experiment_version"], x["variants"], x.get("shuffle_version", 0), x["bucket_val"],
                           x.get("overrides"), x.get("targeting")][:R.choice([6, 6, 6, 5, 2])]
        if edge():  # longer, or nulls in the optional slots
            e["experiment"] = R.choice([e["experiment"] + [None], e["experiment"] + ["extra"],
                                        e["experiment"][:2] + [None] + e["experiment"][3:], e["experiment"][:4] + [None, None]])
    for k in ("parent_hg_name", "parent_meg_name"):
        if slot.get(k):
            e[k] = slot[k]
    e.update(R.choice([{"namespaces": []}, {"namespaces": ["ns_a", "ns_b"]}, {"description": "ignored"},
                       {"value": None}, {"value_type": R.choice(["Boolean", "Map", "Text", "Null"])}] + [{}] * 15))
    return e


def rmap(depth=0):
    out = {}
    for _ in range(R.randint(0, 4)):
        k = R.choice(["a", "n", "big", "list", "nested", "ü", "k k", ""])
        r = R.random()
        if r < 0.2 and depth < 2:
            out[k] = rmap(depth + 1)
        elif r < 0.3:  # arrays are fine inside a map (only a top-level array value panics the reference)
            out[k] = [R.choice(MIXED) for _ in range(R.randint(0, 3))]
        else:
            out[k] = R.choice(MIXED + [9007199254740993, 2 ** 64 - 1, -7])
    return out


def rdc_entry(P, slot):
    e = rbase(slot, "dynamic_config")
    x = {"experiment_version": R.randint(0, 9)}
    if R.random() < 0.15:  # ignored for DCs
        x.update(bucket_val=rbucket_val(), variants=rvariants(["a"]), targeting=rtree(P))
    e["experiment"] = x
    kind = R.choice(["bool", "int", "float", "str", "map", "map", "null", "absent"])
    val = {"bool": lambda: R.random() < 0.5,
           "int": lambda: R.choice([0, 1, 7, -3, 2 ** 31, 2 ** 53 + 1, 2 ** 63 - 1, 2 ** 63 + 5, 2 ** 64 - 1, -(2 ** 63)]),
           "float": lambda: R.choice([0.0, 7.0, -0.0, 0.1, 1e-07, 1e16, 5e-324, 2.5, 1.7976931348623157e308]),
           "str": lambda: R.choice(["", "on", "Ünïcode 🚀", "a::::b", 'q"uote', "1", "true", "nl\nx"]),
           "map": rmap, "null": lambda: None, "absent": lambda: None}[kind]()
    if edge():
        val = R.choice([R.choice(EDGE_NUMS), R.choice(NUMSTR), long_str(""), {"m": R.choice(EDGE_NUMS), "s": R.choice(NUMSTR)},
                        R.choice(P.floats)])
    if kind != "absent":
        e["value"] = val
    if R.random() < (0.7 if kind in ("null", "absent") else 0.4):
        e["value_type"] = R.choice(["Boolean", "Integer", "Float", "String", "Text", "Map", "Null"])
    if slot.get("parent_hg_name") and R.random() < 0.3:
        e["parent_hg_name"] = slot["parent_hg_name"]
    return e


DEL = object()  # a mutation that deletes the member
BROKEN_TREES = [{"all": []}, {"EQ": {"field": "user_id"}}, {"GT": {"field": "num_votes", "value": "5"}},
                {"EQ": {"field": "user_id", "values": "t2_1"}}, {"ALL": [], "ANY": []}, {"NOT": []},
                {"PREQ": {"field": "user_id", "values": [1]}}, {"EQ": {"value": "x"}}, [], {"XX": {}}, 5,
                {"ALL": [{"EQ": {"field": "user_id", "value": "x"}}, {"LE": {"field": "karma", "value": None}}]}]
# (path, value) mutations mirroring the load errors of vectors/22_broken.json and 23_broken.json
MUTATIONS = [(path, v) for path, vs in [
    ("id", (DEL, -1, 4294967296, 5.0, "5")), ("name", (DEL, 5, None)), ("enabled", (DEL, "true", 1)),
    ("version", (DEL, 1, "1.0", "2.0.0", "1.256.0", None, " 1.0.0", "1.0.x")),
    ("type", (DEL, "Range_Variant", "r2", "feature_flag", "DYNAMIC_CONFIG")), ("start_ts", (-1, 1.5)),
    ("stop_ts", ("soon", None, 2 ** 64)), ("emit_event", (1, None)), ("measured", ("yes",)),
    ("experiment", (DEL, None, [], "x")), ("experiment.experiment_version", (DEL, -1, 1.0)),
    ("experiment.bucket_val", (DEL, None, 5)), ("experiment.shuffle_version", (None, -1)),
    ("experiment.variants", (None, {"a": 1})), ("experiment.targeting", BROKEN_TREES),
    ("experiment.overrides", ({"a": {"EQ": {"field": "user_id", "value": "x"}}}, [{"a": {"XX": {}}}], [5], "x")),
    ("experiment.variants.0.name", (DEL, 5)), ("experiment.variants.0.range_end", (DEL,)),
    ("experiment.variants.0.range_start", ("0", None)), ("experiment.variants.0.emit_event_override", (1,)),
    ("parent_hg_name", (5,)), ("parent_meg_name", (["x"],)), ("namespaces", ("ns",)), ("value_type", ("integer", 5)),
    ("", (5, "str", None, [], {}))] for v in vs]


def mutate(e):
    path, val = R.choice(MUTATIONS)
    if not path:
        return copy.deepcopy(val)
    e = copy.deepcopy(e)
    *head, last = [int(p) if p.isdigit() else p for p in path.split(".")]
    tgt = e
    try:
        for p in head:
            tgt = tgt[p]
    except (KeyError, IndexError, TypeError):
        return e  # nothing to break here (a DC without variants, the array form of `experiment`)
    if isinstance(tgt, dict):
        if val is DEL:
            tgt.pop(last, None)
        else:
            tgt[last] = copy.deepcopy(val)
    return e


def rconfig(P):
    """Slots are planned first (keys, names, roles, parents pointing only backwards: no cycles)."""
    n = R.randint(*K["n"])
    slots = []
    for i in range(n):
        r = R.random()
        role = "dc" if r < K["dc"] else "hg" if r < K["dc"] + K["hg"] else "meg" if r < K["dc"] + K["hg"] + K["meg"] else "f"
        name = "%s_%s_%s_%d" % (R.choice(["feed", "vote", "chat", "ads", "video", "search", "inbox", "avatar"]),
                                R.choice(["banner", "push", "theme", "login", "share", "rank"]),
                                {"dc": "dc", "hg": "hg", "meg": "meg", "f": R.choice(["exp", "test", "rollout", "ff"])}[role], i)
        if R.random() < 0.08:
            name = R.choice([name.replace("_", "-"), name + "_ü", name + " 新", name.upper()])
        if edge():  # escapes in event JSON, "::::" in legacy strings, long names (multi-block SHA-1 input)
            name = R.choice([name + R.choice(NAME_SUFFIXES), name * R.randint(2, 4), R.choice(NAME_SUFFIXES) + name])
        key = name if R.random() < 0.9 else name + "_key"
        slots.append({"key": key, "name": name, "role": role, "children": []})
    for i, s in enumerate(slots):
        hgs = [t for t in slots[:i] if t["role"] == "hg"]
        megs = [t for t in slots[:i] if t["role"] == "meg"]
        if hgs and R.random() < 0.6:
            s["parent_hg_name"] = R.choice(hgs)["key"]
        if megs and s["role"] in ("f", "meg") and R.random() < 0.45:
            p = R.choice(megs)
            s["parent_meg_name"] = p["key"]
            p["children"].append(s["name"])
        if R.random() < 0.05:  # unknown key, a name instead of a key, or a DC parent: all ignored
            k = R.choice(["parent_hg_name", "parent_meg_name"])
            s[k] = R.choice(["missing_parent"] + [t["name"] for t in slots[:i]] + [t["key"] for t in slots[:i]
                                                                                 if t["role"] == "dc"])
    config = {}
    for s in slots:
        e = rdc_entry(P, s) if s["role"] == "dc" else rrange_entry(P, s)
        config[s["key"]] = mutate(e) if R.random() < K["broken"] else e
    if R.random() < 0.15:  # an identical duplicate under another key
        k = R.choice(list(config))
        config[k + "_copy"] = copy.deepcopy(config[k])
    if edge():  # "$"-keys other than the two special ones are ordinary entries
        k = R.choice(list(config))
        config[R.choice(["$foo", "$", "$override_group", "$Properties"])] = R.choice(
            [copy.deepcopy(config[k]), 5, {}, None])
    if P.groups and R.random() < 0.9:
        config["$override_groups"] = {"value": P.groups}
    if R.random() < 0.15:
        config["$properties"] = rproperties(P)
    items = list(config.items())
    R.shuffle(items)
    return dict(items)


def rproperties(P):
    """The 1.18 property registry: validated at load (errors under "$properties"), otherwise inert."""
    out = {}
    for _ in range(R.randint(1, 3)):
        t, fb, tv = R.choice([("Boolean", False, True), ("Integer", 1, -2), ("Float", 1, 2.5), ("String", "x", "y"),
                              ("Float", 0.5, 7), ("String", "", "ü")])
        if R.random() < 0.15:
            t, fb, tv = R.choice([("Integer", 1.5, 2), ("boolean", False, True), ("Map", {}, {}), ("String", 1, "y"),
                                  (t, R.choice(MIXED), R.choice(MIXED))])
        rules = [{"value": tv, "targeting_rule": rtree(P, 1, groups=True) if R.random() < 0.9 else R.choice(BROKEN_TREES)}
                 for _ in range(R.randint(0, 3))]
        prop = {"type": t, "fallback_value": fb, "targeted_values": rules}
        if R.random() < 0.05:
            del prop[R.choice(list(prop))]
        out[R.choice(["p_" + rid("", 3)] * 12 + ["", "ü", "p p"])] = prop
    return out


def rcontext(P):
    ctx = {}
    if R.random() < 0.93:
        ctx["user_id"] = R.choice(P.users)
    for f in TYPED_STR[1:] + TYPED_OTHER:
        if R.random() < (0.75 if f in ("country_code", "device_id", "logged_in") else 0.3):
            weird = f in TYPED_STR and R.random() < 0.03  # odd strings reach the event JSON
            ctx[f] = None if R.random() < 0.02 else R.choice(WEIRD) if weird else P.fval(f)
    if R.random() < 0.6:
        of = {}
        for f in R.sample(OTHER, R.randint(1, 5)) + (R.sample(UNKNOWN + ["user_id"], 1) if R.random() < 0.1 else []):
            of[f] = P.fval(f)
        ctx["other_fields"] = of
    if R.random() < 0.06:  # unknown top-level keys are ignored, whatever their type
        ctx[R.choice(["loid_created_timestamp", "app_version", "User_Id", "foo"])] = R.choice(MIXED + [[1], {"a": 1}])
    if edge() and R.random() < 0.15:  # typed slots at their limits (build_number is i32, cookie_created_timestamp i64)
        ctx[R.choice(["build_number", "cookie_created_timestamp", "correlation_id", "device_id"])] = R.choice(
            [R.choice(EDGE_INTS), uuid_form(0.3), True, None])
    if R.random() < K["badctx"]:
        k, v = R.choice([("user_id", 5), ("logged_in", 1), ("logged_in", "true"), ("build_number", 1.5),
                         ("build_number", "5"), ("build_number", 2 ** 31), ("cookie_created_timestamp", 1.5),
                         ("cookie_created_timestamp", 2 ** 63), ("country_code", ["US"]), ("other_fields", [1]),
                         ("other_fields", {"a": [1]}), ("other_fields", {"a": {"b": 1}}), ("device_id", 0),
                         ("user_is_employee", "yes"), ("correlation_id", 7), ("other_fields", "x")])
        ctx[k] = v
    items = list(ctx.items())
    R.shuffle(items)
    return dict(items)


def rcalls(P, names, dcs, keys, n):
    """dcs: [(name, the getter matching its value or None)]; keys: config keys that are no feature name."""
    unknown = ["no_such_feature", "", "Feed_Banner_Exp_0", "$override_groups"]
    calls = []
    for _ in range(n):
        r = R.random()
        pick = lambda pool: R.choice(pool) if pool and R.random() < 0.9 else R.choice(keys + unknown)
        if r < 0.55:
            c = {"op": "choose", "feature": pick(names), "context": rcontext(P)}
            r2 = R.random()
            if r2 < 0.25:
                c.update(expose=R.random() < 0.6, expose_holdout=R.random() < 0.5)
            elif r2 < 0.3:
                c[R.choice(["expose", "expose_holdout"])] = R.random() < 0.7
        elif r < 0.63:
            c = {"op": "get_feature", "feature": pick(names)}
        elif r < 0.83:
            name, op = R.choice(dcs) if dcs and R.random() < 0.8 else (pick(names), None)
            if not op or R.random() < 0.4:
                op = R.choice(["get_bool", "get_int", "get_float", "get_string", "get_map"])
            c = {"op": op, "feature": name if R.random() < 0.9 else pick([]), "context": rcontext(P)}
        elif r < 0.93:
            c = {"op": "choose_all", "context": rcontext(P), "bucketing_field_filter": R.choice(CHOOSE_ALL_FILTERS)}
            if edge():
                c["bucketing_field_filter"] = R.choice(["", "User_Id", "user_id ", "ü", "other_fields", "score", "karma"])
        else:
            c = {"op": "all_values", "context": rcontext(P)}
        calls.append(json.loads(json.dumps(c)))
    return calls


def event_json(js, ctx, t0, t1, corr):
    """Replaces the top-level "5" timestamp, "6" uuid and (unless taken from the context) "8" id."""
    o = json.loads(js)
    ts, u, c = o["5"]["i64"], o["6"]["str"], o["8"]["str"]
    assert t0 <= ts <= t1, (t0, ts, t1)
    assert uuid.UUID(u).version == 4 and str(uuid.UUID(u)) == u, u
    corr.add(c)
    old = '"5":{"i64":%d},"6":{"str":"%s"},"8":{"str":"%s"}' % (ts, u, c)
    assert js.count(old) == 1, js
    # the context's id is kept (normalised) when the Rust uuid crate parsed it; otherwise the event carries a fresh v4.
    # Python's uuid.UUID accepts other forms than Rust's, so compare the hex digits instead of re-parsing.
    cid = ctx.get("correlation_id") if isinstance(ctx, dict) else None
    keep = isinstance(cid, str) and c.replace("-", "") in re.sub("[^0-9a-f]", "", cid.lower())
    assert keep or (uuid.UUID(c).version == 4 and str(uuid.UUID(c)) == c), c
    new = '"5":{"i64":<CLIENT_TS_MS>},"6":{"str":"<UUID>"},"8":{"str":"%s"}' % (c if keep else "<CORRELATION_ID>")
    return js.replace(old, new)


def decision(d, ctx, t0, t1):
    corr = set()
    fe = [{"decision_kind": e.decision_kind, "exposure_key": e.exposure_key,
           "json": event_json(e.json_str, ctx, t0, t1, corr)} for e in d.full_events]
    assert len(corr) <= 1, corr  # one correlation id per decision
    return {"variant": d.variant, "value": d.value, "feature_id": d.feature_id, "feature_name": d.feature_name,
            "feature_version": d.feature_version, "events": list(d.events), "full_events": fe}


def run_call(dec, exposed, call):
    op, ctx = call["op"], call.get("context")
    exposed.clear()
    t0 = int(time.time() * 1000)
    try:
        if op == "choose":
            kw = {k: call[k] for k in ("expose", "expose_holdout") if k in call}
            d = dec.choose(call["feature"], ctx, **kw)
            index = {e.json_str: i for i, e in enumerate(d.full_events)}
            t1 = int(time.time() * 1000)
            return {"decision": decision(d, ctx, t0, t1), "exposed": [index[j] for j in exposed]}
        if op == "choose_all":
            ds = dec.choose_all(ctx, call["bucketing_field_filter"])
            t1 = int(time.time() * 1000)
            return {"decisions": {k: decision(ds[k], ctx, t0, t1) for k in sorted(ds)}}
        if op == "all_values":
            vs = dec.all_values(ctx)
            return {"values": {k: vs[k] for k in sorted(vs)}}
        if op == "get_feature":
            f = dec.get_feature(call["feature"])
            return {"feature": {k: f[k] for k in ("id", "name", "version", "bucket_val", "start_ts", "stop_ts",
                                                  "emit_event", "measured")}}
        return {"value": getattr(dec, op)(call["feature"], ctx)}
    except Exception as e:  # noqa: BLE001
        assert not exposed
        return {"error": {"type": type(e).__name__, "message": str(e)}}


def load(text, calls_for):
    """Loads `text` like the README says; returns (LOAD, core_calls)."""
    fd, path = tempfile.mkstemp(suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    try:
        try:
            RawDecider(path)
            result = {"status": "ok"}
        except rust_decider.PartialLoadException as e:
            result = {"status": "partial", "errors": {k: e.args[2][k] for k in sorted(e.args[2])}}
        except BaseException as e:  # DeciderInitException, or pyo3's PanicException (a BaseException)
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                raise
            return {"status": "init_error", "exception": type(e).__name__, "message": str(e)}, []
        exposed = []
        dec = rust_decider.Decider(path, exposer=Exposer(exposed.append))
        calls = calls_for()
        for c in calls:
            c["expect"] = run_call(dec, exposed, c)
        return result, calls
    finally:
        os.unlink(path)


def dump_config(config):
    return json.dumps(config, ensure_ascii=False, allow_nan=False)


def plan(P, config, n):
    """A call planner over the names, DC names and config keys of a document (broken ones included)."""
    ents = [v for k, v in config.items() if not k.startswith("$")]
    names = sorted({e["name"] for e in ents if isinstance(e, dict) and isinstance(e.get("name"), str)})
    getter = {bool: "get_bool", int: "get_int", float: "get_float", str: "get_string", dict: "get_map"}
    dcs = sorted({(e["name"], getter.get(type(e.get("value")), "")) for e in ents if isinstance(e, dict)
                  and e.get("type") == "dynamic_config" and isinstance(e.get("name"), str)})
    keys = sorted(k for k in config if k not in names and not k.startswith("$"))
    return lambda: rcalls(P, names, dcs, keys, n)


BAD_GROUPS = [{}, 5, None, {"value": {}}, {"value": 5}, {"value": {"grp": {"name": "grp", "values": ["t2_x"]}}},
              {"value": {"grp": {"name": "grp", "field": "user_id"}}}, {"value": {"grp": {"values": [1], "field": "a"}}},
              {"value": {"grp": {"name": "grp", "values": "x", "field": "user_id"}}}, {"value": {"grp": 5}},
              {"value": {"grp": {"name": "grp", "values": ["US"], "field": "country_code"}}, "extra": 1}]


def rload_case(P, config):
    entries = {k: v for k, v in config.items() if not k.startswith("$")}
    keys, doc, text, r = list(entries), dict(config), None, R.random()
    k = R.choice(keys)
    bad = dump_config(mutate(entries[k]) if isinstance(entries[k], dict) else 5)
    if r < 0.3:  # a subset (dropping parents detaches children)
        doc = {k: v for k, v in config.items() if k.startswith("$") or R.random() < 0.6}
    elif r < 0.55:  # one more mutated entry
        doc[k] = json.loads(bad)
    elif r < 0.65:  # $override_groups variations
        doc["$override_groups"] = copy.deepcopy(R.choice(BAD_GROUPS))
    elif r < 0.72:
        doc["$properties"] = R.choice([rproperties(P), rproperties(P), [], 5, {"p": {}}])
    else:  # raw text: invalid JSON, duplicate keys (last wins), out-of-range numbers
        doc = {k: entries[k] for k in [k] + R.sample(keys, min(len(keys), R.randint(0, 3)))}
        body = dump_config(doc)
        text = R.choice([
            "", "[]", "null", "5", '"str"', "{}", "\ufeff" + body, body + " x", body[:-1], '{"x": NaN}',
            '{"x": Infinity}', body[:-1] + ', "big": {"id": 1e400}}', body[:-1] + ', "num": 1e400}',
            body[:-1] + ", %s: %s}" % (json.dumps(k), bad), "{%s: %s, %s}" % (json.dumps(k), bad, body[1:-1]),
            body.replace('"enabled": ', '"enabled": false, "enabled": ', 1), json.dumps(doc), json.dumps(doc, indent=1),
            body.replace('"bucket_val": ', '"bucket_val": "nonexistent", "bucket_val": ', 1),
            body.replace('"name": "', '"name": "\\ud83d\\ude80\\u00e9', 1), body.replace('"name": "', '"name": "\\udc00', 1),
            body.replace('"name": ', '"name": "dup_name", "name": ', 1)])
    if edge():
        text = redge_text(P, entries, k, dump_config(doc))
    case = {"config_text": text} if text is not None else {"config": doc}
    case["load"], case["core_calls"] = load(text if text is not None else dump_config(doc),
                                            plan(P, doc, R.randint(3, 12)))
    return case


def deep_tree(root_depth):
    """A NOT/ALL/ANY chain whose innermost operand object sits at JSON depth 124..132 (serde_json stops at 128)."""
    op, total = R.choice(["NOT", "ALL", "ANY"]), R.randint(124, 132)
    t = {"EQ": {"field": "user_id", "value": "t2_x"}}
    for _ in range((total - 1 - root_depth) // (1 if op == "NOT" else 2)):
        t = {op: t} if op == "NOT" else {op: [t]}
    return t


def redge_text(P, entries, k, body):
    """Raw-text corners: number spellings serde reads differently from Python, and nesting around serde_json's
    recursion limit of 128 (only ever in config_text: the vector file itself stays shallow)."""
    r = R.random()
    if r < 0.5:
        num = R.choice(["-0", "0e0", "1E0", "1.0e0", "1e2", "100e-2", "0.0", "-0.0", "1e-400", "1E+0", "0.50000000000000000001",
                        "4294967295.0", "4294967296e0", "18446744073709551615", "18446744073709551616", "-9223372036854775809"])
        fld = R.choice(["id", "experiment_version", "shuffle_version", "range_start", "range_end", "start_ts", "stop_ts",
                        "value", "id"])
        names = [e.get("name") for e in entries.values() if isinstance(e, dict)]
        once = len(names) == len(set(names)) and R.random() < 0.5  # all of them when duplicates must stay identical
        return re.sub(r'"%s": -?[0-9][0-9.eE+-]*' % fld, '"%s": %s' % (fld, num), body, count=1 if once else 0)
    if r < 0.8:
        e = copy.deepcopy(entries[k]) if isinstance(entries[k], dict) else {}
        x = e.get("experiment") if isinstance(e.get("experiment"), dict) else None
        if x is None or e.get("type") == "dynamic_config":
            return body
        # JSON depth: document 1, entry 2, experiment 3, a targeting root 4, an override tree 6 (list 4, map 5)
        if R.random() < 0.6:
            x["targeting"] = deep_tree(4)
        else:
            x["overrides"] = [{"x": deep_tree(6)}]
        doc = json.loads(body)
        for kk, ee in doc.items():  # identical duplicates (same name) get the same tree
            if kk == k or isinstance(ee, dict) and ee.get("name") == e.get("name"):
                doc[kk] = e
        return dump_config(doc)
    # duplicate keys inside entries, experiment blocks and $override_groups (last wins)
    return R.choice([body.replace('"$override_groups": {"value": {', '"$override_groups": {"value": {"": 5}, "value": {', 1),
                     body.replace('"field": ', '"field": 7, "field": ', 1),body.replace('"experiment_version": ', '"experiment_version": 99, "experiment_version": ', 1),
                     body.replace('"variants": ', '"variants": [], "variants": ', 1),
                     body.replace('"value": ', '"value": {"dup": 1}, "value": ', 1),
                     body.replace('"type": ', '"type": "nope", "type": ', 1),
                     body.replace('"range_start": ', '"range_start": "x", "range_start": ', 1),
                     body.replace('"targeting": ', '"targeting": 5, "targeting": ', 1)])


def render(doc):
    """The README layout: one list element (core call, load case, request) per line, compact JSON."""
    dumps = lambda o: json.dumps(o, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    out = ["{"]
    for i, (k, v) in enumerate(doc.items()):
        sep = "," if i < len(doc) - 1 else ""
        if isinstance(v, list):
            out.append(dumps(k) + ":[")
            out.extend(dumps(x) + ("," if j < len(v) - 1 else "") for j, x in enumerate(v))
            out.append("]" + sep)
        else:
            out.append(dumps(k) + ":" + dumps(v) + sep)
    return "\n".join(out + ["}"]) + "\n"


def main():
    global R, K
    if len(sys.argv) not in (4, 5):
        sys.exit(__doc__)
    out_dir, seed, nfiles = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    theme_arg = sys.argv[4] if len(sys.argv) == 5 else None
    assert theme_arg in THEMES + [None], "theme must be one of %s" % THEMES
    R = random.Random(seed)
    os.makedirs(out_dir, exist_ok=True)
    for fi in range(nfiles):
        theme = theme_arg or THEMES[fi % len(THEMES)]
        K = dict(KNOBS, **THEME_KNOBS.get(theme, {}))
        P = Pools()
        config = json.loads(dump_config(rconfig(P)))
        main_load, core_calls = load(dump_config(config), plan(P, config, R.randint(150, 300)))
        assert main_load["status"] != "init_error", main_load
        load_cases = [rload_case(P, config) for _ in range(R.randint(3, 8))]
        doc = {"format": 1, "generator": {"split": "fuzz", "seed": seed, "file_index": fi, "theme": theme},
               "packages": PACKAGES, "config": config, "load": main_load, "load_cases": load_cases,
               "core_calls": core_calls, "requests": []}
        path = os.path.join(out_dir, "%02d_%s.json" % (fi, theme))
        with open(path, "w", encoding="utf-8") as f:
            f.write(render(doc))
        print(path, main_load["status"], len(core_calls), "core calls,", len(load_cases), "load cases")


if __name__ == "__main__":
    main()
