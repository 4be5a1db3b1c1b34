# SPDX-License-Identifier: GPL-2.0
"""Tests of tools/ws itself: bad input gets a clear message, loses nothing.

Run by "tools/ws test"; alone: python3 -m unittest -v tests.tools.test_ws
(needs the imported base in the cache, which "tools/ws base" makes).
"""

import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, 'tools'))

import wslib  # noqa: E402
from wslib import WsError  # noqa: E402

WS = os.path.join(ROOT, 'tools', 'ws')


def fake_command(bindir, name, script):
    path = os.path.join(bindir, name)
    with open(path, 'w') as f:
        f.write('#!/bin/sh\n' + textwrap.dedent(script))
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return path


class EnvCase(unittest.TestCase):
    """Each test gets a scratch directory and a clean WS_* environment."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix='ws-selftest-')
        self.saved = {k: os.environ.get(k) for k in (
            'WS_APT_GET', 'WS_APT_CACHE', 'WS_BASE_VERSION',
            'WS_BASE_SHA256')}
        for k in self.saved:
            os.environ.pop(k, None)
        wslib._apt_updated = False

    def tearDown(self):
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        shutil.rmtree(self.tmp, ignore_errors=True)


class BaseInstall(EnvCase):
    def test_missing_apt(self):
        os.environ['WS_APT_GET'] = os.path.join(self.tmp, 'no-apt-get')
        os.environ['WS_BASE_VERSION'] = '6.12.999-1'
        with self.assertRaisesRegex(WsError, 'apt-get is not available'):
            wslib.ensure_base_package(wslib.Base())

    def test_no_network(self):
        apt = fake_command(self.tmp, 'apt-get', """\
            echo 'Err:1 http://deb.debian.org/debian bookworm InRelease'
            echo '  Temporary failure resolving deb.debian.org'
            exit 100
            """)
        os.environ['WS_APT_GET'] = apt
        os.environ['WS_BASE_VERSION'] = '6.12.999-1'
        with self.assertRaisesRegex(WsError, 'cannot reach the Debian '
                                    'package mirror'):
            wslib.ensure_base_package(wslib.Base())

    def test_wrong_version_names_offered_and_override(self):
        apt = fake_command(self.tmp, 'apt-get', 'exit 0\n')
        cache = fake_command(self.tmp, 'apt-cache', """\
            echo 'linux-source-6.12 | 6.12.200-1~deb12u1 | http://x main'
            echo 'linux-source-6.12 | 6.12.190-1~deb12u1 | http://x main'
            """)
        os.environ.update(WS_APT_GET=apt, WS_APT_CACHE=cache,
                          WS_BASE_VERSION='6.12.1-1')
        with self.assertRaises(WsError) as cm:
            wslib.ensure_base_package(wslib.Base())
        msg = str(cm.exception)
        self.assertIn('6.12.200-1~deb12u1, 6.12.190-1~deb12u1', msg)
        self.assertIn('WS_BASE_VERSION=6.12.200-1~deb12u1', msg)
        self.assertIn('nothing falls back', msg)

    def test_hash_mismatch_refused(self):
        os.environ['WS_BASE_SHA256'] = '0' * 64
        with self.assertRaisesRegex(WsError, 'Refusing to use an '
                                    'unverified base'):
            wslib.ensure_base_package(wslib.Base())

    def test_pinned_in_one_place(self):
        """No tool names the version: base.conf is read by all."""
        conf = wslib.read_conf()
        for dirpath, _, files in os.walk(os.path.join(ROOT, 'tools')):
            for name in files:
                if '__pycache__' not in \
                        dirpath:
                    with open(os.path.join(dirpath, name), errors='ignore') \
                            as f:
                        text = f.read()
                    self.assertNotIn(conf['BASE_VERSION'], text, name)
                    self.assertNotIn(conf['BASE_SHA256'], text, name)


class BaseCache(EnvCase):
    def test_no_background_gc(self):
        """A gc pruning the cache while a clone hard-links it breaks it."""
        repo = wslib.ensure_base()
        r = subprocess.run(['git', '-C', repo, 'config', 'gc.auto'],
                           capture_output=True, text=True)
        self.assertEqual(r.stdout.strip(), '0')


class SeriesInput(EnvCase):
    @classmethod
    def setUpClass(cls):
        cls.shared = tempfile.mkdtemp(prefix='ws-selftest-tree-')
        cls.ws = wslib.Workspace(cls.shared)
        cls.empty_series = os.path.join(cls.shared, 'series-empty')
        open(cls.empty_series, 'w').close()
        cls.ws.apply(series=cls.empty_series, patches=cls.shared)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.shared, ignore_errors=True)

    def head(self):
        return wslib.git(self.ws.tree, 'rev-parse', 'HEAD')

    def series_with(self, *names):
        path = os.path.join(self.tmp, 'series')
        with open(path, 'w') as f:
            f.write('# a comment\n\n' + ''.join(n + '\n' for n in names))
        return path

    def test_series_names_missing_patch(self):
        before = self.head()
        series = self.series_with('0001-does-not-exist.patch')
        with self.assertRaisesRegex(WsError, 'series names 0001-does-not-'
                                    'exist.patch, but .* does not exist'):
            self.ws.apply(series=series, patches=self.tmp)
        self.assertEqual(self.head(), before)

    def make_patch(self, name, path, old, new):
        """A patch changing path's line old to new, made against the base."""
        tree = self.ws.tree
        full = os.path.join(tree, path)
        with open(full) as f:
            orig = f.read()
        self.assertIn(old, orig)
        with open(full, 'w') as f:
            f.write(orig.replace(old, new, 1))
        wslib.git(tree, 'commit', '-q', '-a', '-m', 'test: change ' + path)
        out = os.path.join(self.tmp, name)
        with open(out, 'w') as f:
            f.write(wslib.git(tree, 'format-patch', '--stdout', '-1') +
                    '\n')
        wslib.git(tree, 'reset', '-q', '--hard', 'HEAD~1')
        return out

    def test_patch_that_does_not_apply(self):
        good = self.make_patch('0001-good.patch', 'README',
                               'Linux kernel', 'Linux kernel (test)')
        bad = self.make_patch('0002-bad.patch', 'README',
                              'Linux kernel', 'Linux kernel (conflict)')
        series = self.series_with('0001-good.patch', '0002-bad.patch')
        with self.assertRaises(WsError) as cm:
            self.ws.apply(series=series, patches=self.tmp, force=True)
        msg = str(cm.exception)
        self.assertIn('patch 0002-bad.patch does not apply', msg)
        self.assertIn('reject', msg)
        self.assertEqual(self.ws.dirty(), '')
        self.assertIsNone(self.ws.in_progress())
        self.assertTrue(os.path.exists(good) and os.path.exists(bad))
        self.ws.apply(series=self.empty_series, patches=self.tmp, force=True)

    def test_apply_refuses_to_discard_work(self):
        readme = os.path.join(self.ws.tree, 'README')
        with open(readme, 'a') as f:
            f.write('local edit\n')
        try:
            with self.assertRaisesRegex(WsError, 'uncommitted changes'):
                self.ws.apply(series=self.empty_series, patches=self.tmp)
            with open(readme) as f:
                self.assertIn('local edit', f.read())
        finally:
            wslib.git(self.ws.tree, 'checkout', '--', 'README')

    def test_export_refuses_dirty_tree(self):
        patches = os.path.join(self.tmp, 'patches')
        os.makedirs(patches)
        keep = os.path.join(patches, '0001-keep.patch')
        with open(keep, 'w') as f:
            f.write('precious\n')
        readme = os.path.join(self.ws.tree, 'README')
        with open(readme, 'a') as f:
            f.write('uncommitted\n')
        try:
            with self.assertRaisesRegex(WsError, 'uncommitted changes'):
                self.ws.export(patches=patches,
                               series=os.path.join(self.tmp, 'series'))
        finally:
            wslib.git(self.ws.tree, 'checkout', '--', 'README')
        with open(keep) as f:
            self.assertEqual(f.read(), 'precious\n')
        self.assertFalse(os.path.exists(os.path.join(self.tmp, 'series')))

    def test_export_never_overwrites_uncommitted_patches(self):
        proj = os.path.join(self.tmp, 'proj')
        os.makedirs(os.path.join(proj, 'patches'))
        series = os.path.join(proj, 'series')
        with open(series, 'w') as f:
            f.write('0001-x.patch\n')
        with open(os.path.join(proj, 'patches', '0001-x.patch'), 'w') as f:
            f.write('committed\n')
        subprocess.run(['git', 'init', '-q', proj], check=True)
        subprocess.run(['git', '-C', proj, 'add', '.'], check=True)
        subprocess.run(['git', '-C', proj, '-c', 'user.name=t', '-c',
                        'user.email=t@t', 'commit', '-q', '-m', 'x'],
                       check=True)
        with open(os.path.join(proj, 'patches', '0001-x.patch'), 'w') as f:
            f.write('edited, not committed\n')
        with self.assertRaisesRegex(WsError, 'export would overwrite'):
            self.ws.export(patches=os.path.join(proj, 'patches'),
                           series=series)
        with open(os.path.join(proj, 'patches', '0001-x.patch')) as f:
            self.assertEqual(f.read(), 'edited, not committed\n')

    def test_export_is_stable(self):
        """The same commit exports to the same bytes twice."""
        self.make_patch('unused.patch', 'README', 'Linux kernel',
                        'Linux kernel (stable)')
        wslib.git(self.ws.tree, 'cherry-pick', '--allow-empty',
                  'HEAD@{1}')
        try:
            a, b = (os.path.join(self.tmp, d) for d in 'ab')
            na = wslib.format_patches(self.ws.tree, a)
            nb = wslib.format_patches(self.ws.tree, b)
            self.assertEqual(na, nb)
            self.assertEqual(len(na), 1)
            for n in na:
                with open(os.path.join(a, n), 'rb') as fa, \
                        open(os.path.join(b, n), 'rb') as fb:
                    self.assertEqual(fa.read(), fb.read())
            with open(os.path.join(a, na[0])) as f:
                self.assertTrue(f.readline().startswith('From ' + '0' * 40))
        finally:
            wslib.git(self.ws.tree, 'reset', '-q', '--hard', wslib.BASE_REF)


