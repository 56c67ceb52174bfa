#!/usr/bin/env python3
"""Every log message kyufud can write is in docs/operations.md "Log
messages", with its level: this test reads the sources for kyufu_log( and
kyufu_log0( calls and fails, naming them, on a message missing from the
table, listed with another level, given as no string literal (the catalogue
could not see it), or listed but no longer in the code.

    log_catalog.py SOURCE_ROOT            check (the meson test)
    log_catalog.py SOURCE_ROOT --list     print the calls found (to add rows)
"""
import os
import re
import sys

CALL = re.compile(r'\bkyufu_log0?\s*\(\s*([^,]+?)\s*,\s*("(?:[^"\\]|\\.)*"(?:\s*"(?:[^"\\]|\\.)*")*)?')
LEVELS = {'KYUFU_LOG_DEBUG': 'debug', 'KYUFU_LOG_INFO': 'info',
          'KYUFU_LOG_WARN': 'warn', 'KYUFU_LOG_ERROR': 'error'}
# Directories with kyufud code (tests and chaos tools are not the daemon).
DIRS = ['node', 'raft-glue', 'api', 'storage']
# Messages that are not literals at the call: node.c on_glue_event logs
# raft-glue's events by their `what` (raft-glue/glue.h struct
# kyufu_glue_event), warn for a refused peer, a failed snapshot send and a
# repaired configuration, info for the other snapshot events.
GLUE_EVENT_CALL = 'e->what'
GLUE_WHAT = re.compile(r'(?:\[GLUE_SNAPSHOT_SEND_\w+\]|\bwhat)\s*=\s*"([^"]+)"')
GLUE_WARN = {'raft peer refused', 'raft peer closed: certificate revoked',
             'snapshot send failed', 'raft configuration repaired'}
# A row: | `message` | level | ... |
ROW = re.compile(r'^\|\s*`([^`]+)`\s*\|\s*([a-z/ ]+?)\s*\|')


def strip_comments(text):
    # Comments out, line breaks kept (so line numbers stay right).
    return re.sub(r'/\*.*?\*/|//[^\n]*', lambda m: re.sub(r'[^\n]', ' ', m.group(0)), text,
                  flags=re.S)


def glue_events(root, where, found):
    text = open(os.path.join(root, 'raft-glue', 'glue.c'), encoding='utf-8').read()
    for what in GLUE_WHAT.findall(strip_comments(text)):
        level = 'warn' if what in GLUE_WARN else 'info'
        found.setdefault(what, {}).setdefault(level, []).append(where + ' (raft-glue event)')


def calls(root):
    found = {}  # message -> set of levels
    problems = []
    for d in DIRS:
        for dirpath, _, files in os.walk(os.path.join(root, d)):
            for f in sorted(files):
                if not f.endswith('.c'):
                    continue
                path = os.path.join(dirpath, f)
                text = strip_comments(open(path, encoding='utf-8').read())
                for m in CALL.finditer(text):
                    line = text.count('\n', 0, m.start()) + 1
                    where = '%s:%d' % (os.path.relpath(path, root), line)
                    if m.group(0).startswith('kyufu_log_'):
                        continue
                    # A level or `cond ? KYUFU_LOG_A : KYUFU_LOG_B`.
                    names = re.findall(r'KYUFU_LOG_[A-Z]+', m.group(1))
                    rest = re.sub(r'KYUFU_LOG_[A-Z]+|[\s?:]', '', m.group(1))
                    if m.group(1).count('?') == 1 and len(names) == 2:
                        rest = ''  # the condition is free; both levels count
                    levels = [LEVELS.get(x) for x in names]
                    if m.group(2) is None:
                        after = text[m.end():m.end() + 40]
                        if after.split(',')[0].strip() == GLUE_EVENT_CALL:
                            glue_events(root, where, found)
                            continue
                        problems.append('%s: message is not a string literal' % where)
                        continue
                    parts = re.findall(r'"((?:[^"\\]|\\.)*)"', m.group(2))
                    msg = ''.join(parts)
                    if not levels or None in levels or (len(levels) > 1 and rest):
                        problems.append('%s: "%s": level %s is not a constant'
                                        % (where, msg, m.group(1).strip()))
                        continue
                    for level in levels:
                        found.setdefault(msg, {}).setdefault(level, []).append(where)
    return found, problems


def documented(root):
    rows = {}
    path = os.path.join(root, 'docs', 'operations.md')
    in_section = False
    for line in open(path, encoding='utf-8'):
        if line.startswith('## '):
            in_section = line.strip() == '## Log messages'
            continue
        m = ROW.match(line) if in_section else None
        if m:
            rows[m.group(1)] = set(x.strip() for x in m.group(2).split('/'))
    return rows


def main():
    root = sys.argv[1]
    found, problems = calls(root)
    if len(sys.argv) > 2 and sys.argv[2] == '--list':
        for msg in sorted(found):
            print('%-50s %s %s' % (msg, '/'.join(sorted(found[msg])),
                                   ' '.join(w for ws in found[msg].values() for w in ws)))
        return 0
    if not found:
        problems.append('no kyufu_log calls found under %s: wrong root?' % root)
    rows = documented(root)
    for msg, levels in sorted(found.items()):
        where = ', '.join(w for ws in levels.values() for w in ws)
        if msg not in rows:
            problems.append('"%s" (%s) is not in docs/operations.md "Log messages"'
                            % (msg, where))
        elif set(levels) != rows[msg]:
            problems.append('"%s" (%s): logged as %s, documented as %s'
                            % (msg, where, '/'.join(sorted(levels)),
                               '/'.join(sorted(rows[msg]))))
    for msg in sorted(set(rows) - set(found)):
        problems.append('"%s" is documented but no code logs it' % msg)
    for p in problems:
        print('log catalogue: ' + p, file=sys.stderr)
    print('%d messages, %d documented, %d problems' % (len(found), len(rows), len(problems)))
    return 1 if problems else 0


if __name__ == '__main__':
    sys.exit(main())
