# SPDX-License-Identifier: GPL-2.0
"""Run the series' KUnit suites with the kernel's own kunit.py.

kunit.py builds in the workspace's build directory, from a kunitconfig
that is the concatenation of kernel-config/ fragments: the same options
"tools/ws config" merged, so the kernel that boots and the kernel that
runs KUnit are one build.  kunit.py's record of the last kunitconfig
(build/last_used_kunitconfig) is written beforehand so that it does not throw
away a .config that already satisfies it.
"""

import collections
import fnmatch
import json
import os
import re
import shutil
import subprocess
import time

from wslib import ROOT, banner, fmt_secs
import wsboot

QEMU_CONFIG = os.path.join(ROOT, 'tests', 'kunit', 'qemu_x86_64_max.py')
SUITES_FILE = os.path.join(ROOT, 'tests', 'kunit-suites')
SKIP_RX = re.compile(r'^(?:\[[^]]*\])?\s*ok \d+ (.*?) # SKIP(.*)$', re.M)
SUMMARY_RX = re.compile(r'Testing complete\. Ran (\d+) tests: (.*)$', re.M)


class KunitResult:
    def __init__(self, name):
        self.name = name
        self.cases = []          # (suite.case, status)
        self.suites = set()
        self.missing = []
        self.summary_line = None
        self.counts = {}
        self.problems = []
        self.error = None
        self.log_path = None
        self.wall = 0.0
        self.skip_reasons = {}   # case name -> reason the test gave
        self.kernel_log = False  # a kernel log of this run was read
        self.flake = None        # a first run's upstream flake, explained

    @property
    def ok(self):
        return (self.error is None and self.summary_line is not None and
                not self.missing and not self.problems and
                self.counts.get('failed', 0) == 0 and
                self.counts.get('crashed', 0) == 0 and
                self.counts.get('errors', 0) == 0 and
                all(st in ('PASS', 'SKIP') for _, st in self.cases))

    def summary(self):
        lines = [f'kunit {self.name}: {"ok" if self.ok else "FAILED"} '
                 f'({fmt_secs(self.wall)}; log {self.log_path})']
        if self.summary_line:
            lines.append(f'  {self.summary_line}')
        if self.error:
            lines.append(f'  error: {self.error}')
        for s in self.missing:
            lines.append(f'  suite {s} did not run')
        for kind, line in self.problems[:10]:
            lines.append(f'  {kind} in the kernel log: {line}')
        for case, st in self.cases:
            if st not in ('PASS', 'SKIP'):
                lines.append(f'  {case}: {st}')
        return '\n'.join(lines)


def read_suites(path):
    with open(path) as f:
        return [ln.split('#', 1)[0].strip() for ln in f
                if ln.split('#', 1)[0].strip()]


def walk_json(group, prefix, out):
    for case in group.get('test_cases', []):
        out.append((f'{prefix}.{case["name"]}' if prefix else case['name'],
                    case['status']))
    for sub in group.get('sub_groups', []):
        name = f'{prefix}.{sub["name"]}' if prefix else sub['name']
        walk_json(sub, name, out)


def run_kunit(ws, cmdline=(), name='kunit', suites_file=None, timeout=1200,
              filter_glob=None, qemu_args=()):
    """One kunit.py run.  filter_glob limits it to matching suites (and
    then only those must run); qemu_args go after the QEMU config's own
    arguments, so that a later -cpu overrides its -cpu max."""
    suites_file = suites_file or SUITES_FILE
    want = read_suites(suites_file)
    if filter_glob:
        want = [s for s in want if fnmatch.fnmatchcase(s, filter_glob)]
    kconf = os.path.join(ws.build_dir, 'ws.kunitconfig')
    merged = ws.merged_fragment()
    with open(kconf, 'w') as f:
        f.write(merged)
    # kunit.py keeps a .config that satisfies the kunitconfig only when
    # its record of the previous kunitconfig matches; ws config made this
    # .config from exactly these options.
    with open(os.path.join(ws.build_dir, 'last_used_kunitconfig'),
              'w') as f:
        f.write(merged)
    return kunitpy(ws, ws.build_dir, kconf, name, want, cmdline=cmdline,
                   timeout=timeout, filter_glob=filter_glob,
                   qemu_args=qemu_args)


