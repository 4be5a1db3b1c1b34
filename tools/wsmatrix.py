# SPDX-License-Identifier: GPL-2.0
"""tools/ws matrix: the series under the checkers, paging modes, CPU
counts and hotplug cycles that the test command has no time for.

Configurations: the test command's own ("debug": kernel-config/order's
fragments, its build in work/build reused) and each fragment of
kernel-config/matrix/, merged after those (built in work/matrix/NAME/).

Runs (RUNS below, run in this order: checkers, cpa, hotplug, the grid),
each a KUnit run of every suite of tests/kunit-suites or a boot of
tests/boot/init with its boot.d scripts:
- the paging modes and CPU counts: 4-level and 5-level paging, PTI on
  and off, 1, 2 and 4 vCPUs, in a pairwise design (every pair of values
  of two of the three in some run: six runs cover what the product's
  twelve would pair), each with the KUnit suites and the stress boot;
- memory hotplug endurance: 20 cycles of a 1 GiB pc-dimm's add, online,
  offline and remove, on a 4K direct map (debug_pagealloc=on) and on
  the large-page one;
- the checkers configuration: the KUnit suites, the stress boot, two
  hotplug cycles and the direct map's collapse over hot-added memory
  (the dmhotplug boot), with page_owner=on, each boot ending with
  kmemleak's explicit scan;
- the cpa configuration (CPA's self-test and KFENCE, without KASAN):
  the KUnit suites, the stress boot without the fail-nth walks and the
  dmhotplug boot;
- the fail-nth walks alone on the test command's kernel with
  pks_tables=off and nohugevmalloc, so that vmalloc's 4K path and CPA's
  split through the page allocator are failed too;
- the builds and runs of two upstream-readiness gates, which build
  kernels of their own: each tests/*.kunitconfig alone (kunitcfg-<suite>,
  tools/wskunitcfg.py) and KUnit on arm64 and riscv64 (archkunit-<arch>,
  tools/wsarchkunit.py).  Such a run passes when every check of its gate
  passes; the test command checks only their configurations.

A run fails on what fails the test command's boots and KUnit runs (a
failing check, a case, a missing suite, a timeout) and on every report
in its console that tools/wsboot.py's scan knows (WARNING, BUG, KASAN,
KFENCE, lockdep, a bad page, kmemleak, W+X, CPA self-test, debug
objects), except those that tests/matrix-base-splats lists for its
configuration: the base kernel, built alike, gives them too ("tools/ws
matrix --base" boots it and prints what it finds, for that file).

Results go to tests/matrix-results, one line per run, keyed by the hash
of the series' patch-ids (as tests/bisect-results is) and by a hash of
the run's definition and configuration; a run recorded ok for both is
not run again unless --again.  The test command checks the file: a run
without a current line makes it skip, naming the runs, while no full
run has been recorded ("# complete:"), and fail after that; a recorded
failure fails it.
"""

import collections
import fnmatch
import glob
import hashlib
import json
import os
import re
import shutil
import time

import wsboot
import wskunit
import wsprefix
import wslib
from wslib import ROOT, Workspace, WsError, banner, fmt_secs, git, info

MATRIX_DIR = os.path.join(ROOT, 'kernel-config', 'matrix')
RESULTS = os.path.join(ROOT, 'tests', 'matrix-results')
BASE_SPLATS = os.path.join(ROOT, 'tests', 'matrix-base-splats')
COMPLETE = wsprefix.COMPLETE

HOTPLUG_MB = 1024
STRESS = ['ws.stress=30'] + wsboot.FAILNTH

# name, configuration, kind (kunit, stress, hotplug, dmhotplug), command
# line, vCPUs, hotplug cycles.
Run = collections.namedtuple('Run', 'name config kind cmdline smp cycles',
                             defaults=([], 2, 0))

# Pairwise over paging (4l, 5l) x PTI (off, on) x vCPUs (1, 2, 4).
GRID = [('4l', 'off', 1), ('5l', 'on', 1), ('4l', 'on', 2),
        ('5l', 'off', 2), ('4l', 'on', 4), ('5l', 'off', 4)]


