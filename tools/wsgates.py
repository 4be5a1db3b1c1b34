# SPDX-License-Identifier: GPL-2.0
"""Review gates on every patch of the series.

- scripts/checkpatch.pl --strict on each patch: 0 errors, 0 warnings.
  CHECK lines are printed and counted, not fatal.
- scripts/kernel-doc -none on each C file and header the series adds or
  changes: no warning the base did not already have (-Wall as well on
  files the series adds).
- W=1 and sparse (C=2) on each object built from a C file the series
  touches: no warning on a line the series added, and no objtool warning
  at all on that object (objtool runs as it is recompiled).
"""

import os
import re
import subprocess
import tempfile

from wslib import BASE_REF, ROOT, WsError, banner, git, run, series_patches

TOTAL_RX = re.compile(r'total: (\d+) errors, (\d+) warnings, (?:(\d+) '
                      r'checks, )?(\d+) lines checked')
DIAG_RX = re.compile(r'^(\S+?):(\d+):(?:\d+:)? (warning|error): (.*)$', re.M)
OBJTOOL_RX = re.compile(r'^(\S+?): (?:warning|error): objtool: (.*)$', re.M)
KDOC_RX = re.compile(r'^(?:\S+?:\d+: )?(warning|error): (.*)$', re.M)


EXCEPTIONS = os.path.join(ROOT, 'tests', 'checkpatch-exceptions')
BUILD_EXCEPTIONS = os.path.join(ROOT, 'tests', 'build-warning-exceptions')


def read_build_exceptions():
    """{(file, warning text)} from tests/build-warning-exceptions."""
    allowed = set()
    if os.path.exists(BUILD_EXCEPTIONS):
        with open(BUILD_EXCEPTIONS) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                path, text, _why = (x.strip() for x in line.split(' | ', 2))
                allowed.add((path, text))
    return allowed


def read_exceptions():
    """{(patch, type): count} from tests/checkpatch-exceptions."""
    allowed = {}
    if os.path.exists(EXCEPTIONS):
        with open(EXCEPTIONS) as f:
            for line in f:
                line = line.strip()
                if not line or line.startswith('#'):
                    continue
                patch, typ, count, _why = line.split(None, 3)
                allowed[(patch, typ)] = int(count)
    return allowed


def checkpatch(ws, checks):
    patches = series_patches()
    script = os.path.join(ws.tree, 'scripts', 'checkpatch.pl')
    allowed = read_exceptions()
    total_checks = 0
    for p in patches:
        name = os.path.basename(p)
        r = run(['perl', script, '--strict', '--no-color', '--showfile',
                 '--show-types', p], cwd=ws.tree, check=False, capture=True)
        out = r.stdout
        m = TOTAL_RX.search(out)
        if not m:
            checks.add(f'checkpatch {name}', False,
                       'no summary line:\n' + out[-2000:])
            continue
        errs, warns = int(m.group(1)), int(m.group(2))
        nchk = int(m.group(3) or 0)
        total_checks += nchk
        for block in re.findall(r'^CHECK:.*(?:\n(?!\n).*)*', out, re.M):
            print(f'  {name}: {block}')
        # With --showfile a warning reads "file:line: WARNING:TYPE: ...".
        waived = {}
        for typ in re.findall(r'\bWARNING:(\w+):', out):
            if waived.get(typ, 0) < allowed.get((name, typ), 0):
                waived[typ] = waived.get(typ, 0) + 1
        unwaived = warns - sum(waived.values())
        for typ, n in waived.items():
            print(f'  {name}: {n} {typ} warning(s) allowed by '
                  'tests/checkpatch-exceptions')
        if errs or unwaived:
            print(out)
        checks.add(f'checkpatch --strict {name}', errs == 0 and not unwaived,
                   f'{errs} errors, {unwaived} warnings'
                   + (f' ({sum(waived.values())} allowed)' if waived else '')
                   + f', {nchk} checks')
    print(f'checkpatch: {total_checks} CHECK lines over {len(patches)} '
          'patches', flush=True)


