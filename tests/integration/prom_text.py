"""A strict reader of Prometheus' text exposition format 0.0.4, for the
metrics tests: it refuses what a lenient scraper would let pass.

Rules checked (docs/metrics.md, "Conventions"): every sample belongs to a
family announced by # HELP then # TYPE (once each, before its samples, the
family's samples contiguous); names are kyufu_-prefixed; counters end in
_total; histograms have _bucket samples with strictly increasing `le`
ending in +Inf, cumulative counts that never decrease, +Inf == _count, and
a _sum; label values are properly quoted and escaped; no duplicate series.
"""
import math
import re

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\[\\"n])*)"')


def _labels(text, where):
    out = {}
    pos = 0
    while pos < len(text):
        m = LABEL.match(text, pos)
        if m is None:
            raise ValueError("%s: bad labels %r" % (where, text))
        name = m.group(1)
        if name in out:
            raise ValueError("%s: label %s twice" % (where, name))
        out[name] = (m.group(2).replace("\\n", "\n").replace('\\"', '"')
                     .replace("\\\\", "\\"))
        pos = m.end()
        if pos < len(text):
            if text[pos] != ",":
                raise ValueError("%s: bad labels %r" % (where, text))
            pos += 1
    return out


def _value(s, where):
    if s in ("+Inf", "-Inf", "NaN"):
        return float(s.replace("Inf", "inf").replace("NaN", "nan"))
    if not re.fullmatch(r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?", s):
        raise ValueError("%s: bad value %r" % (where, s))
    return float(s)


def parse(text):
    """{family: {"type", "help", "samples": {name: [(labels, value)]}}};
    raises ValueError at the first breach."""
    if not text.endswith("\n"):
        raise ValueError("exposition does not end with a newline")
    fams = {}
    current = None
    done = set()
    seen = set()
    for no, line in enumerate(text.split("\n")[:-1], 1):
        where = "line %d" % no
        if line.startswith("# HELP "):
            name, _, help_ = line[7:].partition(" ")
            if not NAME.match(name) or not help_:
                raise ValueError("%s: bad HELP" % where)
            if name in fams:
                raise ValueError("%s: %s announced twice" % (where, name))
            if current is not None:
                done.add(current)
            fams[name] = {"help": help_, "type": None, "samples": {}}
            current = name
            continue
        if line.startswith("# TYPE "):
            name, _, typ = line[7:].partition(" ")
            if name != current or fams[name]["type"] is not None:
                raise ValueError("%s: TYPE not right after its HELP" % where)
            if typ not in ("counter", "gauge", "histogram"):
                raise ValueError("%s: type %r" % (where, typ))
            fams[name]["type"] = typ
            continue
        if line.startswith("#") or line == "":
            raise ValueError("%s: unexpected %r" % (where, line))
        m = re.fullmatch(r"([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)",
                         line)
        if m is None:
            raise ValueError("%s: bad sample %r" % (where, line))
        name, labels = m.group(1), _labels(m.group(3) or "", where)
        v = _value(m.group(4), where)
        fam = current
        if fam is None or fams[fam]["type"] is None:
            raise ValueError("%s: sample before HELP and TYPE" % where)
        typ = fams[fam]["type"]
        if typ == "histogram":
            if name not in (fam + "_bucket", fam + "_sum", fam + "_count"):
                raise ValueError("%s: %s outside its family %s"
                                 % (where, name, fam))
        elif name != fam:
            raise ValueError("%s: %s outside its family %s"
                             % (where, name, fam))
        key = (name, tuple(sorted(labels.items())))
        if key in seen:
            raise ValueError("%s: duplicate series %s" % (where, key))
        seen.add(key)
        fams[fam]["samples"].setdefault(name, []).append((labels, v))
    for name, f in fams.items():
        if not name.startswith("kyufu_"):
            raise ValueError("%s: not kyufu_-prefixed" % name)
        if f["type"] is None:
            raise ValueError("%s: no TYPE" % name)
        if (f["type"] == "counter") != name.endswith("_total"):
            raise ValueError("%s: only counters end in _total" % name)
        if f["type"] == "histogram":
            _check_histogram(name, f["samples"])
        for samples in f["samples"].values():
            for _, v in samples:
                if f["type"] == "counter" and not v >= 0:
                    raise ValueError("%s: negative counter" % name)
    return fams


def _check_histogram(name, samples):
    series = {}
    for labels, v in samples.get(name + "_bucket", []):
        if "le" not in labels:
            raise ValueError("%s: bucket without le" % name)
        rest = tuple(sorted((k, x) for k, x in labels.items() if k != "le"))
        series.setdefault(rest, []).append((_value(labels["le"], name), v))
    counts = {tuple(sorted(lab.items())): v
              for lab, v in samples.get(name + "_count", [])}
    sums = {tuple(sorted(lab.items())) for lab, _ in
            samples.get(name + "_sum", [])}
    if set(series) != set(counts) or set(counts) != sums:
        raise ValueError("%s: buckets, _sum and _count do not pair" % name)
    for rest, buckets in series.items():
        les = [le for le, _ in buckets]
        if les != sorted(set(les)) or not math.isinf(les[-1]):
            raise ValueError("%s%s: le not increasing to +Inf" % (name, rest))
        vals = [v for _, v in buckets]
        if any(b < a for a, b in zip(vals, vals[1:])):
            raise ValueError("%s%s: buckets decrease" % (name, rest))
        if vals[-1] != counts[rest]:
            raise ValueError("%s%s: +Inf != _count" % (name, rest))
