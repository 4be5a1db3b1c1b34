# SPDX-License-Identifier: GPL-2.0
"""Every prefix of the series: it compiles (gate), it builds and boots
("tools/ws bisect").

A series is applied, bisected and backported one patch at a time, so each
prefix must build and boot, not only the tip.  Two levels:

- The prefix gate, in the test command: a scratch tree (work/prefix/) is
  set to the base, configured with kernel-config/ and then given the
  patches one at a time with git am.  After each patch it compiles the
  objects of the test configuration that the patch touches (each .c it
  changes, and for a header a fixed sample that includes the common mm
  headers).  One check per patch; the first failing prefix is named.  The
  result of a prefix is kept in the machine-wide cache, keyed by the base,
  the patch-ids of the prefix, the fragments, the objects and the
  compiler, so that a warm run, in a new clone too, rebuilds only
  prefixes whose inputs changed.

- "tools/ws bisect": a full build and a smoke boot of each prefix with the
  debug configuration (lockdep, KASAN, DEBUG_VM).  Far too slow for CI on
  2 cores, so it writes tests/bisect-results, one line per patch keyed by
  its git patch-id and by the hash of the patch-ids of its whole prefix.
  The test command checks that the file covers the current series: a
  patch without a current line makes the check fail, or skip (naming the
  stale patches) while no full run has been recorded yet.
"""

import hashlib
import json
import os
import re
import subprocess
import time

import wsboot
import wslib
from wslib import (BASE_REF, ROOT, Workspace, WsError, banner, clone_base,
                   ensure_base, fmt_secs, git, identity, info, run,
                   series_patches, patch_subject)

BISECT_RESULTS = os.path.join(ROOT, 'tests', 'bisect-results')
# Objects that include the mm headers the series changes (mm.h, pgalloc,
# pgtable): built after a patch that changes only headers.
HEADER_SAMPLE = ['mm/memory.o', 'kernel/fork.o', 'arch/x86/mm/pgtable.o']
SOURCE_DIRS = ('arch/x86/', 'kernel/', 'mm/', 'lib/', 'drivers/', 'init/',
               'fs/', 'virt/', 'security/')


def patch_id(path):
    """git patch-id --stable of a patch file."""
    with open(path, 'rb') as f:
        out = subprocess.run(['git', 'patch-id', '--stable'], stdin=f,
                             capture_output=True, check=True).stdout
    return out.decode().split()[0] if out.strip() else ''


def prefix_ids(patches):
    """[(patch, patch-id, prefix hash)]: the prefix hash covers every
    patch up to and including this one, so a change to an earlier patch
    makes every later prefix stale too."""
    h = hashlib.sha256()
    out = []
    for p in patches:
        pid = patch_id(p)
        h.update(pid.encode() + b'\n')
        out.append((p, pid, h.hexdigest()[:16]))
    return out


def scratch_workspace(ws):
    """work/prefix: a tree and build directory beside the main ones, laid
    out alike so that ccache (CCACHE_BASEDIR is the work directory) shares
    objects with the main build."""
    sws = Workspace(os.path.join(ws.work, 'prefix'))
    repo = ensure_base()
    if not sws.tree_exists():
        os.makedirs(sws.work, exist_ok=True)
        clone_base(repo, sws.tree)
    git(sws.tree, 'am', '--abort', check=False)
    git(sws.tree, 'checkout', '-q', '-f', '-B', 'prefix', BASE_REF)
    git(sws.tree, 'clean', '-q', '-fdx')
    name, email = identity()
    git(sws.tree, 'config', 'user.name', name)
    git(sws.tree, 'config', 'user.email', email)
    return sws


def am(sws, patch):
    r = run(['git', '-C', sws.tree, 'am', '-q', '--keep-cr', patch],
            check=False, capture=True)
    if r.returncode:
        git(sws.tree, 'am', '--abort', check=False)
        raise WsError(f'{os.path.basename(patch)} does not apply: '
                      f'{r.stdout.strip()}')


