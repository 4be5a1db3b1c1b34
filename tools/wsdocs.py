# SPDX-License-Identifier: GPL-2.0
"""Documentation gate: the series' docs build as cleanly as the base's.

- make htmldocs SPHINXDIRS="mm arch/x86" (the two directories the series
  writes documentation in) with Debian's Sphinx, in the base and in the
  series tree: no warning the base does not give.  stderr is compared
  line by line as a multiset, with the tree and O= prefixes and all line
  numbers removed (lines move); a line the series gives more often than
  the base is new.  Sphinx and kernel-doc warn on stderr and still exit
  0, so the exit status alone would pass a broken document.
- Each .rst file the series adds under Documentation/ is named in a
  toctree of an index.rst of its directory or a parent's, and not only
  in one under an "Unsorted" heading: Documentation/mm/index.rst keeps
  such a toctree for old documents still to be sorted, and a new one
  belongs in the structured part.

Both trees are built out of tree in work/docs/ (the base from the
shared checkout work/base-src); the base's warnings are cached in the
machine-wide cache ($WS_CACHE/docs-base-stderr.json) by the base commit
and the Sphinx version, so a warm run, in a new clone too, builds only
the series.
6.12's htmldocs also writes the netlink specs' .rst files into the
source tree whatever O= says; they are sent to the O= directory instead.
"""

import collections
import fnmatch
import json
import os
import re
import shutil
import subprocess
import time

import wslib
from wslib import BASE_REF, WsError, banner, fmt_secs, git, info, run

# Debian packages the gate needs, in wslib.PACKAGES' format.  Sphinx 5.3
# with its default alabaster theme is what 6.12's conf.py asks for; the
# netlink spec generator that htmldocs always runs needs PyYAML.  dot,
# LaTeX and dvipng are optional (no figure in mm or arch/x86 needs them).
PACKAGES = [
    ('python3-sphinx', 'sphinx-build'),
    ('python3-yaml', 'dpkg:python3-yaml'),
]

SPHINXDIRS = 'mm arch/x86'
JOBS = 2
LINE_NO = re.compile(r':\d+(?=[:\s.,;)]|$)')
UNSORTED = re.compile(r'unsorted', re.I)


def sphinx_version():
    return run(['sphinx-build', '--version'], capture=True).stdout.strip()


# ---------------------------------------------------------------------------
# Building and reading the warnings

def htmldocs(tree, out):
    """Build the docs of tree into O=out from scratch; return (rc, stderr).

    The output is removed first: an incremental Sphinx build re-reads only
    changed documents and so repeats none of the others' warnings.
    """
    shutil.rmtree(os.path.join(out, 'Documentation', 'output'),
                  ignore_errors=True)
    ynl = os.path.join(out, 'netlink_spec')
    os.makedirs(ynl, exist_ok=True)
    cmd = ['make', '-C', tree, f'O={out}', f'-j{JOBS}',
           f'SPHINXDIRS={SPHINXDIRS}', f'YNL_RST_DIR={ynl}',
           f'YNL_INDEX={ynl}/index.rst', 'htmldocs']
    log = os.path.join(out, 'htmldocs-stderr.log')
    t0 = time.monotonic()
    with open(os.path.join(out, 'htmldocs.log'), 'w') as o, \
            open(log, 'w') as e:
        proc = subprocess.Popen(cmd, stdout=o, stderr=e)
        while True:
            try:
                rc = proc.wait(timeout=60)
                break
            except subprocess.TimeoutExpired:
                print(f'    ... still running '
                      f'({fmt_secs(time.monotonic() - t0)})', flush=True)
    with open(log) as f:
        return rc, f.read()


