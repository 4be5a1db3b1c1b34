# SPDX-License-Identifier: GPL-2.0
"""The README's two commands: the main job ("run") and all tests ("test")."""

import filecmp
import importlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import wslib
import wsboot
import wsgates
import wskunit
from wslib import (ROOT, BASE_REF, COVER, PATCHES, SERIES, Checks, WsError,
                   Workspace, banner, fmt_secs, git, run)

OWNED = '.ws-owned'


def owned_workspace(work):
    """A workspace the run and test commands may reset at will.

    They never reset a tree a contributor made with "tools/ws apply";
    such a tree is only reused when it is clean and matches patches/.
    """
    ws = Workspace(work)
    marker = os.path.join(work, OWNED)
    force = os.path.exists(marker) or not ws.tree_exists()
    ws.apply(force=force)
    with open(marker, 'w') as f:
        f.write('made by tools/ws run or test; reset freely\n')
    return ws


def patch_subjects(ws):
    out = git(ws.tree, 'log', '--reverse', '--format=%s',
              f'{BASE_REF}..HEAD')
    return [s for s in out.splitlines() if s]


def main_job(args):
    t0 = time.monotonic()
    wslib.setup_packages()
    base = wslib.Base()
    digest = wslib.ensure_base_package(base)
    ws = owned_workspace(args.work)
    ws.configure()
    ws.build()
    res = wsboot.boot(ws, name='boot', timeout=600)
    print(res.summary())
    subjects = patch_subjects(ws)
    rep = dict(res.reports)
    print('\n=== ptguard report ===')
    print(f'{"base:":<14}{base.describe()}')
    print(f'{"":<14}sha256 {digest}')
    print(f'{"patches:":<14}{len(subjects)} applied')
    for i, s in enumerate(subjects, 1):
        print(f'  {i:2}. {s}')
    print(f'{"kernel:":<14}{rep.get("kernel", "(not reported)")}')
    if res.init_uptime is not None:
        print(f'{"boot:":<14}init reached {res.init_uptime:.2f}s after kernel '
              f'start (TCG), {fmt_secs(res.wall)} wall for the whole VM')
    for key, val in res.reports:
        if key != 'kernel':
            print(f'{key + ":":<14}{val}')
    for name, ok, why in res.checks:
        print(f'{"check:":<14}{name}: {"ok" if ok else "FAIL " + why}')
    print(f'{"status:":<14}{"OK" if res.ok else "FAILED"} '
          f'(total {fmt_secs(time.monotonic() - t0)})')
    return 0 if res.ok else 1


# ---------------------------------------------------------------------------
# The test command

def step(checks, name, fn, *a):
    """Run fn; record a check; return its value or None on failure."""
    try:
        val = fn(*a)
    except WsError as e:
        checks.add(name, False, str(e))
        return None
    checks.add(name, True)
    return val if val is not None else True


def same_dirs(a, b, names):
    diff = []
    for n in names:
        pa, pb = os.path.join(a, n), os.path.join(b, n)
        if not os.path.exists(pb) or not filecmp.cmp(pa, pb, shallow=False):
            diff.append(n)
    return diff


def exported_names():
    names = wslib.read_series()
    if os.path.exists(os.path.join(PATCHES, COVER)):
        names = [COVER] + names
    return names


def scratch_workspace(ws):
    """A clone of the base kept in the work directory between runs, reset
    to exactly the base for each use: a new clone of the kernel costs
    15-40 seconds, a reset from the series back to the base about one.
    Cloned again when the base changed."""
    scratch = Workspace(os.path.join(ws.work, 'scratch'))
    base = git(wslib.ensure_base(), 'rev-parse', BASE_REF)
    if scratch.tree_exists():
        have = run(['git', '-C', scratch.tree, 'rev-parse', '-q', '--verify',
                    BASE_REF + '^{commit}'], check=False,
                   capture=True).stdout.strip()
        if have != base:
            shutil.rmtree(scratch.tree)
    if not scratch.tree_exists():
        os.makedirs(scratch.work, exist_ok=True)
        with banner(f'creating the scratch base clone {scratch.tree}'):
            wslib.clone_base(wslib.ensure_base(), scratch.tree)
    for op in ('am', 'rebase', 'cherry-pick'):
        git(scratch.tree, op, '--abort', check=False)
    git(scratch.tree, 'checkout', '-q', '-f', '--detach', BASE_REF)
    git(scratch.tree, 'clean', '-q', '-fdx')
    return scratch