def touched_objects(sws, main_build):
    """Objects of the test configuration that HEAD's patch touches.

    An object counts as part of the configuration when the main build
    made it; a patch that changes a kernel header (include/ or x86's)
    gets the fixed sample as well."""
    files = git(sws.tree, 'diff', '--name-only', '--no-renames',
                '--diff-filter=AM', 'HEAD~1', 'HEAD').split()
    objs = []
    for f in files:
        if f.endswith('.c') and f.startswith(SOURCE_DIRS):
            obj = f[:-2] + '.o'
            if os.path.exists(os.path.join(main_build, obj)):
                objs.append(obj)
    if any(f.endswith('.h') and (f.startswith('include/') or
                                 re.match(r'arch/x86/include/', f))
           for f in files):
        objs += [o for o in HEADER_SAMPLE if o not in objs]
    return objs


def cache_key(sws, prefix_hash, objs):
    h = hashlib.sha256()
    h.update(git(sws.tree, 'rev-parse', BASE_REF).encode())
    h.update(prefix_hash.encode())
    h.update(sws.merged_fragment().encode())
    h.update(' '.join(objs).encode())
    h.update(run(['gcc', '--version'], capture=True).stdout.encode())
    return h.hexdigest()[:24]


def load_cache(path):
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f)
    return {}


def compile_prefix(sws, objs):
    """Compile objs in the scratch build; return (ok, error text)."""
    sws.configure()
    r = sws.make(*objs, capture=True, check=False, extra=['-k'])
    if r.returncode == 0:
        return True, ''
    errs = [ln for ln in r.stdout.splitlines()
            if re.search(r'\berror\b|Error \d', ln)]
    return False, '\n'.join(errs[:15]) or r.stdout[-1500:]


def run_gate(ws, checks):
    """Each prefix compiles the objects its last patch touches."""
    prefix_builds(ws, checks, series_patches(), ws.build_dir)


def prefix_builds(ws, checks, patches, main_build):
    """Apply patches one at a time in ws.work/prefix; after each, compile
    the objects it touches that main_build (the tip's build in the same
    configuration) has."""
    if not patches:
        checks.skip('prefix builds', 'the series is empty')
        return
    sws = scratch_workspace(ws)
    # Machine-wide: a new clone or work directory reuses it.
    cache_path = os.path.join(wslib.cache_dir(), 'prefix-results.json')
    cache = load_cache(cache_path)
    first_bad = None
    t0 = time.monotonic()
    for n, (p, _pid, phash) in enumerate(prefix_ids(patches), 1):
        name = os.path.basename(p)
        try:
            am(sws, p)
        except WsError as e:
            checks.add(f'prefix {n:02}: applies', False, str(e))
            first_bad = first_bad or name
            break
        objs = touched_objects(sws, main_build)
        label = f'prefix {n:02} compiles ({patch_subject(p)})'
        if not objs:
            checks.add(label, True, 'touches no object of the test '
                       'configuration (documentation, tools, Kconfig)')
            continue
        key = cache_key(sws, phash, objs)
        if cache.get(key) == 'ok':
            checks.add(label, True, f'{len(objs)} objects; same inputs '
                       'compiled cleanly before (prefix-results.json of the '
                       'machine-wide cache)')
            continue
        ok, err = compile_prefix(sws, objs)
        if ok:
            cache[key] = 'ok'
            with open(cache_path, 'w') as f:
                json.dump(cache, f, indent=1)
        elif first_bad is None:
            first_bad = name
        checks.add(label, ok, f'{len(objs)} objects: {" ".join(objs)}'
                   + (f'\n{err}' if err else ''))
    info(f'prefix builds: {fmt_secs(time.monotonic() - t0)}; first '
         f'failing prefix: {first_bad or "none"}')


# ---------------------------------------------------------------------------
# tools/ws bisect: the full build and boot of every prefix

COMPLETE = '# complete: '


def read_record_file(path, columns):
    """Read a results file of tools/ws (bisect, matrix): blank lines and
    "#" comments apart, one record a line, whitespace-separated, the
    last column free text.  Return ({first column: (the others)}, what
    the "# complete: " line says, or '' without one)."""
    out = {}
    complete = ''
    if not os.path.exists(path):
        return out, complete
    with open(path) as f:
        for line in f:
            if line.startswith(COMPLETE):
                complete = line[len(COMPLETE):].strip()
            if not line.strip() or line.startswith('#'):
                continue
            key, *rest = line.split(None, columns - 1)
            rest[-1] = rest[-1].strip()
            out[key] = tuple(rest)
    return out, complete