class SeriesParts(EnvCase):
    """export writes "series" in sections, one header per part."""

    def write_patch(self, name, subject):
        with open(os.path.join(self.tmp, name), 'w') as f:
            f.write(f'From 0 Mon Sep 17 00:00:00 2001\nSubject: [PATCH '
                    f'1/2] {subject}\n\nbody\n')
        return name

    def test_sections(self):
        names = [self.write_patch('0001-a.patch', 'mm: first'),
                 self.write_patch('0002-b.patch', 'x86: second')]
        text = wslib.series_text(names, self.tmp,
                                 [('mm: first', 'Part 1: A'),
                                  ('x86: second', 'Part 2: B')])
        body = text[len(wslib.SERIES_HEADER):]
        self.assertEqual(body, '\n# Part 1: A\n0001-a.patch\n'
                         '\n# Part 2: B\n0002-b.patch\n')
        self.assertEqual(wslib.read_series(self._write(text)), names)

    def _write(self, text):
        path = os.path.join(self.tmp, 'series')
        with open(path, 'w') as f:
            f.write(text)
        return path

    def test_unknown_part_subject(self):
        names = [self.write_patch('0001-a.patch', 'mm: first')]
        with self.assertRaisesRegex(WsError, 'does not have'):
            wslib.series_text(names, self.tmp,
                              [('mm: first', 'Part 1'),
                               ('mm: renamed', 'Part 2')])

    def test_first_patch_starts_no_part(self):
        names = [self.write_patch('0001-a.patch', 'mm: first')]
        with self.assertRaisesRegex(WsError, 'starts no part'):
            wslib.series_text(names, self.tmp, [('mm: other', 'Part 1')])

    def test_bad_parts_line(self):
        path = os.path.join(self.tmp, 'parts')
        with open(path, 'w') as f:
            f.write('no separator here\n')
        with self.assertRaisesRegex(WsError, 'SUBJECT | TITLE'):
            wslib.read_parts(path)