def test_roundtrip(ws, checks):
    """work tree -> export -> fresh work tree -> export: no difference.
    The fresh work tree is the scratch clone, reset to the base."""
    tmp = tempfile.mkdtemp(prefix='roundtrip-', dir=ws.work)
    try:
        exp1 = os.path.join(tmp, 'exp1')
        names1 = wslib.format_patches(ws.tree, exp1)
        want = exported_names()
        if names1 != want:
            raise WsError(f'export would write {names1}, patches/ and '
                          f'series hold {want}')
        diff = same_dirs(exp1, PATCHES, names1)
        if diff:
            raise WsError('export is not byte-identical to patches/ for '
                          f'{diff}: export after changing commits')
        series1 = os.path.join(tmp, 'series1')
        with open(series1, 'w') as f:
            f.write(wslib.series_text(names1, exp1))
        with open(series1) as a, open(SERIES) as b:
            if a.read() != b.read():
                raise WsError('series differs from what export writes')
        fresh = scratch_workspace(ws)
        fresh.apply(force=True, series=series1, patches=exp1)
        exp2 = os.path.join(tmp, 'exp2')
        names2 = wslib.format_patches(fresh.tree, exp2)
        if names2 != names1:
            raise WsError(f'second export wrote {names2}, first {names1}')
        diff = same_dirs(exp1, exp2, names1)
        if diff:
            raise WsError(f'round trip changed {diff}')
        if git(fresh.tree, 'rev-parse', 'HEAD^{tree}') != \
                git(ws.tree, 'rev-parse', 'HEAD^{tree}'):
            raise WsError('fresh work tree differs from the first one')
        return f'{len(names1)} files identical after the round trip'
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# The README's "git am" line for users; test_readme_git_am() runs it.
README_GIT_AM = ('git am $(sed -e \'/^#/d\' -e \'/^$/d\' -e "s|^|$P/patches/|" '
                 '$P/series)')


def test_readme_git_am(ws, checks):
    """The README's git am line, run as written on the base (the scratch
    clone, reset)."""
    with open(os.path.join(ROOT, 'README')) as f:
        if README_GIT_AM not in f.read():
            raise WsError(f'the README no longer shows: {README_GIT_AM}')
    tree = scratch_workspace(ws).tree
    name, email = wslib.identity()
    run(['bash', '-c', README_GIT_AM], cwd=tree, capture=True,
        env={'P': ROOT, 'GIT_COMMITTER_NAME': name,
             'GIT_COMMITTER_EMAIL': email})
    if git(tree, 'rev-parse', 'HEAD^{tree}') != \
            git(ws.tree, 'rev-parse', 'HEAD^{tree}'):
        raise WsError("the README's git am gives another tree than the "
                      "work tree")
    return "the README's git am line gives the work tree"


