# SPDX-License-Identifier: GPL-2.0
"""Gate: KUnit on arm64 and riscv64, under QEMU, with kunit.py's own setup.

The series changes the page-table constructors and destructors of every
architecture, but the test command boots x86_64 only.  arm64 and riscv
free kernel page tables in their own code (pmd_free_pte_page(),
pud_free_pmd_page(), memory hot-remove), so a constructor and destructor
that disagree there is seen only by running those architectures.

For each architecture of ARCHES this runs the kernel's kunit.py of the
work tree with --arch=<arch> and its own qemu_configs/<arch>.py (console,
machine, and for riscv the OpenSBI of qemu-system-data), the Debian cross
compiler through ccache, and tests/kunit/<arch>.kunitconfig: KUnit, the
pgtable_balance suite (a huge vmap or vmalloc over tables that held 4K
mappings, and NR_PAGETABLE across it), DEBUG_VM, THP, lockdep
(ALLOC_SPLIT_PTLOCKS) and memory hotplug.  Each architecture
builds in its own directory, work/archkunit/<arch>, so kbuild and ccache
keep later runs incremental.

Checks, per architecture: "<arch> kunit <suite>.<case>" for every case
(a skip gives the reason the test printed), the "Testing complete" line
with no failure or crash, every suite the kunitconfig enables ran, and a
kernel log free of oopses, BUG, WARNING, lockdep and KASAN reports.  An
option of the kunitconfig that no Kconfig file of the tree defines (a
prefix of the series) is left out and reported, and its suite is a skip
with that reason.  WS_ARCHKUNIT_ARCHES=arm64 restricts the run.

The two kernels take about 10 minutes to build on a new 2-core machine,
which the test command cannot afford.  It runs check_configs(): kunit.py
config for each architecture, so that every option of the kunitconfig
must survive olddefconfig there.  "tools/ws matrix" runs the builds and
boots (archkunit-<arch>) and records them in tests/matrix-results, keyed
by the series and the kunitconfig, and the test command checks that
record; "tools/ws gate arch-kunit" runs them here.
"""

import collections
import os
import re
import time

import wslib
from wslib import ROOT, WsError, banner, fmt_secs, info
import wskunit

KUNIT_DIR = os.path.join(ROOT, 'tests', 'kunit')

Arch = collections.namedtuple('Arch', 'name prefix kunitconfig')

ARCHES = (
    Arch('arm64', 'aarch64-linux-gnu-',
         os.path.join(KUNIT_DIR, 'arm64.kunitconfig')),
    Arch('riscv', 'riscv64-linux-gnu-',
         os.path.join(KUNIT_DIR, 'riscv.kunitconfig')),
)

# The Debian packages (format of wslib.PACKAGES): QEMU for each machine,
# the cross compilers, and riscv's firmware, which kunit.py's riscv
# configuration loads from /usr/share/qemu/ (qemu-system-data ships it).
PACKAGES = [
    ('qemu-system-arm', 'qemu-system-aarch64'),
    ('qemu-system-misc', 'qemu-system-riscv64'),
    ('qemu-system-data',
     '/usr/share/qemu/opensbi-riscv64-generic-fw_dynamic.bin'),
    ('gcc-aarch64-linux-gnu', 'aarch64-linux-gnu-gcc'),
    ('gcc-riscv64-linux-gnu', 'riscv64-linux-gnu-gcc'),
    ('ccache', 'ccache'),
]

# Kconfig symbol of a KUnit suite -> the suite's name, for the suites the
# kunitconfigs enable: each one enabled must appear in the results.
SUITES = {
    'PGTABLE_BALANCE_KUNIT_TEST': 'pgtable_balance',
}

# kunit.py's QEMU run: a TCG boot with lockdep and DEBUG_VM.
TIMEOUT = 1200

# A panic reboots at once, and kunit.py's QEMU (-no-reboot) then exits
# with what the kernel printed, instead of spinning until TIMEOUT.
KERNEL_ARGS = ('panic=-1',)

OPTION_RX = re.compile(r'^CONFIG_([A-Za-z0-9_]+)=(.*)$')
ELAPSED_RX = re.compile(r'Elapsed time: .*$', re.M)


def selected_arches():
    want = os.environ.get('WS_ARCHKUNIT_ARCHES')
    if not want:
        return list(ARCHES)
    known = {a.name: a for a in ARCHES}
    names = [n.strip() for n in want.split(',') if n.strip()]
    bad = [n for n in names if n not in known]
    if bad:
        raise WsError(f'WS_ARCHKUNIT_ARCHES: unknown {bad}; known: '
                      f'{", ".join(known)}')
    return [known[n] for n in names]