def report_record(checks, name, command, bad, stale, complete, covered):
    """The test command's verdict on a results file of command: a failure
    recorded for the current series fails; records missing or stale for
    it skip, naming them, until one full run has been recorded
    (complete), and fail after that; otherwise the check passes, saying
    covered."""
    if bad:
        checks.add(name, False, f'recorded failures: {"; ".join(bad)}')
    elif stale and not complete:
        checks.skip(name, f'no full run of "{command}" recorded yet; '
                    f'not covered: {", ".join(stale)}')
    else:
        checks.add(name, not stale, f'stale or missing, re-run "{command}": '
                   f'{", ".join(stale)}' if stale else covered)


def read_bisect_results(path=BISECT_RESULTS):
    """{patch-id: (prefix hash, build, boot, date, name)}, and what the
    "complete" line says ('' when no run ever covered every prefix of
    the series it ran on)."""
    return read_record_file(path, 6)


BISECT_HEADER = """\
# Written by "tools/ws bisect": a full build and a smoke boot of every
# prefix of the series with kernel-config/ (lockdep, KASAN, DEBUG_VM).
# PATCH-ID  PREFIX-HASH  BUILD  BOOT  DATE  PATCH
"""


def write_bisect_results(results, order, complete, path=BISECT_RESULTS):
    """complete: some run has covered every prefix of its series; from
    then on a stale prefix fails the test command instead of skipping."""
    with open(path, 'w') as f:
        f.write(BISECT_HEADER)
        if complete:
            f.write(f'{COMPLETE}{complete}\n')
        for pid in order:
            if pid in results:
                phash, build, boot, date, name = results[pid]
                f.write(f'{pid} {phash} {build} {boot} {date} {name}\n')


def bisect(ws, args):
    """Build and boot every prefix (or from --from N); record each."""
    patches = series_patches()
    ids = prefix_ids(patches)
    results, complete = read_bisect_results()
    complete_line = complete
    sws = scratch_workspace(ws)
    start = max(1, getattr(args, 'from_patch', 1) or 1)
    failed = 0
    for n, (p, pid, phash) in enumerate(ids, 1):
        am(sws, p)
        if n < start:
            continue
        name = os.path.basename(p)
        old = results.get(pid)
        if old and old[0] == phash and old[1:3] == ('ok', 'ok') and \
                not args.again:
            info(f'{name}: recorded ok for this prefix; skipping')
            continue
        with banner(f'bisect {n}/{len(ids)}: {name}'):
            build = boot = 'FAIL'
            try:
                sws.configure()
                sws.build()
                build = 'ok'
                res = wsboot.boot(sws, name=f'bisect-{n:02}', timeout=600)
                print(res.summary())
                boot = 'ok' if res.ok else 'FAIL'
            except WsError as e:
                print(f'  {e}')
        failed += (build, boot) != ('ok', 'ok')
        results[pid] = (phash, build, boot, time.strftime('%Y-%m-%d'),
                        name)
        write_bisect_results(results, [i[1] for i in ids], complete_line)
    if all(results.get(pid, ('',))[0] == phash for _, pid, phash in ids):
        complete_line = (f'every prefix of a {len(ids)}-patch series, '
                         f'{time.strftime("%Y-%m-%d")}')
        write_bisect_results(results, [i[1] for i in ids], complete_line)
    info(f'{BISECT_RESULTS}: {len(ids)} prefixes, {failed} failed')
    return 1 if failed else 0


def check_bisect_results(checks):
    """The recorded full builds and boots cover the current series."""
    patches = series_patches()
    ids = prefix_ids(patches)
    results, complete = read_bisect_results()
    stale = [os.path.basename(p) for p, pid, phash in ids
             if results.get(pid, ('',))[0] != phash]
    bad = [os.path.basename(p) for p, pid, phash in ids
           if pid in results and results[pid][0] == phash and
           results[pid][1:3] != ('ok', 'ok')]
    report_record(checks,
                  'bisect: every prefix built and booted (tests/bisect-results)',
                  'tools/ws bisect', bad, stale, complete,
                  f'{len(ids)} prefixes recorded')