def test_quilt(ws, checks):
    """quilt push -a applies series onto a fresh base checkout."""
    tmp = tempfile.mkdtemp(prefix='quilt-', dir=ws.work)
    try:
        src = os.path.join(tmp, 'linux')
        os.makedirs(src)
        archive = subprocess.Popen(['git', '-C', ws.tree, 'archive',
                                    BASE_REF], stdout=subprocess.PIPE)
        subprocess.run(['tar', '-x', '-C', src], stdin=archive.stdout,
                       check=True)
        archive.wait()
        env = {'QUILT_PATCHES': PATCHES, 'QUILT_SERIES': SERIES,
               'QUILT_PC': os.path.join(tmp, 'pc'), 'QUILTRC': '/dev/null'}
        r = run(['quilt', 'push', '-a', '-q'], cwd=src, env=env,
                check=False, capture=True)
        npatch = len(wslib.read_series())
        if npatch == 0:
            if 'No patches in series' not in r.stdout:
                raise WsError(f'quilt on an empty series: {r.stdout}')
        elif r.returncode != 0:
            raise WsError(f'quilt push -a failed:\n{r.stdout[-3000:]}')
        bad = []
        for path in ws.changed_files():
            want = subprocess.run(['git', '-C', ws.tree, 'show',
                                   f'HEAD:{path}'], capture_output=True,
                                  check=True).stdout
            got_p = os.path.join(src, path)
            got = open(got_p, 'rb').read() if os.path.exists(got_p) else None
            if got != want:
                bad.append(path)
        deleted = git(ws.tree, 'diff', '--name-only', '--diff-filter=D',
                      f'{BASE_REF}..HEAD').split()
        bad += [p for p in deleted if os.path.exists(os.path.join(src, p))]
        if bad:
            raise WsError(f'quilt result differs from git am for {bad}')
        return f'{npatch} patches pushed; result equals the git am tree'
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def parse_snippet(path):
    entry = {'M': [], 'L': [], 'F': [], 'S': []}
    with open(path) as f:
        lines = f.read().splitlines()
    title = lines[0] if lines else ''
    for line in lines[1:]:
        m = re.match(r'^([A-Z]):\t(.*)$', line)
        if m and m.group(1) in entry:
            entry[m.group(1)].append(m.group(2))
    return title, entry


def files_for_pattern(tree, pat):
    if pat.endswith('/'):
        d = os.path.join(tree, pat)
        if os.path.isdir(d):
            for dp, _, fs in os.walk(d):
                for f in sorted(fs):
                    return [os.path.relpath(os.path.join(dp, f), tree)]
        return []
    out = git(tree, 'ls-files', '--', pat)
    return out.split()[:1]


def test_maintainers(ws, checks):
    snippet = os.path.join(ROOT, 'MAINTAINERS-snippet')
    title, entry = parse_snippet(snippet)
    name, email = wslib.identity()
    ok = set(entry['M']) == {f'{name} <{email}>'} and \
        'linux-mm@kvack.org' in entry['L']
    checks.add('MAINTAINERS-snippet: M: is the repository identity, '
               'L: linux-mm', ok, f'{entry["M"]} {entry["L"]}')
    mfile = os.path.join(ws.tree, 'MAINTAINERS')
    with open(snippet) as f:
        snip = f.read()
    with open(mfile) as f:
        orig = f.read()
    touched = 'MAINTAINERS' in ws.changed_files()
    if touched:
        entries = [e.strip() for e in snip.split('\n\n') if e.strip()]
        checks.add('MAINTAINERS in the series carries the snippet',
                   all(e in orig for e in entries), 'each entry of '
                   'MAINTAINERS-snippet must be in the series MAINTAINERS')
    try:
        with open(mfile, 'a') as f:
            f.write('\n' + snip)
        for pat in entry['F']:
            files = files_for_pattern(ws.tree, pat)
            if not files:
                checks.skip(f'get_maintainer.pl for F: {pat}',
                            'no file matches yet: the series does not add '
                            'it at this point')
                continue
            r = run(['perl', 'scripts/get_maintainer.pl', '--no-git',
                     '--no-git-fallback', '--no-rolestats', '-f', files[0]],
                    cwd=ws.tree, check=False, capture=True)
            checks.add(f'get_maintainer.pl names the entry for {files[0]}',
                       f'{name} <{email}>' in r.stdout, r.stdout.strip()
                       .replace('\n', '; '))
        diff = git(ws.tree, 'diff', '--', 'MAINTAINERS')
        r = run(['perl', 'scripts/checkpatch.pl', '--strict', '--no-color',
                 '--no-signoff', '-'], cwd=ws.tree, input=diff + '\n',
                check=False, capture=True)
        bad = [ln for ln in r.stdout.splitlines()
               if re.match(r'^(WARNING|ERROR)', ln)]
        checks.add('checkpatch.pl on the appended snippet: no MAINTAINERS '
                   'warnings', not bad, '; '.join(bad))
    finally:
        with open(mfile, 'w') as f:
            f.write(orig)