class KnownFailures(EnvCase):
    """tests/known-failures turns a listed failure into an XFAIL, and a
    listed check that passes into a failure (XPASS)."""

    def test_xfail_and_xpass(self):
        checks = wslib.Checks(known=[('cross powerpc*', 'tag clash',
                                      'constructors v2')])
        checks.add('cross powerpc: objects', False, 'error')
        checks.add('cross arm64: objects', True)
        p, f, s = checks.counts()
        self.assertEqual((p, f, s), (1, 0, 1))
        checks.add('cross powerpc: again', True)
        self.assertEqual(checks.counts()[1], 1)
        self.assertIn('XPASS', checks.results[-1][2])

    def test_unlisted_failure_fails(self):
        checks = wslib.Checks(known=[('cross powerpc*', 'r', 'f')])
        checks.add('cross s390: objects', False)
        self.assertEqual(checks.counts(), (0, 1, 0))

    def test_bad_line(self):
        path = os.path.join(self.tmp, 'known')
        with open(path, 'w') as f:
            f.write('only a glob\n')
        with self.assertRaisesRegex(WsError, 'WHAT FIXES IT'):
            wslib.read_known_failures(path)

    def test_repository_file_parses(self):
        wslib.read_known_failures()


class CrossKbuildLists(unittest.TestCase):
    """A directory kbuild never enters prints no lists; the cross gate
    must read that as "builds nothing", not as a failure (i386 has no
    CONFIG_XEN, so arch/x86/xen/ prints nothing there)."""

    LISTS = {'.': {'arch/x86/built-in.a'},
             'arch/x86': {'arch/x86/mm/built-in.a',
                          'arch/x86/kernel/built-in.a'},
             'arch/x86/mm': {'arch/x86/mm/init.o'}}

    def test_unlisted_subdir_is_not_entered(self):
        import wscross
        self.assertTrue(wscross.descent_stops_above('arch/x86/xen',
                                                    self.LISTS))
        self.assertTrue(wscross.descent_stops_above('arch/x86/xen/sub',
                                                    self.LISTS))
        self.assertFalse(wscross.reached('arch/x86/xen', self.LISTS))

    def test_listed_subdir_that_printed_nothing_is_lost(self):
        import wscross
        self.assertFalse(wscross.descent_stops_above('arch/x86/kernel',
                                                     self.LISTS))
        self.assertFalse(wscross.descent_stops_above('arch/x86',
                                                     {'.': {'arch/x86/built-in.a'}}))