def grid_runs():
    out = []
    for paging, pti, smp in GRID:
        cmd = (['no5lvl'] if paging == '4l' else []) + [f'pti={pti}']
        tag = f'{paging}-pti-{pti}-{smp}cpu'
        out.append(Run(f'kunit-{tag}', 'debug', 'kunit', cmd, smp))
        out.append(Run(f'stress-{tag}', 'debug', 'stress', cmd + STRESS,
                       smp))
    return out


# The kinds of run that are a gate's own checks, on its own kernel.
GATE_KINDS = ('kunitcfg', 'archkunit')


def gate_runs():
    import wsarchkunit
    import wskunitcfg
    return ([Run(f'kunitcfg-{wskunitcfg.suite_of(path)}', 'kunitcfg',
                 'kunitcfg') for path in wskunitcfg.kunitconfigs()] +
            [Run(f'archkunit-{arch.name}', 'archkunit', 'archkunit')
             for arch in wsarchkunit.ARCHES])


def gate_target(run):
    """The suite or architecture of a gate run."""
    return run.name.split('-', 1)[1]


RUNS = [
    Run('checkers-kunit', 'checkers', 'kunit', ['page_owner=on']),
    Run('checkers-stress', 'checkers', 'stress', ['page_owner=on'] + STRESS),
    Run('checkers-hotplug', 'checkers', 'hotplug',
        ['page_owner=on', 'debug_pagealloc=on'], cycles=2),
    Run('checkers-dmhotplug', 'checkers', 'dmhotplug', ['page_owner=on']),
    # With the page-table key, CPA's split takes its table from the keyed
    # pool and the fail-nth walk of the split has nothing to fail: walk
    # the page allocator's path too, under kmemleak and debug objects.
    Run('checkers-failnth-pks-off', 'checkers', 'stress',
        ['page_owner=on', 'pks_tables=off'] + wsboot.FAILNTH),
    Run('cpa-kunit', 'cpa', 'kunit'),
    # Without the fail-nth walks: CPA's self-test changes the attributes
    # of random direct-map pages every 30 s and leaves them split, which
    # the walks' and x86_directmap_fail_nth's checks (DirectMap4k back
    # where it was, a region's level unchanged) cannot tell from a leak.
    Run('cpa-stress', 'cpa', 'stress', ['ws.stress=30']),
    Run('cpa-dmhotplug', 'cpa', 'dmhotplug'),
    Run('hotplug20-4k', 'debug', 'hotplug', ['debug_pagealloc=on'],
        cycles=20),
    Run('hotplug20-large', 'debug', 'hotplug', [], cycles=20),
    # The fail-nth walks alone, without the key and with vmalloc held to
    # 4K pages: by default kvmalloc()'s 2M attempt absorbs each failure
    # of the vmalloc walk by falling back to 4K, so only "nohugevmalloc"
    # fails the 4K path's own allocations.
    Run('failnth-nohugevmalloc-pks-off', 'debug', 'stress',
        ['pks_tables=off', 'nohugevmalloc'] + wsboot.FAILNTH),
] + grid_runs() + gate_runs()


class MatrixWorkspace(Workspace):
    """A work tree (the main one, or the base's with tag "-base") built
    with one configuration of the matrix in work/matrix/CONFIG[TAG]/;
    logs in work/logs/matrix/."""

    def __init__(self, ws, config, tree=None, tag=''):
        super().__init__(ws.work)
        self.tree = tree or ws.tree
        self.config = config
        self.build_dir = os.path.join(ws.work, 'matrix', config + tag)
        self.logs = os.path.join(ws.work, 'logs', 'matrix')

    def fragments(self):
        return config_fragments(self.config)


def config_fragments(config):
    """kernel-config/order's fragments, then kernel-config/matrix/CONFIG's
    (none for "debug", the test command's configuration)."""
    frags = Workspace.fragments(None)
    if config != 'debug':
        frags.append(os.path.join(MATRIX_DIR, f'{config}.config'))
    return frags


def workspace(ws, config):
    """The workspace of a configuration; "debug" shares the test
    command's build (work/build)."""
    mws = MatrixWorkspace(ws, config)
    if config == 'debug':
        mws.build_dir = ws.build_dir
    return mws