def tool_selftests(checks):
    """The workspace tool's own tests: bad input gets a clear message."""
    with tempfile.TemporaryDirectory() as tmp:
        results = os.path.join(tmp, 'results.json')
        r = subprocess.run([sys.executable, os.path.join(
            ROOT, 'tests', 'tools', 'test_ws.py'), '--results', results],
            cwd=ROOT, text=True, capture_output=True)
        outcomes = []
        if os.path.exists(results):
            with open(results) as f:
                outcomes = json.load(f)
    for test_id, status, detail in outcomes:
        name = 'ws selftest ' + test_id.split('.', 1)[-1]
        if status == 'SKIP':
            checks.skip(name, detail)
        else:
            checks.add(name, status == 'ok', detail[-2000:])
    if r.returncode != 0 or not outcomes:
        print((r.stdout + r.stderr)[-6000:])
        checks.add('ws selftests ran', bool(outcomes) and r.returncode == 0,
                   f'exit {r.returncode}, {len(outcomes)} results')


def test_job(args):
    t0 = time.monotonic()
    checks = Checks()
    if not args.skip_setup:
        step(checks, 'setup: every package installed from Debian',
             setup_all_packages)
    if step(checks, 'base: pinned package installed, sha256 verified, '
            'imported', wslib.ensure_base) is None:
        return checks.finish()
    with banner('tool self-tests'):
        tool_selftests(checks)
    ws = step(checks, 'apply: series applied with git am',
              owned_workspace, args.work)
    if ws is None:
        return checks.finish()
    with banner('export round trip'):
        r = step(checks, 'export round trip is byte-identical',
                 test_roundtrip, ws, checks)
    with banner('quilt push -a'):
        step(checks, 'quilt push -a on a fresh base checkout', test_quilt,
             ws, checks)
    with banner('git am as the README shows it'):
        step(checks, "the README's git am line applies the series",
             test_readme_git_am, ws, checks)
    with banner('MAINTAINERS-snippet'):
        try:
            test_maintainers(ws, checks)
        except WsError as e:
            checks.add('MAINTAINERS-snippet test', False, str(e))
    built = step(checks, 'config and build', lambda: (ws.configure(),
                                                        ws.build()))
    if built:
        try:
            wsgates.run_gates(ws, checks)
        except WsError as e:
            checks.add('review gates', False, str(e))
        boot_tests(ws, checks)
        kunit_tests(ws, checks)
    upstream_gates(ws, checks, built)
    userspace_tests(ws, checks)
    if built:
        checks.check_known_failures_used()
    print(f'\ntest command: {fmt_secs(time.monotonic() - t0)} in all')
    return checks.finish()


# The upstream-readiness gates, each a module with run_gate(ws, checks)
# and PACKAGES, in the order the test command runs them; True: the gate
# needs the kernel of the test configuration built.  The third field is
# the function the test command calls, when it is not run_gate(): the
# kunitconfig and arch-kunit gates build five kernels of their own
# (40 minutes on a new 2-core machine), so the test command checks their
# configurations and "tools/ws matrix" runs and records the rest.
UPSTREAM_GATES = [
    ('wsobjtool', True, 'run_gate'),       # objtool noinstr validation
    ('wsdocs', False, 'run_gate'),         # htmldocs of mm and arch/x86
    ('wssend', False, 'run_gate'),         # b4 prep/send -o, send-email
    ('wskunitcfg', False, 'check_configs'),   # tests/*.kunitconfig alone
    ('wsarchkunit', False, 'check_configs'),  # KUnit on arm64, riscv64
    ('wsprefix', True, 'run_gate'),        # every prefix compiles
    ('wscross', False, 'run_gate'),        # cross builds
]


def gate_modules():
    return [importlib.import_module(name) for name, _, _ in
            UPSTREAM_GATES]


def setup_all_packages():
    """The workspace's packages and every gate's (cross compilers, QEMU
    for other architectures, Sphinx, git-email)."""
    wslib.setup_packages()
    extra = []
    for mod in gate_modules():
        extra += [p for p in getattr(mod, 'PACKAGES', []) if p not in extra]
    wslib.setup_packages(extra)