class KunitRecord(unittest.TestCase):
    """wskunit.record() turns one kunit.py result into counted checks, for
    the x86_64 runs and the arm64/riscv64 runs alike."""

    def result(self, cases, missing=(), problems=(), summary=True):
        import wskunit
        res = wskunit.KunitResult('t')
        res.cases = list(cases)
        res.suites = {c.split('.', 1)[0] for c, _ in cases}
        res.missing = list(missing)
        res.problems = list(problems)
        res.skip_reasons = {'c3': 'no huge vmap'}
        res.kernel_log = True
        if summary:
            res.summary_line = 'Testing complete. Ran 3 tests: passed: 3'
            res.counts = {'passed': 3}
        else:
            res.error = 'kunit.py printed no "Testing complete" line'
        return res

    def record(self, res, known=()):
        import wskunit
        checks = wslib.Checks(known=list(known))
        wskunit.record(checks, 'arm64 kunit', res, 'arm64.kunitconfig')
        return checks

    def test_cases_skips_and_summary(self):
        checks = self.record(self.result([('s.c1', 'PASS'), ('s.c2', 'PASS'),
                                          ('s.c3', 'SKIP')]))
        self.assertEqual(checks.counts(), (5, 0, 1))
        self.assertIn(('arm64 kunit s.c3', None, 'no huge vmap'),
                      checks.results)

    def test_no_kernel_log_is_not_a_clean_log(self):
        res = self.result([], missing=['s'], summary=False)
        res.kernel_log = False
        checks = self.record(res)
        self.assertEqual(checks.counts(), (0, 2, 1))
        self.assertIn('no kernel log', checks.results[-1][2])

    def test_crash_before_a_case_reported_fails(self):
        # kunit.py names no case the kernel died in: "suite." is left.
        checks = self.record(self.result([('s.c1', 'PASS'), ('s.', 'CRASHED')],
                                          problems=[('oops', 'Oops: ...')],
                                          summary=False))
        failed = [n for n, ok, _ in checks.results if ok is False]
        self.assertIn('arm64 kunit s.<unreported case 1>', failed)
        self.assertEqual(checks.counts()[1], 3)

    def test_known_failures_of_an_architecture(self):
        known = [('arm64 kunit s.*', 'NULL mm', 'issue 13'),
                 ('arm64 kunit: kernel log: oops', 'the oops', 'issue 13')]
        res = self.result([('s.c1', 'FAIL'), ('s.', 'CRASHED')],
                          problems=[('oops', 'Oops: ...')])
        checks = self.record(res, known)
        self.assertEqual(checks.counts(), (2, 0, 3))
        checks.check_known_failures_used()
        self.assertEqual(checks.counts(), (3, 0, 3))
        # An expected oops hides no other kind of report.
        res.problems.append(('stall', 'rcu: INFO: rcu_sched detected '
                             'stalls on CPUs/tasks:'))
        self.assertEqual(self.record(res, known).counts()[1], 1)
        # Once fixed, the listed case passes (XPASS), and the oops entry
        # names no check any more (stale): both fail the run.
        checks = self.record(self.result([('s.c1', 'PASS')]), known)
        self.assertEqual(checks.counts()[1], 1)
        checks.check_known_failures_used()
        self.assertEqual(checks.counts()[1], 2)
        self.assertIn('arm64 kunit: kernel log: oops', checks.results[-1][2])
        # A run that did not reach the arm64 gate calls nothing stale.
        checks = wslib.Checks(known=known)
        checks.add('cross s390: objects', True)
        checks.check_known_failures_used()
        self.assertEqual(checks.counts(), (2, 0, 0))


