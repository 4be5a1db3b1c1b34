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

The runs share one build directory (work/kunitcfg), so kbuild's
per-option dependencies rebuild only what a config change touches.
"""

import glob
import os

from wslib import ROOT
import wskunit

KUNITCONFIGS = os.path.join(ROOT, 'tests', '*.kunitconfig')


def suite_of(path):
    return os.path.basename(path)[:-len('.kunitconfig')]


def run_gate(ws, checks):
    build_dir = os.path.join(ws.work, 'kunitcfg')
    os.makedirs(build_dir, exist_ok=True)
    for kconf in sorted(glob.glob(KUNITCONFIGS)):
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