def upstream_gates(ws, checks, built):
    for name, needs_build, func in UPSTREAM_GATES:
        if needs_build and not built:
            checks.skip(f'gate {name}', 'the kernel did not build')
            continue
        with banner(f'gate: {name}'):
            try:
                getattr(importlib.import_module(name), func)(ws, checks)
            except WsError as e:
                checks.add(f'gate {name}', False, str(e))
    import wsprefix
    wsprefix.check_bisect_results(checks)
    import wsmatrix
    wsmatrix.check_results(checks)


def record_boot(checks, res, label, required=()):
    """Record a boot; each name in required must have a ws-check line."""
    if res.flake:
        checks.skip(f'boot {label}: first boot ran clean', res.flake)
    checks.add(f'boot {label}: clean log, init ran, VM ended',
               res.done and not res.problems and not res.timed_out,
               res.summary() if not res.ok else
               f'init at {res.init_uptime}s, {fmt_secs(res.wall)} wall')
    if res.qmp_error:
        checks.add(f'boot {label}: QMP script', False, res.qmp_error)
    for name, ok, why in res.checks:
        checks.add(f'boot {label}: {name}', ok, why)
    seen = set(name for name, _, _ in res.checks)
    for name in required:
        if name not in seen:
            checks.add(f'boot {label}: {name}', False,
                       'the guest never printed this check')


# The page-table stress boot (tests/boot.d/40-stress.sh): its guest time.
STRESS_SECONDS = 30

# The memory hot-add test: a pc-dimm of this size, in MiB, added and
# removed this many times in the test command's hotplug boot (the second
# add reuses what the first removal left; "tools/ws matrix" runs 20).
HOTPLUG_MB = 1024
HOTPLUG_CYCLES = 2
OVMF = '/usr/share/ovmf/OVMF.fd'


def hotplug_qmp(size_mb, addr=None, cycles=1):
    """QMP side of tests/boot.d/20-hotplug.sh: add a pc-dimm, remove it,
    cycles times (the boot needs ws.hotplug_cycles=cycles).  Each cycle
    has a backend of its own; the last one's is deleted once the guest
    has finished removing its dimm and asks for the next."""
    def script(qmp, console):
        for k in range(1, cycles + 1):
            console.wait_for('ws-hotplug: ready', 300)
            if k > 1:
                qmp.cmd('object-del', id=f'ws-hp-mem{k - 1}')
            qmp.cmd('object-add', **{'qom-type': 'memory-backend-ram',
                                     'id': f'ws-hp-mem{k}',
                                     'size': size_mb << 20})
            dimm = {'driver': 'pc-dimm', 'id': f'ws-hp-dimm{k}',
                    'memdev': f'ws-hp-mem{k}'}
            if addr is not None:
                dimm['addr'] = addr
            qmp.cmd('device_add', **dimm)
            console.wait_for('ws-hotplug: offlined', 600)
            qmp.cmd('device_del', id=f'ws-hp-dimm{k}')
    return script


def dmhotplug_qmp():
    """QMP side of tests/boot.d/25-directmap-hotplug.sh: two 512 MiB
    pc-dimms in the gigabyte at 4 GiB and a 1 GiB one at 5 GiB; remove the
    first, then the others."""
    dimms = [('ws-dm-a', 512, 4 << 30), ('ws-dm-b', 512, (4 << 30) + (512 << 20)),
             ('ws-dm-c', 1024, 5 << 30)]

    def script(qmp, console):
        console.wait_for('ws-dmhotplug: ready', 300)
        for name, size_mb, addr in dimms:
            qmp.cmd('object-add', **{'qom-type': 'memory-backend-ram',
                                     'id': f'{name}-mem',
                                     'size': size_mb << 20})
            qmp.cmd('device_add', driver='pc-dimm', id=name,
                    memdev=f'{name}-mem', addr=addr)
        console.wait_for('ws-dmhotplug: remove 1', 600)
        qmp.cmd('device_del', id='ws-dm-a')
        console.wait_for('ws-dmhotplug: remove 2', 600)
        qmp.cmd('device_del', id='ws-dm-b')
        qmp.cmd('device_del', id='ws-dm-c')
    return script