class PgtablesBenchParse(unittest.TestCase):
    """tools/ws bench --pgtables: the guest's lines become per-operation
    figures; a load of test_vmalloc runs its test twice (busybox insmod
    retries), and base has no PKRS counter."""

    CONSOLE = textwrap.dedent("""\
        ws-bench-pt: before meminfo DirectMap4k:      14208 kB
        ws-bench-pt: before pool mode            on
        ws-bench-pt: fork mib 64 ns 6000 pkrs 520
        ws-bench-pt: munmap mib 64 ns 8000 pkrs 136
        ws-bench-pt: after-big meminfo DirectMap4k:      15000 kB
        ws-bench-pt: spawn n 20 ns 2000 pkrs 200
        ws-bench-pt: vmalloc fix_size_alloc_test runs 2 pkrs 40
        ws-bench-pt: [ 1.0] Summary: fix_size_alloc_test passed: 1 failed: 0 repeat: 1 loops: 10 avg: 30 usec
        ws-bench-pt: [ 1.1] Summary: fix_size_alloc_test passed: 1 failed: 0 repeat: 1 loops: 10 avg: 50 usec
        ws-bench-pt: vmalloc vm_map_ram_test runs 1 pkrs -1
        ws-bench-pt: [ 1.2] Summary: vm_map_ram_test passed: 1 failed: 0 repeat: 1 loops: 10 avg: 9 usec
        ws-bench-pt: after meminfo DirectMap4k:      16256 kB
        ws-bench-pt: after pool keyed_tables    235
        """)

    def test_figures(self):
        import wsbench
        ops, state = wsbench.parse_pgtables(self.CONSOLE, 64, 1)
        self.assertEqual(ops['fork 64 MiB'], [(6000, 520)])
        self.assertEqual(ops['munmap 64 MiB'], [(8000, 136)])
        self.assertEqual(ops['fork+exec+exit'], [(100, 10)])
        self.assertEqual(ops['fix_size_alloc_test'],
                         [(3000, 2), (5000, 2)])
        self.assertEqual(ops['vm_map_ram_test'], [(900, None)])
        self.assertEqual(state['before']['meminfo DirectMap4k'], '14208')
        self.assertEqual(state['before']['pool mode'], 'on')
        self.assertEqual(state['after-big']['meminfo DirectMap4k'], '15000')
        self.assertEqual(state['after']['pool keyed_tables'], '235')

    def test_report(self):
        import wsbench
        ops, state = wsbench.parse_pgtables(self.CONSOLE, 64, 1)
        base = {w: [(i, None) for i, _ in r] for w, r in ops.items()}
        report = wsbench.pgtables_report(
            {'base': base, 'off': ops, 'on': ops},
            {'base': state, 'off': state, 'on': state}, 1)
        self.assertRegex(report, r'fork 64 MiB +6000 +6000 +\+0\.00%')
        self.assertIn('DirectMap4k 14208 -> 16256', report)
        self.assertIn('DirectMap4k after the fork/munmap runs 15000, '
                      'after the spawns None', report)
        self.assertIn('on pool after: keyed_tables 235', report)
        self.assertRegex(report, r'vm_map_ram_test .* +- +-')

    def test_missing_runs_refused(self):
        import wsbench
        with self.assertRaisesRegex(WsError, 'too few runs of fork 64 MiB'):
            wsbench.parse_pgtables(self.CONSOLE, 64, 2)


class ConsoleScan(unittest.TestCase):
    """wsboot.scan_log() finds what makes a console log unhealthy."""

    def test_bad_lines(self):
        import wsboot
        log = textwrap.dedent("""\
            kernel BUG at include/linux/mm.h:3212!
            rcu: INFO: rcu_sched detected stalls on CPUs/tasks:
            rcu: INFO: rcu_sched self-detected stall on CPU
            rcu: INFO: rcu_preempt detected expedited stalls on CPUs/tasks:
            watchdog: BUG: soft lockup - CPU#0 stuck for 26s!
            INFO: task kworker/0:1:12 blocked for more than 120 seconds.
            BUG: KASAN: slab-use-after-free in ptlock_free+0x10/0x20
            WARNING: possible circular locking dependency detected
            Internal error: Oops - BUG: 00000000f2000800 [#3] SMP
            BUG: Bad page state in process swapper  pfn:01234
            ok 3 mt_test_concurrent
            BUG: KFENCE: use-after-free read in mt_load+0x1/0x2
            kmemleak: 2 new suspected memory leaks (see /sys/kernel/debug/kmemleak)
            x86/mm: Checked W+X mappings: FAILED, 12 W+X pages found.
            x86/mm: Checked W+X mappings: passed, no W+X pages found.
            CPA self-test:
            CPA 3 failed -22
            ODEBUG: 0 of 0 active objects replaced
            ODEBUG: free active (active state 0) object: 0 object type: timer_list
            """)
        kinds = [k for k, _ in wsboot.scan_log(log)]
        self.assertEqual(kinds, ['BUG_ON', 'stall', 'stall', 'stall',
                                 'stall', 'stall', 'KASAN', 'lockdep',
                                 'oops', 'BUG', 'KFENCE', 'kmemleak', 'W+X',
                                 'CPA', 'ODEBUG'])

    FLAKE = textwrap.dedent("""\
        [    0.004180] BUG: KASAN: wild-memory-access in do_raw_spin_lock+0x122/0x270
        [    0.005171] Write of size 4 at addr ff110000010d28a8 by task swapper/0/0
        [    0.006200]  kasan_report+0xfe/0x130
        [    0.006200]  handle_edge_irq+0x31/0xbb0
        [    0.006200] RIP: 0010:cpu_detect+0xc1/0x2b0
        [    0.006200]  identify_cpu+0x2c3/0x1890
        [    0.006200]  arch_cpu_finalize_init+0x25/0x420
        [    0.006200] ==================================================================
        """)

    def test_upstream_flake(self):
        """Only the upstream LA57 false positive, alone, is a flake."""
        import wsboot

        def flake(text):
            return wsboot.upstream_flake(text, wsboot.scan_log(text))
        self.assertIn('identify_cpu', flake(self.FLAKE))
        # The same report anywhere else is the series' problem.
        self.assertIsNone(flake(self.FLAKE.replace('identify_cpu',
                                                   'mt_store')))
        self.assertIsNone(flake(self.FLAKE.replace('ff110000010d28a8',
                                                   '0000000000000042')))
        # Any other report next to it fails the run as before.
        self.assertIsNone(flake(self.FLAKE + '[    9.1] WARNING: at x\n'))
        self.assertIsNone(flake(self.FLAKE + self.FLAKE.replace(
            'wild-memory-access', 'slab-use-after-free')))
        self.assertIsNone(flake('[    1.0] kasan_report+0x1/0x2\n'))


