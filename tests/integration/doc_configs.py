"""Every kyufud config sample in docs/*.md, ready for --check-config: used
by config_test.sh so that no sample in the guides can be one kyufud
refuses.

A sample is a fenced block with a [node], [cluster], [tls], [raft], [log],
[api] or [power] section header.  A whole config (it has [node]) is written
as it is, with the values of data_dir, ca, cert and key replaced by files
that exist here (the guides name the hosts' paths).  A fragment (a section
or two, e.g. docs/power.md's [power]) is written into the first whole
sample of docs/operations.md in place of the sections it sets.

  usage: doc_configs.py DOCS_DIR OUT_DIR DATA_PARENT CA CERT KEY
Prints one line per sample: "<written file> <doc>:<line>"."""
import glob
import os
import re
import sys

docs, out, data_parent, ca, cert, key = sys.argv[1:7]
SECTION = re.compile(r"^\[(node|cluster|tls|raft|log|api|power)\]", re.M)
FENCE = re.compile(r"^( *)```[a-z]*\n(.*?)^\1```", re.M | re.S)
REPLACE = {"data_dir": None, "ca": ca, "cert": cert, "key": key}


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
            whole = re.search(r"^\[node\]", body, re.M) is not None
            if whole and base is None and path.endswith("operations.md"):
                base = body
            yield where, whole, body
    if base is None:
        sys.exit("no whole sample config in docs/operations.md")
    samples.base = base


def localize(body, n):
    lines = []
    for line in body.splitlines():
        m = re.match(r"^(\s*)(data_dir|ca|cert|key)(\s*=\s*)\S+(.*)$", line)
        if m:
            value = REPLACE[m.group(2)] or os.path.join(data_parent, "data%d" % n)
            line = m.group(1) + m.group(2) + m.group(3) + value + m.group(4)
        lines.append(line)
    return "\n".join(lines) + "\n"


found = list(samples())
for n, (where, whole, body) in enumerate(found, 1):
    if not whole:
        own = {name for name, _ in sections(body) if name}
        merged = [l for name, ls in sections(samples.base) if name not in own for l in ls]
        body = "\n".join(merged) + "\n" + body
    dest = os.path.join(out, "doc-sample-%d.conf" % n)
    with open(dest, "w") as f:
        f.write(localize(body, n))
    print(dest, where)
