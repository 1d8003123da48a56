#!/usr/bin/env python3
"""Import circles between the crate's top-level modules and folders.

Usage: python3 scripts/import-circles.py [src] [--with-tests] [--edges]

Every `crate::<name>` path (including each name inside `use crate::{a, b::c}`)
in a file under src/<top>/ or src/<top>.rs counts as an edge <top> -> <name>.
Comments (doc links included) are not imports and are skipped; so are
`#[cfg(test)]` items unless --with-tests is given, since a unit test that
starts the whole app is not a dependency of the library. `main.rs` and
`lib.rs` sit above everything and are left out. Prints each strongly
connected component of more than one module (a circle), with the edges inside
it, and exits 1 if there is any; --edges prints every edge too.
"""
import os
import re
import sys

args = [a for a in sys.argv[1:] if not a.startswith('--')]
flags = {a for a in sys.argv[1:] if a.startswith('--')}
root = args[0] if args else 'src'
with_tests = '--with-tests' in flags


def top(path):
    name = os.path.relpath(path, root).split(os.sep)[0]
    return name[:-3] if name.endswith('.rs') else name


def strip_comments(src):
    # Drop // comments (not inside strings: good enough for this crate) and /* */.
    out = []
    for line in src.split('\n'):
        i, in_str = 0, False
        while i < len(line):
            c = line[i]
            if c == '"' and (i == 0 or line[i - 1] != '\\'):
                in_str = not in_str
            if not in_str and line.startswith('//', i):
                line = line[:i]
                break
            i += 1
        out.append(line)
    return re.sub(r'/\*.*?\*/', '', '\n'.join(out), flags=re.S)


def strip_cfg_test(src):
    # Remove `#[cfg(test)]` followed by an item: to its `;` or its matched braces.
    while True:
        m = re.search(r'#\[cfg\(test\)\]', src)
        if not m:
            return src
        j = m.end()
        while j < len(src) and src[j] not in '{;':
            j += 1
        if j < len(src) and src[j] == '{':
            depth = 0
            while j < len(src):
                if src[j] == '{':
                    depth += 1
                elif src[j] == '}':
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
        src = src[:m.start()] + src[j + 1:]


def group_names(src, start):
    # Names at the first level of the brace group opening at src[start] == '{'.
    depth, names, tok = 0, [], ''
    for c in src[start:]:
        if c == '{':
            depth += 1
            if depth == 1:
                continue
        elif c == '}':
            depth -= 1
            if depth == 0:
                break
        if depth == 1:
            if c == ',':
                names.append(tok)
                tok = ''
            else:
                tok += c
    names.append(tok)
    return [re.match(r'\s*([a-z_][a-z0-9_]*)', n).group(1) for n in names if re.match(r'\s*[a-z_]', n)]


deps = {}
for d, _, files in os.walk(root):
    for f in files:
        if not f.endswith('.rs'):
            continue
        p = os.path.join(d, f)
        t = top(p)
        if t in ('main', 'lib'):
            continue
        src = strip_comments(open(p).read())
        if not with_tests:
            src = strip_cfg_test(src)
        used = set(re.findall(r'\bcrate::([a-z_][a-z0-9_]*)', src))
        for m in re.finditer(r'\bcrate::\{', src):
            used.update(group_names(src, m.end() - 1))
        used.discard(t)
        used.discard('self')
        deps.setdefault(t, set()).update(used)

nodes = set(deps) | {x for v in deps.values() for x in v}
index, low, stack, on, comps, counter = {}, {}, [], set(), [], [0]


def connect(v):
    index[v] = low[v] = counter[0]
    counter[0] += 1
    stack.append(v)
    on.add(v)
    for w in sorted(deps.get(v, ())):
        if w not in index:
            connect(w)
            low[v] = min(low[v], low[w])
        elif w in on:
            low[v] = min(low[v], index[w])
    if low[v] == index[v]:
        comp = []
        while True:
            w = stack.pop()
            on.discard(w)
            comp.append(w)
            if w == v:
                break
        if len(comp) > 1:
            comps.append(comp)


sys.setrecursionlimit(10000)
for v in sorted(nodes):
    if v not in index:
        connect(v)
if '--edges' in flags:
    for a in sorted(deps):
        print(a, '->', ', '.join(sorted(deps[a])))
for comp in comps:
    print('cycle:', sorted(comp))
    for a in sorted(comp):
        print('  ', a, '->', sorted(deps.get(a, set()) & set(comp)))
if not comps:
    print('no import circles')
sys.exit(1 if comps else 0)