class Matrix(EnvCase):
    """tools/wsmatrix.py: the base's allowed splats, and the test
    command's check of tests/matrix-results."""

    def setUp(self):
        super().setUp()
        import wsmatrix
        self.m = wsmatrix
        self.results = os.path.join(self.tmp, 'matrix-results')
        self.skey = wsmatrix.series_key()

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, 'w') as f:
            f.write(textwrap.dedent(text))
        return path

    def test_base_splats_allow_only_their_config_kind_and_message(self):
        path = self.write('splats', """\
            # a comment
            checkers WARNING foo_bar\\+0x  # the base warns in foo_bar
            """)
        allowed = self.m.read_base_splats(path)
        probs = [('WARNING', 'WARNING: CPU: 0 at foo_bar+0x1/0x2'),
                 ('WARNING', 'WARNING: CPU: 0 at mt_store+0x1/0x2'),
                 ('KASAN', 'BUG: KASAN: in foo_bar+0x1/0x2')]
        bad, known = self.m.split_problems('checkers', probs, allowed)
        self.assertEqual(bad, probs[1:])
        self.assertEqual(known[0][2], 'the base warns in foo_bar')
        bad, _ = self.m.split_problems('debug', probs, allowed)
        self.assertEqual(bad, probs)

    def test_base_splat_matched_with_the_warning_message(self):
        """A WARN()'s message is on the line before its WARNING: line."""
        path = self.write('splats', """\
            cpa WARNING W\\^X violation: .*\\| .*WARNING: .* set_memory  # rodata test
            """)
        allowed = self.m.read_base_splats(path)
        text = ('[ 1.0] CPA detected W^X violation: 1a1 -> 1a3\n'
                '[ 1.1] WARNING: CPU: 0 PID: 1 at set_memory.c:695 x\n'
                '[ 9.0] other message\n'
                '[ 9.1] WARNING: CPU: 0 PID: 1 at set_memory.c:700 y\n')
        import wsboot
        bad, known = self.m.split_problems('cpa', wsboot.scan_log(text),
                                           allowed, text)
        self.assertEqual([line[-1] for _, line in bad], ['y'])
        self.assertEqual(len(known), 1)

    def test_base_splat_without_reason_refused(self):
        path = self.write('splats', 'checkers WARNING foo\n')
        with self.assertRaisesRegex(WsError, 'REASON'):
            self.m.read_base_splats(path)

    def check(self, results, complete=''):
        self.m.write_results(results, complete, self.results)
        saved = self.m.RESULTS
        self.m.RESULTS = self.results
        try:
            checks = wslib.Checks()
            self.m.check_results(checks)
        finally:
            self.m.RESULTS = saved
        return checks.counts()

    def all_ok(self):
        return {r.name: (self.skey, self.m.run_key(r), 'ok', '2026-12-06',
                         'no splat') for r in self.m.RUNS}

    def test_current_record_passes(self):
        self.assertEqual(self.check(self.all_ok(), 'x')[:2], (2, 0))

    def test_gate_run_never_recorded_skips_then_stale_fails(self):
        res = self.all_ok()
        gate = next(r.name for r in self.m.RUNS
                    if r.kind in self.m.GATE_KINDS)
        del res[gate]
        self.assertEqual(self.check(res, 'x'), (1, 0, 1))
        res = self.all_ok()
        res[gate] = ('feedfacefeedface',) + res[gate][1:]
        self.assertEqual(self.check(res, 'x')[:2], (1, 1))

    def test_gate_runs_cover_every_kunitconfig_and_architecture(self):
        import wsarchkunit
        import wskunitcfg
        names = {r.name for r in self.m.RUNS if r.kind in
                 self.m.GATE_KINDS}
        want = {f'kunitcfg-{wskunitcfg.suite_of(p)}'
                for p in wskunitcfg.kunitconfigs()}
        want |= {f'archkunit-{a.name}' for a in wsarchkunit.ARCHES}
        self.assertEqual(names, want)

    def test_gate_run_keyed_by_its_kunitconfig(self):
        """A changed kunitconfig makes its record stale, and only its."""
        import wskunitcfg
        runs = [r for r in self.m.RUNS if r.kind == 'kunitcfg']
        before = {r.name: self.m.run_key(r) for r in runs}
        copy = self.write('x.kunitconfig', 'CONFIG_KUNIT=y\n')
        saved = wskunitcfg.kunitconfig_of
        target = self.m.gate_target(runs[0])
        wskunitcfg.kunitconfig_of = lambda suite: (
            copy if suite == target else saved(suite))
        try:
            after = {r.name: self.m.run_key(r) for r in runs}
        finally:
            wskunitcfg.kunitconfig_of = saved
        changed = [n for n in before if before[n] != after[n]]
        self.assertEqual(changed, [runs[0].name])

    def test_test_command_calls_a_function_every_gate_has(self):
        import importlib
        import wsrun
        for name, _, func in wsrun.UPSTREAM_GATES:
            mod = importlib.import_module(name)
            self.assertTrue(callable(getattr(mod, func, None)),
                            f'{name}.{func}')
            self.assertTrue(callable(getattr(mod, 'run_gate', None)), name)

    def test_missing_run_skips_until_a_full_run_then_fails(self):
        res = self.all_ok()
        del res[self.m.RUNS[0].name]
        self.assertEqual(self.check(res), (1, 0, 1))
        self.assertEqual(self.check(res, 'x')[:2], (1, 1))

    def test_other_series_or_run_definition_is_stale(self):
        for i in (0, 1):
            res = self.all_ok()
            name = self.m.RUNS[0].name
            old = list(res[name])
            old[i] = 'feedfacefeedface'
            res[name] = tuple(old)
            self.assertEqual(self.check(res, 'x')[:2], (1, 1))

    def test_recorded_failure_fails(self):
        res = self.all_ok()
        name = self.m.RUNS[-1].name
        res[name] = res[name][:2] + ('FAIL', '2026-12-06', 'KASAN: x')
        self.assertEqual(self.check(res)[:2], (1, 1))