def kdoc_warnings(ws, path, text, strict):
    with tempfile.NamedTemporaryFile('w', suffix=os.path.splitext(path)[1],
                                     delete=False) as f:
        f.write(text)
        tmp = f.name
    try:
        cmd = ['perl', os.path.join(ws.tree, 'scripts', 'kernel-doc'),
               '-none']
        if strict:
            cmd.append('-Wall')
        r = subprocess.run(cmd + [tmp], text=True, capture_output=True)
    finally:
        os.unlink(tmp)
    msgs = [m.group(2).replace(tmp, path)
            for m in KDOC_RX.finditer(r.stdout + r.stderr)]
    return msgs


def kernel_doc(ws, checks):
    added_files = set(git(ws.tree, 'diff', '--name-only', '--no-renames',
                          '--diff-filter=A', f'{BASE_REF}..HEAD').split())
    for path in ws.changed_files():
        if not path.endswith(('.c', '.h')):
            continue
        new = git(ws.tree, 'show', f'HEAD:{path}')
        is_new = path in added_files
        old = '' if is_new else git(ws.tree, 'show', f'{BASE_REF}:{path}')
        after = kdoc_warnings(ws, path, new, is_new)
        before = kdoc_warnings(ws, path, old, is_new) if old else []
        fresh = list(after)
        for msg in before:
            if msg in fresh:
                fresh.remove(msg)
        for msg in fresh:
            print(f'  kernel-doc {path}: {msg}')
        checks.add(f'kernel-doc {path}', not fresh,
                   f'{len(fresh)} new warnings' +
                   (' (-Wall)' if is_new else ''))


def normalise(ws, fname):
    """Map a compiler's file name to a path inside the work tree."""
    if fname.startswith(ws.tree + '/'):
        return fname[len(ws.tree) + 1:]
    p = os.path.normpath(os.path.join(ws.build_dir, fname))
    if p.startswith(ws.tree + '/'):
        return p[len(ws.tree) + 1:]
    return fname


def w1_sparse(ws, checks):
    added = ws.added_lines()
    allowed = read_build_exceptions()
    for path in ws.changed_files():
        if not path.endswith('.c') or not path.startswith(
                ('arch/', 'kernel/', 'mm/', 'lib/', 'drivers/', 'include/')):
            continue
        obj = path[:-2] + '.o'
        if not os.path.exists(os.path.join(ws.build_dir, obj)):
            checks.skip(f'W=1/sparse {obj}',
                        'not built in this configuration')
            continue
        # One job: two jobs of one make on a single object have raced
        # and left a torn .cmd file behind, which broke the next build.
        r = ws.make(obj, capture=True, check=False,
                    extra=['W=1', 'C=2', '-j1'])
        ours = []
        for m in DIAG_RX.finditer(r.stdout):
            f = normalise(ws, m.group(1))
            if (f, m.group(4).strip()) in allowed:
                print(f'  accepted (tests/build-warning-exceptions): '
                      f'{f}:{m.group(2)}: {m.group(4)}')
                continue
            if int(m.group(2)) in added.get(f, ()):
                ours.append(f'{f}:{m.group(2)}: {m.group(3)}: '
                            f'{m.group(4)}')
        # objtool checks the whole object (noinstr, uaccess, stack
        # validation): any of its warnings on an object the series
        # touches counts, not only those on added lines.
        for m in OBJTOOL_RX.finditer(r.stdout):
            f, msg = normalise(ws, m.group(1)), m.group(2).strip()
            if (f, msg) not in allowed:
                ours.append(f'{f}: warning: objtool: {msg}')
        for line in ours:
            print(f'  {line}')
        ok = r.returncode == 0 and not ours
        detail = f'{len(ours)} warnings on added lines'
        if r.returncode:
            detail += '; build failed:\n' + r.stdout[-2000:]
        checks.add(f'W=1/sparse {obj}', ok, detail)


def run_gates(ws, checks):
    if not ws.tree_exists():
        raise WsError(f'no work tree at {ws.tree}')
    if not os.path.exists(ws.bzimage()):
        raise WsError('build the kernel first: the W=1/sparse gate '
                      'rebuilds the objects the series touches')
    with banner('gate: checkpatch.pl --strict'):
        checkpatch(ws, checks)
    with banner('gate: kernel-doc'):
        kernel_doc(ws, checks)
    with banner('gate: W=1 and sparse'):
        w1_sparse(ws, checks)