def warnings_of(stderr, prefixes):
    """The build's stderr as lines, normalised: no prefix, no line number.

    All of stderr counts, not only lines saying WARNING: kernel-doc's
    warnings and an extension's traceback are news too.  Lines are
    compared one by one, not grouped into messages: Sphinx quotes the
    source after some warnings on lines of their own, and its parallel
    build orders warnings differently from run to run, so a grouping
    could differ where the warnings do not.
    """
    lines = []
    for line in stderr.splitlines():
        if line.strip():
            for p in prefixes:
                line = line.replace(p.rstrip('/') + '/', '')
            lines.append(LINE_NO.sub('', line.rstrip()))
    return lines


def base_warnings(ws, docs):
    """The base's warnings, built once per base commit and Sphinx version.

    The cache keeps the raw stderr, so a change to the normalisation
    needs no rebuild.
    """
    repo = wslib.ensure_base()
    sha = git(repo, 'rev-parse', f'{BASE_REF}^{{commit}}')
    key = {'base': sha, 'sphinx': sphinx_version(), 'dirs': SPHINXDIRS}
    out = os.path.join(docs, 'base')
    # Machine-wide: a new clone or work directory reuses it.
    cache = os.path.join(wslib.cache_dir(), 'docs-base-stderr.json')
    if os.path.exists(cache):
        with open(cache) as f:
            data = json.load(f)
        if data.get('key') == key:
            info(f'base docs: warnings cached for {sha[:12]} ({cache})')
            return warnings_of(data['stderr'], data['prefixes'])
    src = wslib.base_checkout(ws.work)
    os.makedirs(out, exist_ok=True)
    with banner(f'htmldocs SPHINXDIRS="{SPHINXDIRS}" of the base'):
        rc, err = htmldocs(src, out)
    if rc:
        raise WsError(f'htmldocs of the base failed ({rc}); see '
                      f'{out}/htmldocs-stderr.log:\n{err[-2000:]}')
    with open(cache, 'w') as f:
        json.dump({'key': key, 'prefixes': [src, out], 'stderr': err}, f,
                  indent=1)
    return warnings_of(err, [src, out])


def new_warnings(ws, checks, docs):
    """Build the series' docs; FAIL on each warning the base lacks."""
    base = base_warnings(ws, docs)
    if git(ws.tree, '--no-optional-locks', 'status', '--porcelain'):
        info(f'{ws.tree} has uncommitted changes: its docs are built from '
             'the files as they are')
    tree, out = os.path.abspath(ws.tree), os.path.join(docs, 'series')
    os.makedirs(out, exist_ok=True)
    with banner(f'htmldocs SPHINXDIRS="{SPHINXDIRS}" of the series'):
        rc, err = htmldocs(tree, out)
    checks.add(f'docs: htmldocs SPHINXDIRS="{SPHINXDIRS}" builds', rc == 0,
               f'exit status {rc}' + (f':\n{err[-2000:]}' if rc else ''))
    series = warnings_of(err, [tree, out])
    fresh = collections.Counter(series) - collections.Counter(base)
    extra = collections.Counter(fresh)
    for line in series:
        if extra[line]:
            extra[line] -= 1
            print(f'  new: {line}')
    checks.add('docs: no new htmldocs warnings against the base', not fresh,
               f'{sum(fresh.values())} new lines on stderr; '
               f'{len(series)} lines, base {len(base)}')
    return series


# ---------------------------------------------------------------------------
# Reachability of the new documents

def toctrees(text):
    """[(heading, line of the directive, [(entry, line)], glob)] of a file.

    The heading is the title of the section the toctree sits in: a line
    underlined by a run of one punctuation character at least as long.
    """
    lines = text.splitlines()
    trees, heading, i = [], '', 0
    while i < len(lines):
        line = lines[i]
        nxt = lines[i + 1] if i + 1 < len(lines) else ''
        if (line.strip() and not line.startswith(' ')
                and re.fullmatch(r'([=\-~^"\'`#*+_.:])\1*', nxt.strip())
                and len(nxt.strip()) >= len(line.strip())):
            heading = line.strip()
        if re.match(r'^\s*\.\. toctree::', line):
            entries, glob, j = [], False, i + 1
            while j < len(lines) and (not lines[j].strip()
                                      or lines[j].startswith((' ', '\t'))):
                s = lines[j].strip()
                if s == ':glob:':
                    glob = True
                elif s and not s.startswith(':'):
                    m = re.search(r'<([^>]+)>$', s)
                    entries.append((m.group(1) if m else s, j + 1))
                j += 1
            trees.append((heading, i + 1, entries, glob))
            i = j
            continue
        i += 1
    return trees