def read(path):
    with open(path) as f:
        return f.read()


def run_inputs(run):
    """The files a run's configuration comes from: a gate run's
    kunitconfig (and QEMU configuration), or the fragments."""
    if run.kind == 'kunitcfg':
        import wskunitcfg
        return [wskunitcfg.kunitconfig_of(gate_target(run)),
                wskunit.QEMU_CONFIG]
    if run.kind == 'archkunit':
        import wsarchkunit
        return [wsarchkunit.arch_named(gate_target(run)).kunitconfig]
    return config_fragments(run.config)


def run_key(run):
    """What a run's record depends on besides the series: its definition
    and its configuration's files.  Not the boot scripts or tools:
    "--again" runs everything again after changing those."""
    parts = [repr(tuple(run))] + [read(f) for f in run_inputs(run)]
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16]


def kernel_patches():
    """The patches of the series that change a file outside
    Documentation/.  A patch of documentation alone changes no kernel
    that a run boots, so the record outlives it (the test command's
    htmldocs and checkpatch gates check it)."""
    out = []
    for path in wslib.series_patches():
        with open(path, errors='replace') as f:
            files = re.findall(r'^diff --git a/(\S+) ', f.read(), re.M)
        if any(not name.startswith('Documentation/') for name in files):
            out.append(path)
    return out


def series_key():
    ids = wsprefix.prefix_ids(kernel_patches())
    return ids[-1][2] if ids else ''


# -- the allowed base splats ----------------------------------------------

def read_base_splats(path=None):
    """[(config glob, kind, regex, reason)] from tests/matrix-base-splats:
    "CONFIG KIND REGEX  # REASON" per line."""
    path = path or BASE_SPLATS
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            body, _, why = line.partition('#')
            if not body.strip():
                continue
            fields = body.split(None, 2)
            if len(fields) != 3 or not why.strip():
                raise WsError(f'{path}:{n}: want "CONFIG KIND REGEX  # '
                              f'REASON", got: {line.strip()}')
            out.append((fields[0], fields[1], re.compile(fields[2].strip()),
                        why.strip()))
    return out


def with_context(text, line):
    """The console line before line, " | ", and line: a WARN() prints
    its message on the line before its "WARNING:" line."""
    lines = text.splitlines()
    for i, ln in enumerate(lines):
        if ln.strip() == line:
            return (lines[i - 1].strip() + ' | ' if i else '') + line
    return line


def split_problems(config, problems, allowed, text=''):
    """(problems not allowed, allowed ones with their reasons).  A regex
    of tests/matrix-base-splats is searched in the problem's line with
    the line before it (see with_context())."""
    bad, known = [], []
    for kind, line in problems:
        seen = with_context(text, line)
        why = next((r for g, k, rx, r in allowed
                    if fnmatch.fnmatchcase(config, g) and k == kind and
                    rx.search(seen)), None)
        if why:
            known.append((kind, line, why))
        else:
            bad.append((kind, line))
    return bad, known


# -- one run ----------------------------------------------------------------

def do_gate_run(ws, run):
    """A gate's checks for one kunitconfig or architecture, on the
    gate's own kernel: (ok, detail)."""
    checks = wslib.Checks(known=[])
    if run.kind == 'kunitcfg':
        import wskunitcfg
        wskunitcfg.run_file(ws, checks, wskunitcfg.kunitconfig_of(
            gate_target(run)))
    else:
        import wsarchkunit
        wslib.setup_packages(wsarchkunit.PACKAGES)
        wsarchkunit.gate_arch(ws, checks, wsarchkunit.arch_named(
            gate_target(run)), wslib.kconfig_symbols(ws.tree))
    failed = [(n, d) for n, ok, d in checks.results if ok is False]
    if failed:
        return False, f'{failed[0][0]}: {failed[0][1]}'[:200]
    passed, _, skipped = checks.counts()
    return True, f'{passed} checks passed' + (
        f', {skipped} skipped' if skipped else '')