def filter_kunitconfig(src, dst, known):
    """Copy src to dst without the options that no Kconfig defines.
    Returns (suites the copy enables, options left out)."""
    kept, dropped, suites = [], [], []
    with open(src) as f:
        for line in f:
            m = OPTION_RX.match(line.strip())
            if m and m.group(1) not in known:
                dropped.append(m.group(1))
                continue
            if m and m.group(1) in SUITES and m.group(2) == 'y':
                suites.append(SUITES[m.group(1)])
            kept.append(line)
    with open(dst, 'w') as f:
        f.writelines(kept)
    return suites, dropped


def elapsed_line(res):
    """kunit.py's "Elapsed time: ... configuring, ... building, ...
    running" line from the run's log, or ''."""
    try:
        with open(res.log_path, errors='replace') as f:
            m = None
            for m in ELAPSED_RX.finditer(f.read()):
                pass
        return m.group(0).strip() if m else ''
    except OSError:
        return ''


def arch_named(name):
    return next(a for a in ARCHES if a.name == name)


def filtered_kunitconfig(checks, arch, build_dir, known, label):
    """arch's kunitconfig in build_dir without the options this tree
    does not define, each suite among those a skip: (path, suites)."""
    os.makedirs(build_dir, exist_ok=True)
    kconf = os.path.join(build_dir, 'ws.kunitconfig')
    want, dropped = filter_kunitconfig(arch.kunitconfig, kconf, known)
    kconf_name = os.path.relpath(arch.kunitconfig, ROOT)
    if dropped:
        info(f'{kconf_name}: no Kconfig file of the tree defines '
             f'{", ".join(dropped)}; left out')
    for sym in dropped:
        if sym in SUITES:
            checks.skip(f'{label} {SUITES[sym]}',
                        f'CONFIG_{sym} is not defined by this tree '
                        '(a prefix of the series)')
    return kconf, want


def gate_arch(ws, checks, arch, known):
    label = f'{arch.name} kunit'
    build_dir = os.path.join(ws.work, 'archkunit', arch.name)
    kconf, want = filtered_kunitconfig(checks, arch, build_dir, known, label)
    kconf_name = os.path.relpath(arch.kunitconfig, ROOT)
    res = wskunit.kunitpy(ws, build_dir, kconf, f'kunit-{arch.name}', want,
                          arch=arch.name, qemu_config=None,
                          cmdline=KERNEL_ARGS, timeout=TIMEOUT,
                          cross_compile=arch.prefix,
                          make_options=[f'CC=ccache {arch.prefix}gcc'])
    print(res.summary())
    wskunit.record(checks, label, res, kconf_name)
    times = elapsed_line(res)
    info(f'{label}: {fmt_secs(res.wall)} wall' +
         (f'; kunit.py: {times}' if times else ''))


def run_gate(ws, checks):
    if not ws.tree_exists():
        raise WsError(f'no work tree at {ws.tree}')
    wslib.setup_packages(PACKAGES)
    known = wslib.kconfig_symbols(ws.tree)
    t0 = time.monotonic()
    for arch in selected_arches():
        with banner(f'gate: KUnit on {arch.name}'):
            gate_arch(ws, checks, arch, known)
    info(f'arm64/riscv KUnit: {fmt_secs(time.monotonic() - t0)} in all')


def check_configs(ws, checks):
    """The test command's part: every option of each architecture's
    kunitconfig survives kunit.py's olddefconfig there."""
    import wskunitcfg
    wslib.setup_packages(PACKAGES)
    known = wslib.kconfig_symbols(ws.tree)
    for arch in selected_arches():
        label = f'{arch.name} kunit'
        build_dir = os.path.join(ws.work, 'archkunit-config', arch.name)
        kconf, _ = filtered_kunitconfig(checks, arch, build_dir, known,
                                        label)
        ok, said = wskunitcfg.kunitpy_config(
            ws, os.path.join(build_dir, 'build'), kconf, arch=arch.name,
            cross_compile=arch.prefix,
            make_options=[f'CC=ccache {arch.prefix}gcc'])
        checks.add(f"{label}: every option of "
                   f"{os.path.relpath(arch.kunitconfig, ROOT)} survives "
                   "kunit.py's olddefconfig", ok,
                   said or 'kunit.py config; the build and the suite: '
                   f'matrix run archkunit-{arch.name}')