def boot_tests(ws, checks):
    """The boots of the test command.

    smoke: the plain boot.  stress: tests/boot/stress.c's fork, exec,
    mmap, mprotect, munmap, mremap and THP storms on both vCPUs, with
    the page tables keyed, then tests/boot/failnth.c's fail-nth walks
    over the allocations of fork, mremap, populate and THP, and of CPA's
    split and collapse of the direct map.  hotplug: a pc-dimm added and
    removed twice over QMP on a 4K direct map
    (tests/boot.d/20-hotplug.sh); hotplug-64g: once
    at 64 GiB, far enough that the vmemmap needs a table of its own too.
    dmhotplug: the direct map's collapse over hot-added memory, and its
    removal (tests/boot.d/25-directmap-hotplug.sh).  efi-pti: under OVMF,
    with EFI runtime services and page-table isolation forced on, for the
    page-table census of efi_mm and of PTI's user tables.
    """
    res = wsboot.boot(ws, name='boot-smoke', timeout=600)
    print(res.summary())
    record_boot(checks, res, 'smoke', ['census-init_mm', 'census-current',
                                       'census-init_mm-keyed',
                                       'pks-enabled', 'pks-log-clean'])

    res = wsboot.boot(ws, name='boot-stress', timeout=900,
                      cmdline=[f'ws.stress={STRESS_SECONDS}'] + wsboot.FAILNTH)
    print(res.summary())
    record_boot(checks, res, 'stress',
                ['stress-ran', 'stress-log-clean', 'stress-no-fallback',
                 'stress-census-init_mm-keyed', 'pks-log-clean',
                 'failnth-available', 'failnth-ran', 'failnth-log-clean',
                 'failnth-census-keyed', 'failnth-accounting',
                 'failnth-kunit-mem_table_fail_nth',
                 'failnth-kunit-x86_directmap_fail_nth'])

    res = wsboot.boot(ws, name='boot-hotplug', timeout=900,
                  cmdline=[f'ws.hotplug={HOTPLUG_MB}', 'debug_pagealloc=on',
                           f'ws.hotplug_cycles={HOTPLUG_CYCLES}'],
                  qemu_args=['-m', '1G,slots=2,maxmem=4G'],
                  qmp_script=hotplug_qmp(HOTPLUG_MB, cycles=HOTPLUG_CYCLES))
    print(res.summary())
    record_boot(checks, res, 'hotplug',
                ['hotplug-accounting-online-removed', 'census-init_mm',
                 'hotplug-added-tables', 'hotplug-added-keyed',
                 'hotplug-removed-keyed',
                 f'hotplug-accounting-online-removed-c{HOTPLUG_CYCLES}',
                 'hotplug-cycles-steady'])

    res = wsboot.boot(ws, name='boot-hotplug-64g', timeout=900,
                  cmdline=[f'ws.hotplug={HOTPLUG_MB}', 'debug_pagealloc=on'],
                  qemu_args=['-m', '1G,slots=2,maxmem=80G'],
                  qmp_script=hotplug_qmp(HOTPLUG_MB, addr=64 << 30))
    print(res.summary())
    record_boot(checks, res, 'hotplug-64g',
                ['hotplug-accounting-online-removed', 'census-init_mm',
                 'hotplug-added-tables', 'hotplug-added-keyed',
                 'hotplug-removed-keyed'])

    res = wsboot.boot(ws, name='boot-dmhotplug', timeout=900,
                  cmdline=['ws.dmhotplug'],
                  qemu_args=['-m', '1G,slots=3,maxmem=4G'],
                  qmp_script=dmhotplug_qmp())
    print(res.summary())
    record_boot(checks, res, 'dmhotplug',
                ['dmhotplug-two-dimms-collapse-2m-only',
                 'dmhotplug-one-dimm-collapse-1g',
                 'dmhotplug-removed-dimm-unmapped',
                 'dmhotplug-1g-dimm-unmapped'])

    res = wsboot.boot(ws, name='boot-efi-pti', timeout=900,
                  cmdline=['ws.efi', 'pti=on'],
                  qemu_args=['-bios', OVMF])
    print(res.summary())
    record_boot(checks, res, 'efi-pti',
                ['census-efi_mm', 'pti-enabled', 'census-init_mm',
                 'census-init_mm-keyed', 'census-efi_mm-keyed'])