def do_run(mws, run, allowed, name=None):
    """Run one Run in mws; return (ok, detail)."""
    if run.kind in GATE_KINDS:
        return do_gate_run(mws, run)
    name = name or f'matrix-{run.name}'
    qemu = ['-smp', str(run.smp)]
    if run.kind == 'kunit':
        res = wskunit.run_kunit(mws, run.cmdline, name, qemu_args=qemu)
    else:
        kw = {}
        cmdline = list(run.cmdline)
        import wsrun
        if run.kind == 'hotplug':
            cmdline += [f'ws.hotplug={HOTPLUG_MB}',
                        f'ws.hotplug_cycles={run.cycles}']
            qemu += ['-m', '1G,slots=2,maxmem=4G']
            kw['qmp_script'] = wsrun.hotplug_qmp(HOTPLUG_MB,
                                                 cycles=run.cycles)
        elif run.kind == 'dmhotplug':
            cmdline += ['ws.dmhotplug']
            qemu += ['-m', '1G,slots=3,maxmem=4G']
            kw['qmp_script'] = wsrun.dmhotplug_qmp()
        # A stress boot ends with the fail-nth walks and their KUnit
        # suites: 900 s, as the test command gives its own.  The
        # checkers' kernel (KASAN with kmemleak, page_owner and SLUB
        # debugging) walks them about twice as slowly: its stress boot
        # ran out of 900 s in the vmalloc walk (2026-12-07).
        base = 900 if run.kind == 'stress' else 600
        if run.config == 'checkers':
            base *= 2
        res = wsboot.boot(mws, cmdline, qemu, name=name,
                          timeout=base + 90 * run.cycles, **kw)
    raw = os.path.join(mws.build_dir, 'test.log')	# kunit.py's console
    text = res.log if run.kind != 'kunit' else \
        read(raw) if os.path.exists(raw) else ''
    bad, known = split_problems(run.config, res.problems, allowed, text)
    res.problems = bad
    print(res.summary())
    for kind, line, why in known:
        print(f'  allowed ({why}): {kind}: {line}')
    detail = (f'{len(known)} base splat(s) allowed' if known else
              'no splat')
    if not res.ok:
        first = bad[:1] or [('', 'see the log')]
        detail = f'{first[0][0]}: {first[0][1]}'[:200]
    return res.ok, detail


# -- the results file -------------------------------------------------------

HEADER = """\
# Written by "tools/ws matrix": one line per run of tools/wsmatrix.py's
# RUNS, keyed by the hash of the series' patch-ids and of the run's
# definition and configuration fragments.
# RUN  SERIES-HASH  RUN-HASH  RESULT  DATE  DETAIL
"""


def read_results(path=None):
    """{run name: (series key, run key, result, date, detail)}, and what
    the "complete" line says."""
    return wsprefix.read_record_file(path or RESULTS, 6)


def write_results(results, complete, path=None):
    path = path or RESULTS
    with open(path + '.tmp', 'w') as f:
        f.write(HEADER)
        if complete:
            f.write(f'{COMPLETE}{complete}\n')
        for run in RUNS:
            if run.name in results:
                f.write(' '.join([run.name, *results[run.name][:4],
                                  results[run.name][4]]) + '\n')
    os.replace(path + '.tmp', path)


def keep_failed_logs(mws, run):
    """Copy a failed run's logs to NAME-failed.*, so that running it
    again does not overwrite what the failure printed."""
    for log in glob.glob(os.path.join(mws.logs, f'matrix-{run.name}.*')):
        stem, ext = os.path.splitext(log)
        kept = f'{stem}-failed{ext}'
        shutil.copyfile(log, kept)
        info(f'matrix {run.name}: failed; its log kept as {kept}')