class ConsoleWait(unittest.TestCase):
    """wsboot.Console.wait_for() waits for a message printed once per
    cycle each time, not only the first (the hotplug cycles)."""

    def console(self, script):
        import io
        import wsboot
        proc = subprocess.Popen(['sh', '-c', script], stdout=subprocess.PIPE)
        self.addCleanup(proc.wait)
        self.addCleanup(proc.stdout.close)
        return wsboot.Console(proc, io.StringIO(), time.monotonic() + 20)

    def test_repeated_message_waited_for_again(self):
        con = self.console('echo "ws-hotplug: ready"; sleep 0.3; '
                           'echo "memory removed"; sleep 0.5; '
                           'echo "ws-hotplug: ready"; sleep 5')
        con.wait_for('ws-hotplug: ready', 10)
        con.wait_for('ws-hotplug: ready', 10)
        # Not back at the other line, but at the second "ready".
        self.assertEqual(con.text.count('ws-hotplug: ready'), 2)

    def test_message_seen_once_is_not_found_twice(self):
        con = self.console('echo "ws-hotplug: ready"; sleep 1')
        con.wait_for('ws-hotplug: ready', 10)
        with self.assertRaisesRegex(WsError, 'did not appear'):
            con.wait_for('ws-hotplug: ready', 10)


class CommandLine(EnvCase):
    def test_unknown_subcommand(self):
        r = subprocess.run([sys.executable, WS, 'frobnicate'],
                           capture_output=True, text=True)
        self.assertNotEqual(r.returncode, 0)
        self.assertIn('invalid choice', r.stderr)

    def test_export_without_tree(self):
        r = subprocess.run([sys.executable, WS, '--work', self.tmp,
                            'export'], capture_output=True, text=True)
        self.assertEqual(r.returncode, 2)
        self.assertIn('no work tree', r.stderr)