def kunitpy(ws, build_dir, kconf, name, want, arch='x86_64',
            qemu_config=QEMU_CONFIG, cmdline=(), timeout=1200,
            filter_glob=None, qemu_args=(), cross_compile=None,
            make_options=None, _again=False):
    """Run kunit.py of ws.tree on kconf in build_dir; want: suites that
    must appear in its results.  qemu_config None means kunit.py's own
    configuration for arch; make_options default to the workspace's
    (ccache) on x86_64 only."""
    res = KunitResult(name)
    os.makedirs(ws.logs, exist_ok=True)
    res.log_path = os.path.join(ws.logs, f'{name}.log')
    json_path = os.path.join(ws.logs, f'{name}.json')
    jobs = os.environ.get('WS_JOBS') or str(os.cpu_count() or 2)
    cmd = ['python3', os.path.join(ws.tree, 'tools/testing/kunit/kunit.py'),
           'run', f'--arch={arch}', f'--build_dir={build_dir}',
           f'--kunitconfig={kconf}', f'--jobs={jobs}',
           f'--timeout={timeout}', f'--json={json_path}']
    if qemu_config:
        cmd.append(f'--qemu_config={qemu_config}')
    env = dict(os.environ)
    env.update(ws.make_env())
    env.pop('ARCH', None)
    if cross_compile:
        cmd.append(f'--cross_compile={cross_compile}')
    if make_options is None and arch == 'x86_64':
        make_options = [a for a in ws.make_args()
                        if not a.startswith(('O=', 'ARCH='))]
    for opt in make_options or ():
        cmd.append(f'--make_options={opt}')
    for arg in cmdline:
        cmd.append(f'--kernel_args={arg}')
    if qemu_args:
        cmd.append('--qemu_args=' + ' '.join(qemu_args))
    if filter_glob:
        cmd.append(filter_glob)
    t0 = time.monotonic()
    # Neither file may survive from an earlier run: a build that fails
    # now must not be read as that run's results.
    for old in (json_path, os.path.join(build_dir, 'test.log')):
        if os.path.exists(old):
            os.unlink(old)
    with banner(f'KUnit ({name}): kunit.py run --arch={arch}'):
        with open(res.log_path, 'w') as logf:
            logf.write('$ ' + ' '.join(cmd) + '\n')
            logf.flush()
            p = subprocess.run(cmd, cwd=ws.tree, env=env, text=True,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
            logf.write(p.stdout)
    res.wall = time.monotonic() - t0
    raw = os.path.join(build_dir, 'test.log')
    parse_output(res, p.stdout, json_path, want, raw)
    flake = res.kernel_log and wsboot.upstream_flake(_read(raw),
                                                    res.problems)
    if flake and not _again:
        kept = os.path.join(ws.logs, f'{name}-flake.log')
        os.replace(res.log_path, kept)
        shutil.copyfile(raw, kept + '.kernel')
        print(f'ws: {name}: {flake}; running once more (first logs: '
              f'{kept}, {kept}.kernel)')
        res = kunitpy(ws, build_dir, kconf, name, want, arch, qemu_config,
                      cmdline, timeout, filter_glob, qemu_args,
                      cross_compile, make_options, _again=True)
        res.flake = f'{flake}; first logs {kept}, {kept}.kernel'
    return res


def _read(path):
    with open(path, errors='replace') as f:
        return f.read()


def parse_output(res, out, json_path, want, raw):
    """Fill res from kunit.py's output, its JSON and the raw kernel log."""
    m = None
    for m in SUMMARY_RX.finditer(out):
        pass
    if m:
        res.summary_line = m.group(0).strip()
        for part in m.group(2).split(','):
            k, _, v = part.strip().partition(':')
            if v.strip().isdigit():
                res.counts[k.strip()] = int(v)
        res.counts['total'] = int(m.group(1))
    else:
        tail = '\n'.join(out.strip().splitlines()[-15:])
        res.error = f'kunit.py printed no "Testing complete" line:\n{tail}'
    if os.path.exists(json_path):
        with open(json_path) as f:
            data = json.load(f)
        walk_json(data, '', res.cases)
        res.suites = {sub['name'] for sub in data.get('sub_groups', [])}
    res.missing = [s for s in want if s not in res.suites]
    if os.path.exists(raw):
        text = _read(raw)
        res.kernel_log = True
        res.problems = wsboot.scan_log(text)
        for m in SKIP_RX.finditer(text):
            res.skip_reasons[m.group(1).strip()] = m.group(2).strip()


def record(checks, label, res, suites_from):
    """Count res as checks named "<label> ...": one per case (a skip with
    the reason the test printed; a case the kernel died in before
    reporting it fails, named by its suite), the summary line, every
    wanted suite ran (suites_from: the file that names them), and a
    kernel log free of warnings, lockdep and KASAN reports (when it is
    not, one failing check per kind of report, so that tests/known-failures
    can list an expected oops without hiding, say, an RCU stall)."""
    if res.flake:
        checks.skip(f'{label}: first run ran clean', res.flake)
    unreported = collections.Counter()
    for case, st in res.cases:
        if case.endswith('.'):
            unreported[case] += 1
            checks.add(f'{label} {case}<unreported case '
                       f'{unreported[case]}>', False,
                       f'{st}: the kernel stopped before the case reported')
        elif st == 'SKIP':
            why = res.skip_reasons.get(case.rsplit('.', 1)[-1]) or \
                'no reason given'
            checks.skip(f'{label} {case}', why)
        else:
            checks.add(f'{label} {case}', st == 'PASS', st)
    checks.add(f'{label}: "Testing complete" line, no failure or crash',
               res.summary_line is not None and
               not res.counts.get('failed') and
               not res.counts.get('crashed') and
               not res.counts.get('errors') and res.error is None,
               res.summary_line or res.error or '')
    checks.add(f'{label}: every suite of {suites_from} ran',
               not res.missing,
               f'missing: {res.missing}' if res.missing
               else f'ran {", ".join(sorted(res.suites))}')
    if not res.kernel_log:
        checks.skip(f'{label}: kernel log free of warnings, lockdep and '
                    'KASAN', 'no kernel log: the kernel did not build or '
                    'did not start')
    elif not res.problems:
        checks.add(f'{label}: kernel log free of warnings, lockdep and KASAN',
                   True)
    kinds = collections.defaultdict(list)
    for kind, line in res.problems:
        kinds[kind].append(line)
    for kind, lines in kinds.items():
        checks.add(f'{label}: kernel log: {kind}', False,
                   f'{len(lines)} reports: ' + '; '.join(lines[:3]))