def userspace_tests(ws, checks):
    """Harnesses that build series code in userspace (tools/testing/)."""
    for sub, what in USERSPACE_HARNESSES:
        d = os.path.join(ws.tree, sub)
        if not os.path.isdir(d):
            checks.skip(f'{what}', f'{sub} is not in the series yet')
            continue
        with banner(f'{what}: make check'):
            r = run(['make', '-C', d, f'-j{os.cpu_count() or 2}', 'check'],
                    check=False, capture=True)
        lines = re.findall(r'^(\S+): seed (\d+): (\d+) passed, (\d+) '
                           r'failed$', r.stdout, re.M)
        for prog, seed, p, f in lines:
            checks.add(f'{what}: {prog} (seed {seed})', int(f) == 0,
                       f'{p} passed, {f} failed')
        if r.returncode != 0 or not lines:
            print(r.stdout[-4000:])
            checks.add(f'{what}: make check', False,
                       f'exit {r.returncode}, {len(lines)} result lines')


USERSPACE_HARNESSES = [
    ('tools/testing/mem_table', 'mem_table userspace harness'),
]

# KUnit runs: the default boot (5-level paging under -cpu max), and the
# same kernel with no5lvl, so that geometry-dependent suites see both; the
# second also forces page-table isolation on, for the pgtable_ctor suite.
# Then x86_pks alone with preempt=full, where an interrupt's exit can
# preempt and migrate a task inside a window (its preempted_window case
# skips without it), and on the two boots without PKS: "nopks" on the
# command line, and a CPU that does not enumerate it (-cpu max,-pks).
# There its hardware cases skip with the reason and its no-op case runs;
# x86_pks_pgtables runs on those boots too, and with pks_tables=soft
# (stray writes to page tables allowed and counted) and pks_tables=off,
# and for the paging modes that the two full runs leave out: 4-level
# without PTI, and 5-level with PTI under OVMF, where EFI runtime services
# are up and the stray writes reach efi_mm's PGD too.
# Last, x86_directmap with 6 GiB of RAM, where RAM crosses 4 GiB and the
# direct map holds more gigabytes that boot may have mapped in 2M steps.
KUNIT_RUNS = [
    ('kunit', [], {}),
    ('kunit-no5lvl-pti', ['no5lvl', 'pti=on'], {}),
    ('kunit-preempt-full', ['preempt=full'], {'filter_glob': 'x86_pks'}),
    ('kunit-nopks', ['nopks'], {'filter_glob': 'x86_pks*'}),
    ('kunit-cpu-without-pks', [], {'filter_glob': 'x86_pks*',
                                   'qemu_args': ['-cpu', 'max,-pks']}),
    ('kunit-pks-tables-soft', ['pks_tables=soft'],
     {'filter_glob': 'x86_pks_pgtables'}),
    ('kunit-pks-tables-off', ['pks_tables=off'],
     {'filter_glob': 'x86_pks*'}),
    ('kunit-pks-tables-no5lvl', ['no5lvl'],
     {'filter_glob': 'x86_pks_pgtables'}),
    ('kunit-pks-tables-efi-pti', ['pti=on'],
     {'filter_glob': 'x86_pks_pgtables', 'qemu_args': ['-bios', OVMF]}),
    ('kunit-directmap-6g', [], {'filter_glob': 'x86_directmap',
                                'qemu_args': ['-m', '6G']}),
]


def kunit_tests(ws, checks):
    for name, cmdline, extra in KUNIT_RUNS:
        kunit_run(ws, checks, name, cmdline, **extra)


def kunit_run(ws, checks, name, cmdline, filter_glob=None, qemu_args=()):
    res = wskunit.run_kunit(ws, cmdline, name, filter_glob=filter_glob,
                            qemu_args=qemu_args)
    print(res.summary())
    wskunit.record(checks, name, res, 'tests/kunit-suites')