def matrix(ws, args):
    """Run every run of RUNS (or those --only names) not recorded ok for
    the current series and its inputs; record each as it ends."""
    if not ws.matches_series():
        raise WsError('the work tree does not hold the exported series; '
                      'run "tools/ws apply" first')
    allowed = read_base_splats()
    skey = series_key()
    results, complete = read_results()
    want = [r for r in RUNS if not args.only or
            any(fnmatch.fnmatchcase(r.name, g) for g in args.only)]
    failed, t0 = 0, time.monotonic()
    built = set()
    for run in want:
        mws = workspace(ws, run.config)
        rkey = run_key(run)
        old = results.get(run.name)
        if old and old[:3] == (skey, rkey, 'ok') and not args.again:
            info(f'matrix {run.name}: recorded ok; skipping')
            continue
        with banner(f'matrix {run.name}'):
            try:
                if run.kind not in GATE_KINDS and run.config not in built:
                    mws.configure()
                    mws.build()
                    built.add(run.config)
                ok, detail = do_run(mws, run, allowed)
            except WsError as e:
                ok, detail = False, str(e).splitlines()[0][:200]
            if not ok:
                keep_failed_logs(mws, run)
        failed += not ok
        results[run.name] = (skey, rkey, 'ok' if ok else 'FAIL',
                             time.strftime('%Y-%m-%d'), detail)
        write_results(results, complete)
    covered = all(results.get(r.name, ('',))[0] == skey for r in RUNS)
    if covered and not complete:
        complete = f'every run of a series, {time.strftime("%Y-%m-%d")}'
        write_results(results, complete)
    info(f'{RESULTS}: {len(want)} runs asked, {failed} failed, '
         f'{fmt_secs(time.monotonic() - t0)}')
    return 1 if failed else 0


def base_splats(ws, args):
    """Build the base with each configuration of RUNS and boot it as the
    first stress and hotplug runs of that configuration do (hotplug with
    two cycles); print the reports it gives, for
    tests/matrix-base-splats.  The base has none of the series' KUnit
    suites, so its KUnit runs are not repeated."""
    base_sha = git(ws.tree, 'rev-parse', wslib.BASE_REF + '^{commit}')
    tree = wslib.base_checkout(ws.work, base_sha)
    seen = collections.Counter()
    for config in sorted({r.config for r in RUNS
                          if r.kind not in GATE_KINDS}):
        if args.only and not any(fnmatch.fnmatchcase(config, g)
                                 for g in args.only):
            continue
        first = {}
        for run in RUNS:
            if run.config == config and run.kind != 'kunit':
                first.setdefault(run.kind, run)
        mws = MatrixWorkspace(ws, config, tree=tree, tag='-base')
        with banner(f'matrix base: {config}'):
            mws.configure()
            mws.build()
            for run in first.values():
                name = f'base-{config}-{run.kind}'
                do_run(mws, run._replace(cycles=min(run.cycles, 2)), [],
                       name=name)
                log = read(os.path.join(mws.logs, f'{name}.log'))
                for kind, line in wsboot.scan_log(log):
                    line = re.sub(r'^\[[ 0-9.]+\] ', '', line)
                    seen[(config, kind, line)] += 1
    print('\nReports the base gives (for tests/matrix-base-splats):')
    for (config, kind, line), n in sorted(seen.items()):
        print(f'  {config} {kind} x{n}: {line}')
    if not seen:
        print('  none')
    return 0


# -- the test command's check ----------------------------------------------

def check_results(checks):
    """tests/matrix-results covers the current series and RUNS.  The gate
    runs are checked apart: they came after the rest, so they skip,
    naming the runs, until each of them has been recorded once, and fail
    when stale after that, as the rest does after its first full run."""
    results, complete = read_results()
    skey = series_key()
    groups = [('matrix: every run recorded ok (tests/matrix-results)',
               [r for r in RUNS if r.kind not in GATE_KINDS], complete),
              ('matrix: every gate run recorded ok (tests/matrix-results)',
               [r for r in RUNS if r.kind in GATE_KINDS], None)]
    for name, runs, done in groups:
        if done is None:
            done = 'each recorded once' if all(
                r.name in results for r in runs) else ''
        stale = [r.name for r in runs if tuple(results.get(
            r.name, ('', ''))[:2]) != (skey, run_key(r))]
        bad = [f'{r.name} ({results[r.name][4]})' for r in runs
               if r.name not in stale and results[r.name][2] != 'ok']
        wsprefix.report_record(checks, name, 'tools/ws matrix', bad, stale,
                               done, f'{len(runs)} runs recorded ok')