class WorkLock(EnvCase):
    """One tools/ws per work directory; a killed one leaves nothing."""

    def ws_export(self):
        return subprocess.run([sys.executable, WS, '--work', self.tmp,
                               'export'], capture_output=True, text=True)

    def start_holder(self):
        """A process that holds the work directory as "tools/ws test"."""
        holder = subprocess.Popen([sys.executable, '-c',
                                   'import sys, time, wslib; '
                                   'l = wslib.lock_work(sys.argv[1], "test"); '
                                   'print("locked", flush=True); '
                                   'time.sleep(120)', self.tmp],
                                  cwd=os.path.dirname(WS),
                                  stdout=subprocess.PIPE, text=True)
        self.assertEqual(holder.stdout.readline().strip(), 'locked')
        return holder

    def test_second_run_refused_at_once(self):
        holder = self.start_holder()
        try:
            t0 = time.monotonic()
            r = self.ws_export()
            self.assertLess(time.monotonic() - t0, 30)
            self.assertEqual(r.returncode, 2)
            self.assertIn(f'is in use by "tools/ws test" (pid {holder.pid})',
                          r.stderr)
        finally:
            holder.kill()
            holder.wait()
            holder.stdout.close()
        # Released by its death: the next one gets as far as its own work.
        r = self.ws_export()
        self.assertNotIn('in use', r.stderr)
        self.assertIn('no work tree', r.stderr)

    def test_killed_run_leaves_nothing(self):
        holder = self.start_holder()
        # What the run had made when it was killed: its scratch
        # directories, and the build directory, which stays.
        for name in ('roundtrip-x1', 'quilt-y2'):
            os.makedirs(os.path.join(self.tmp, name, 'exp1'))
        os.makedirs(os.path.join(self.tmp, 'build'))
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        holder.stdout.close()
        r = self.ws_export()
        self.assertNotIn('in use', r.stderr)
        self.assertEqual(sorted(os.listdir(self.tmp)),
                         sorted(['build', wslib.WORK_LOCK]))


class ConfigCheck(EnvCase):
    """kernel-config/ names the options of the whole series."""

    def setUp(self):
        super().setUp()
        self.ws = wslib.Workspace(self.tmp)
        os.makedirs(self.ws.tree)
        os.makedirs(self.ws.build_dir)
        with open(os.path.join(self.ws.tree, 'Kconfig'), 'w') as f:
            f.write('config FOO\n\tbool "foo"\n\nconfig BAR\n'
                    '\tbool "bar"\n\tdepends on FOO\n')
        subprocess.run(['git', 'init', '-q', self.ws.tree], check=True)
        subprocess.run(['git', '-C', self.ws.tree, 'add', 'Kconfig'],
                       check=True)
        with open(os.path.join(self.ws.build_dir, '.config'), 'w') as f:
            f.write('CONFIG_FOO=y\n# CONFIG_BAR is not set\n')
        self.frag = os.path.join(self.tmp, 'frag.config')

    def problems(self, text):
        with open(self.frag, 'w') as f:
            f.write(text)
        return self.ws.config_problems([self.frag])

    def test_option_that_did_not_survive_is_named(self):
        bad = self.problems('CONFIG_FOO=y\nCONFIG_BAR=y\n')
        self.assertEqual(len(bad), 1)
        self.assertIn('CONFIG_BAR=y asked, .config has n', bad[0])

    def test_later_fragment_wins(self):
        later = os.path.join(self.tmp, 'later.config')
        with open(later, 'w') as f:
            f.write('# CONFIG_BAR is not set\n')
        with open(self.frag, 'w') as f:
            f.write('CONFIG_FOO=y\nCONFIG_BAR=y\n')
        self.assertEqual(self.ws.config_problems([self.frag, later]), [])
        self.assertEqual(len(self.ws.config_problems([later, self.frag])), 1)

    def test_option_of_a_later_patch_is_not_a_problem(self):
        self.assertEqual(self.problems('CONFIG_FOO=y\nCONFIG_LATER=y\n'),
                         [])


class JsonResult(unittest.TextTestResult):
    """Also records every outcome, for tools/ws test to count."""

    outcomes = []

    def addSuccess(self, test):
        super().addSuccess(test)
        self.outcomes.append((test.id(), 'ok', ''))

    def addFailure(self, test, err):
        super().addFailure(test, err)
        self.outcomes.append((test.id(), 'FAIL', self._exc_info_to_string(
            err, test)))

    def addError(self, test, err):
        super().addError(test, err)
        self.outcomes.append((test.id(), 'FAIL', self._exc_info_to_string(
            err, test)))

    def addSkip(self, test, reason):
        super().addSkip(test, reason)
        self.outcomes.append((test.id(), 'SKIP', reason))


def main():
    import argparse
    import json
    p = argparse.ArgumentParser()
    p.add_argument('--results', help='write outcomes as JSON here')
    args = p.parse_args()
    suite = unittest.defaultTestLoader.loadTestsFromModule(
        sys.modules[__name__])
    runner = unittest.TextTestRunner(verbosity=2, resultclass=JsonResult)
    result = runner.run(suite)
    if args.results:
        with open(args.results, 'w') as f:
            json.dump(JsonResult.outcomes, f, indent=1)
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == '__main__':
    main()
