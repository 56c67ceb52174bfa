"""Every kyufud config sample in docs/*.md, ready for --check-config: used
by config_test.sh so that no sample in the guides can be one kyufud
refuses.

A sample is a fenced block with a [node], [cluster], [tls], [raft], [log],
[api], [power] or [sla] section header.  A whole config (it has [node] and
[cluster]) is written as it is, with the values of data_dir, ca, cert,
key, crl_file and slo_file replaced by files that exist here (the guides name the
hosts' paths; slo_file becomes a minimal valid SLO file).
A fragment (a key or two, e.g. docs/power.md's [power], docs/metrics.md's
[node] metrics keys) is laid over the first whole sample of
docs/operations.md: each key it sets replaces that key of the same
section, or is added to it.

  usage: doc_configs.py DOCS_DIR OUT_DIR DATA_PARENT CA CERT KEY
Prints one line per sample: "<written file> <doc>:<line>"."""
import glob
import os
import re
import sys

docs, out, data_parent, ca, cert, key = sys.argv[1:7]
SECTION = re.compile(r"^\[(node|cluster|tls|raft|log|api|power|sla)\]", re.M)
FENCE = re.compile(r"^( *)```[a-z]*\n(.*?)^\1```", re.M | re.S)
# A sample's slo_file names the host's SLO file: a minimal valid one here.
SLO = os.path.join(out, "doc-sample-slo.conf")
with open(SLO, "w") as f:
    f.write("[availability]\ntarget_percent = 99.9\n[rto]\ntarget_ms = 10000\n")
# crl_file: --check-config only needs a file there (the node reads the CRL
# when it starts), so the CA file stands in.
REPLACE = {"data_dir": None, "ca": ca, "cert": cert, "key": key,
           "slo_file": SLO, "crl_file": ca}


def sections(text):
    """[(name, [lines])] in order; lines before the first header under ''."""
    result = [("", [])]
    for line in text.splitlines():
        m = re.match(r"^\[(\w+)\]", line)
        if m:
            result.append((m.group(1), []))
        result[-1][1].append(line)
    return result


def samples():
    base = None
    for path in sorted(glob.glob(os.path.join(docs, "*.md"))):
        with open(path) as f:
            text = f.read()
        for m in FENCE.finditer(text):
            indent = len(m.group(1))
            body = "\n".join(l[indent:] for l in m.group(2).splitlines()) + "\n"
            if not SECTION.search(body):
                continue
            where = "%s:%d" % (os.path.basename(path), text[:m.start()].count("\n") + 1)
            whole = (re.search(r"^\[node\]", body, re.M) is not None and
                     re.search(r"^\[cluster\]", body, re.M) is not None)
            if whole and base is None and path.endswith("operations.md"):
                base = body
            yield where, whole, body
    if base is None:
        sys.exit("no whole sample config in docs/operations.md")
    samples.base = base


def localize(body, n):
    lines = []
    for line in body.splitlines():
        m = re.match(r"^(\s*)(data_dir|ca|cert|key|slo_file|crl_file)(\s*=\s*)\S+(.*)$", line)
        if m:
            value = REPLACE[m.group(2)] or os.path.join(data_parent, "data%d" % n)
            line = m.group(1) + m.group(2) + m.group(3) + value + m.group(4)
        lines.append(line)
    return "\n".join(lines) + "\n"


def key_of(line):
    m = re.match(r"^\s*([A-Za-z0-9_]+)\s*=", line)
    return m.group(1) if m else None


def overlay(base, fragment):
    """base with each key of fragment's sections set (replaced or added)."""
    want = {}
    for name, ls in sections(fragment):
        if name:
            want.setdefault(name, []).extend(l for l in ls[1:] if key_of(l))
    out = []
    for name, ls in sections(base):
        own = {key_of(l): l for l in want.pop(name, [])}
        for l in ls:
            k = key_of(l)
            out.append(own.pop(k) if k in own else l)
        out.extend(own.values())
    for name, ls in want.items():
        out.append("[%s]" % name)
        out.extend(ls)
    return "\n".join(out) + "\n"


found = list(samples())
for n, (where, whole, body) in enumerate(found, 1):
    if not whole:
        body = overlay(samples.base, body)
    dest = os.path.join(out, "doc-sample-%d.conf" % n)
    with open(dest, "w") as f:
        f.write(localize(body, n))
    print(dest, where)
