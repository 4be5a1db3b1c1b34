# SPDX-License-Identifier: GPL-2.0
"""The .kunitconfig gate: each suite runs from its own kunitconfig alone.

The README tells users to run one suite with
    kunit.py run --arch=x86_64 --kunitconfig=tests/<suite>.kunitconfig
and the test command's own KUnit runs use the whole kernel-config/, whose
options (memory hotremove selecting MEMORY_ISOLATION and CONTIG_ALLOC, say)
can hide a dependency that a suite's Kconfig entry forgot.  This gate runs
kunit.py for each tests/*.kunitconfig with nothing else: kunit.py makes
the .config from that file and its own defaults, checks that every option
of the file survived, builds and boots.  A suite must then run with no
failure, and its skips must give a reason.

It has two parts:
- check_configs(), in the test command: "kunit.py config" for each file,
  which is olddefconfig and kunit.py's own check that every option of the
  file survived.  Seconds, and it is where a Kconfig entry that forgot a
  dependency shows.
- run_file(), each file's build, boot and suite: three kernels from
  scratch (the first file, the SEV-SNP chain of x86_directmap, x86_pks
  without it), about 30 minutes on a new 2-core machine, which the test
  command cannot afford.  "tools/ws matrix" runs them (kunitcfg-<suite>),
  records them in tests/matrix-results keyed by the series and the file,
  and the test command checks that record; "tools/ws gate kunitconfig"
  runs them all here.

The full runs share one build directory (work/kunitcfg), so kbuild's
per-option dependencies rebuild only what a config change touches.
"""

import glob
import os
import subprocess

from wslib import ROOT
import wskunit

KUNITCONFIGS = os.path.join(ROOT, 'tests', '*.kunitconfig')


def suite_of(path):
    return os.path.basename(path)[:-len('.kunitconfig')]


def kunitconfig_of(suite):
    return os.path.join(ROOT, 'tests', f'{suite}.kunitconfig')


def option_count(path):
    with open(path) as f:
        return sum(1 for line in f if line.startswith('CONFIG_'))


def kunitconfigs():
    """The files, those with fewer options first: going from one to the
    next in one build directory then mostly adds options, and the
    SEV-SNP chain of x86_directmap (KVM, PCI drivers, crypto) is built
    last instead of built and then taken out again."""
    return sorted(glob.glob(KUNITCONFIGS),
                  key=lambda p: (option_count(p), p))


def run_file(ws, checks, kconf):
    """kunit.py run of one kunitconfig alone: build, boot, its suite."""
    build_dir = os.path.join(ws.work, 'kunitcfg')
    os.makedirs(build_dir, exist_ok=True)
    suite = suite_of(kconf)
    res = wskunit.kunitpy(ws, build_dir, kconf, f'kunitconfig-{suite}',
                          [suite], filter_glob=suite)
    print(res.summary())
    label = f'{suite}.kunitconfig alone'
    checks.add(f'{label}: builds, boots, suite ran with no failure',
               res.ok, res.summary() if not res.ok else
               f'{len(res.cases)} cases; {res.summary_line}')
    unexplained = [c for c, st in res.cases if st == 'SKIP' and not
                   res.skip_reasons.get(c.rsplit('.', 1)[-1])]
    checks.add(f'{label}: every skip gives its reason', not unexplained,
               f'skipped without a reason: {unexplained}'
               if unexplained else '')


def run_gate(ws, checks):
    """Every file's full run ("tools/ws gate kunitconfig")."""
    for kconf in kunitconfigs():
        run_file(ws, checks, kconf)


def kunitpy_config(ws, build_dir, kconf, arch='x86_64', qemu_config=None,
                   cross_compile=None, make_options=None):
    """kunit.py config of kconf in build_dir, from an empty .config:
    (ok, what kunit.py said when it failed)."""
    os.makedirs(build_dir, exist_ok=True)
    for old in ('.config', '.kunitconfig'):
        path = os.path.join(build_dir, old)
        if os.path.exists(path):
            os.unlink(path)
    cmd = ['python3', os.path.join(ws.tree, 'tools/testing/kunit/kunit.py'),
           'config', f'--arch={arch}', f'--build_dir={build_dir}',
           f'--kunitconfig={kconf}']
    if qemu_config:
        cmd.append(f'--qemu_config={qemu_config}')
    if cross_compile:
        cmd.append(f'--cross_compile={cross_compile}')
    if make_options is None:
        make_options = [a for a in ws.make_args()
                        if not a.startswith(('O=', 'ARCH='))]
    cmd += [f'--make_options={opt}' for opt in make_options]
    env = dict(os.environ)
    env.update(ws.make_env())
    env.pop('ARCH', None)
    p = subprocess.run(cmd, cwd=ws.tree, env=env, text=True,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode == 0:
        return True, ''
    noise = ('[', '$ ', 'Generating')
    said = [ln.strip() for ln in p.stdout.splitlines()
            if ln.strip() and not ln.startswith(noise)]
    return False, ' | '.join(said[-4:])[:400]


def check_configs(ws, checks):
    """The test command's part: every option of each file survives
    kunit.py's olddefconfig."""
    build_dir = os.path.join(ws.work, 'kunitcfg-config')
    for kconf in kunitconfigs():
        ok, said = kunitpy_config(ws, build_dir, kconf,
                                  qemu_config=wskunit.QEMU_CONFIG)
        checks.add(f'{suite_of(kconf)}.kunitconfig alone: every option '
                   "survives kunit.py's olddefconfig", ok,
                   said or 'kunit.py config; the build and the suite: '
                   f'matrix run kunitcfg-{suite_of(kconf)}')