def show(ws, path):
    """A file's text at HEAD of the work tree, or None."""
    r = run(['git', '-C', ws.tree, 'show', f'HEAD:{path}'], check=False,
            capture=True)
    return r.stdout if r.returncode == 0 else None


def find_in_toctrees(ws, path):
    """[(index.rst, heading, directive line, entry line)] naming path.

    Looks in the index.rst of the file's directory and of each parent up
    to Documentation/, at HEAD of the work tree.
    """
    doc = path[:-len('.rst')]
    hits, d = [], os.path.dirname(path)
    while d.startswith('Documentation'):
        index = f'{d}/index.rst'
        text = show(ws, index)
        if text is not None and index != path:
            rel = os.path.relpath(doc, d)
            absn = '/' + os.path.relpath(doc, 'Documentation')
            for heading, at, entries, glob in toctrees(text):
                for entry, line in entries:
                    name = entry[:-4] if entry.endswith('.rst') else entry
                    if name in (rel, absn) or (glob and fnmatch.fnmatch(
                            rel, name)):
                        hits.append((index, heading, at, line))
        d = os.path.dirname(d)
    return hits


def reachability(ws, checks, series_warns):
    """One check per .rst the series adds: in a sorted toctree of an index.

    Sphinx warns only about a document in no toctree at all; one filed
    under "Unsorted" builds cleanly, so only this check catches it.
    """
    added = git(ws.tree, 'diff', '--name-only', '--no-renames',
                '--diff-filter=A', f'{BASE_REF}..HEAD', '--',
                'Documentation/*.rst').split()
    if not added:
        checks.skip('docs: new .rst files in a sorted toctree',
                    'the series adds no .rst file under Documentation/')
    for path in added:
        hits = find_in_toctrees(ws, path)
        sorted_hits = [h for h in hits if not UNSORTED.search(h[1])]
        said = [w for w in series_warns
                if w.startswith((path + ':', path[:-len('.rst')] + ':'))]
        for w in said:
            print(f'  Sphinx on {path}: {w}')
        where = '; '.join(f'{i}:{ln} (toctree at line {at}, under '
                          f'"{hd}")' for i, hd, at, ln in hits)
        if sorted_hits:
            detail = f'in {where}'
        elif hits:
            index, _, _, line = hits[0]
            first = [t for t in toctrees(show(ws, index))
                     if not UNSORTED.search(t[0])]
            target = (f'the toctree at line {first[0][1]}' if first else
                      'a toctree outside the unsorted section')
            detail = (f'only in an unsorted toctree: {where}; move line '
                      f'{line} of {index} into {target}')
        else:
            detail = (f'in no toctree of an index.rst of '
                      f'{os.path.dirname(path)} or its parents')
        detail += f'; Sphinx warnings about it: {len(said)}'
        checks.add(f'docs: {path} in a sorted toctree', bool(sorted_hits),
                   detail)


def run_gate(ws, checks):
    if not ws.tree_exists():
        raise WsError(f'no work tree at {ws.tree}')
    wslib.setup_packages(PACKAGES)
    docs = os.path.abspath(os.path.join(ws.work, 'docs'))
    os.makedirs(docs, exist_ok=True)
    with banner('gate: htmldocs warnings'):
        series_warns = new_warnings(ws, checks, docs)
    with banner('gate: new documents in an index'):
        reachability(ws, checks, series_warns)
