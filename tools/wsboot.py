# SPDX-License-Identifier: GPL-2.0
"""Boot the built kernel under QEMU TCG from a busybox initramfs.

The guest runs tests/boot/init, which sources every tests/boot.d/*.sh.
Those scripts print two kinds of lines on the console:

  ws-report: KEY: VALUE      a line for the main command's report
  ws-check: NAME: ok         a check that passed
  ws-check: NAME: FAIL WHY   a check that failed

The host fails the boot on a panic, an oops, BUG:, WARNING:, a KASAN or
UBSAN report, a timeout, or when the guest never says "ws-boot: done".
"""

import os
import re
import select
import shutil
import socket
import subprocess
import time
import json

from wslib import ROOT, WsError, run, fmt_secs

BOOT_DIR = os.path.join(ROOT, 'tests', 'boot')
BOOT_D = os.path.join(ROOT, 'tests', 'boot.d')

# What in a console log means the kernel is not healthy, and of which
# kind.  A line counts once, for the first pattern it matches, so the
# specific kinds come before the generic "BUG:" and "WARNING:" that their
# reports also print: a listed known failure of one kind (say BUG_ON)
# must not hide a report of another (a soft lockup, a KASAN report).
BAD_PATTERNS = [
    # A task that runs too long without a schedule point: an RCU stall,
    # a soft or hard lockup, a task blocked past the hung-task timeout.
    (re.compile(r'(self-)?detected (expedited )?stalls? on|soft lockup|'
                r'hard LOCKUP|blocked for more than \d+ seconds'), 'stall'),
    (re.compile(r'KASAN:|kasan_report'), 'KASAN'),
    (re.compile(r'UBSAN:'), 'UBSAN'),
    (re.compile(r'possible circular locking|inconsistent lock state|'
                r'suspicious RCU usage|possible recursive locking|'
                r'lock held when returning'), 'lockdep'),
    # The checkers of "tools/ws matrix": KFENCE (before BUG:, which its
    # reports print), kmemleak after a scan, W+X mappings, CPA's
    # self-test, debug objects.
    (re.compile(r'BUG: KFENCE:'), 'KFENCE'),
    (re.compile(r'kmemleak: \d+ new suspected memory leaks'), 'kmemleak'),
    (re.compile(r'Checked W\+X mappings: FAILED|Found insecure W\+X'),
     'W+X'),
    (re.compile(r'NOT PASSED\. Please report|\bCPA (\d+ failed|'
                r'[0-9a-f]+: (bad pte|unexpected level)|lookup of|'
                r'reverting failed)'), 'CPA'),
    (re.compile(r'ODEBUG: (.*object type:|Out of memory)'), 'ODEBUG'),
    (re.compile(r'kernel BUG at'), 'BUG_ON'),
    (re.compile(r'Kernel panic'), 'panic'),
    (re.compile(r'\bOops\b|general protection fault'), 'oops'),
    (re.compile(r'\bBUG:'), 'BUG'),
    (re.compile(r'\bWARNING:'), 'WARNING'),
]


# Reports that are upstream's, not the series', and come and go with
# timing.  A boot or KUnit run whose every report is one of these runs
# once more: the second run's result is the one that counts, and the
# first run's report is listed as a skip with its explanation, so that it
# is seen but fails nothing.
#
# identify_cpu() zeroes boot_cpu_data's capability words before it reads
# CPUID again, with interrupts on.  Until the words are filled in,
# pgtable_l5_enabled() (a capability test before alternatives are
# patched) says 4-level paging, KASAN's lower bound of shadowed memory
# moves up accordingly, and a 5-level direct-map address (ff11...)
# touched by an interrupt handler in that window is reported as a wild
# access.  Reported upstream with the same trace, on v7.1-rc5:
# https://lkml.iu.edu/hypermail/linux/kernel/2606.1/11911.html
LA57_KASAN_FLAKE = (
    'upstream false positive: KASAN "wild-memory-access" on a 5-level '
    'direct-map address in an interrupt taken while identify_cpu() '
    'refills the boot CPU\'s capabilities '
    '(https://lkml.iu.edu/hypermail/linux/kernel/2606.1/11911.html)')


def upstream_flake(text, problems):
    """The explanation when every problem in a log is a known upstream
    flake, else None."""
    if not problems or any(kind != 'KASAN' for kind, _ in problems):
        return None
    reports = re.split(r'(?=BUG: KASAN: )', text)[1:]
    if not reports:
        return None
    for rep in reports:
        head = rep[:3000]
        if not (head.startswith('BUG: KASAN: wild-memory-access') and
                re.search(r'at addr ff1[0-9a-f]{13}', head) and
                'identify_cpu' in head and
                'arch_cpu_finalize_init' in head):
            return None
    return LA57_KASAN_FLAKE


def scan_log(text):
    """Return the list of (kind, line) problems found in a console log."""
    problems = []
    for line in text.splitlines():
        for rx, kind in BAD_PATTERNS:
            if rx.search(line):
                problems.append((kind, line.strip()))
                break
    return problems


class BootResult:
    def __init__(self, name, log_path):
        self.name = name
        self.log_path = log_path
        self.log = ''
        self.problems = []
        self.reports = []
        self.checks = []
        self.done = False
        self.timed_out = False
        self.wall = 0.0
        self.init_uptime = None
        self.qmp_error = None
        self.flake = None

    @property
    def ok(self):
        return (self.done and not self.problems and not self.timed_out and
                not self.qmp_error and
                all(ok for _, ok, _ in self.checks))

    def summary(self):
        lines = [f'boot {self.name}: {"ok" if self.ok else "FAILED"} '
                 f'({fmt_secs(self.wall)} wall; log {self.log_path})']
        if self.init_uptime is not None:
            lines.append(f'  init reached {self.init_uptime:.2f}s after '
                         'the kernel started')
        if self.timed_out:
            lines.append('  timed out')
        elif not self.done:
            lines.append('  the guest never printed "ws-boot: done"')
        if self.qmp_error:
            lines.append(f'  QMP: {self.qmp_error}')
        for kind, line in self.problems[:10]:
            lines.append(f'  {kind}: {line}')
        for name, ok, why in self.checks:
            if not ok:
                lines.append(f'  check {name}: FAIL {why}')
        return '\n'.join(lines)


def build_initramfs(ws):
    """Build (or reuse) the busybox initramfs; return its path."""
    busybox = '/bin/busybox'
    if not os.path.exists(busybox):
        raise WsError('/bin/busybox not found: install busybox-static '
                      '("tools/ws setup")')
    out = os.path.join(ws.work, 'initramfs.cpio.gz')
    # Static helpers: tests/boot/NAME.c becomes /bin/ws-NAME.
    helpers = [os.path.join(BOOT_DIR, n) for n in ('stress.c', 'failnth.c')]
    srcs = [busybox, os.path.join(BOOT_DIR, 'init')] + helpers
    if os.path.isdir(BOOT_D):
        srcs += [os.path.join(BOOT_D, n) for n in sorted(os.listdir(BOOT_D))]
    newest = max(os.path.getmtime(s) for s in srcs + [BOOT_D])
    if os.path.exists(out) and os.path.getmtime(out) >= newest:
        return out
    stage = os.path.join(ws.work, 'initramfs')
    shutil.rmtree(stage, ignore_errors=True)
    for d in ('bin', 'sbin', 'proc', 'sys', 'dev', 'tmp', 'etc/boot.d'):
        os.makedirs(os.path.join(stage, d))
    shutil.copy2(busybox, os.path.join(stage, 'bin', 'busybox'))
    shutil.copy2(os.path.join(BOOT_DIR, 'init'), os.path.join(stage, 'init'))
    os.chmod(os.path.join(stage, 'init'), 0o755)
    # The page-table stress of tests/boot.d/40-stress.sh and the
    # fault-injection walks of 45-failnth.sh.
    for src in helpers:
        name = 'ws-' + os.path.basename(src)[:-len('.c')]
        run(['gcc', '-static', '-O2', '-Wall', '-Wextra', '-Werror',
             '-o', os.path.join(stage, 'bin', name), src])
    if os.path.isdir(BOOT_D):
        for n in sorted(os.listdir(BOOT_D)):
            if n.endswith('.sh'):
                shutil.copy2(os.path.join(BOOT_D, n),
                             os.path.join(stage, 'etc/boot.d', n))
    files = run(['find', '.', '-print0'], cwd=stage, capture=True).stdout
    cpio = subprocess.run(['cpio', '--quiet', '-o', '-0', '-H', 'newc',
                           '--owner=0:0'], cwd=stage, input=files.encode(),
                          stdout=subprocess.PIPE, check=True).stdout
    tmp = out + '.tmp'
    with open(tmp, 'wb') as f:
        f.write(subprocess.run(['gzip', '-9n'], input=cpio,
                               stdout=subprocess.PIPE, check=True).stdout)
    os.replace(tmp, out)
    return out


# The command line of the fail-nth walks (tests/boot.d/45-failnth.sh).
# KUnit is off on these boots but for the suites that walk fail-nth over
# mem_table and SEV-SNP's transitions: run at boot, they skip (nothing
# can arm fault injection yet) but get their debugfs directories, and
# the script runs them again once it has set the knobs.
FAILNTH = ['ws.failnth=1', 'kunit.enable=1', 'kunit.filter_glob=*_fail_nth']


def qemu_command(ws, initrd, cmdline, qemu_args, qmp_sock=None):
    append = ['console=ttyS0', 'panic=-1', 'loglevel=7'] + cmdline
    cmd = ['qemu-system-x86_64', '-nodefaults', '-no-reboot',
           '-display', 'none', '-serial', 'stdio', '-accel', 'tcg',
           '-kernel', ws.bzimage(), '-initrd', initrd,
           '-append', ' '.join(append)]
    # Defaults first; a caller's -cpu/-smp/-m replaces the default.
    defaults = {'-cpu': 'max', '-smp': '2', '-m': '1G'}
    given = set(a for a in qemu_args if a.startswith('-'))
    for opt, val in defaults.items():
        if opt not in given:
            cmd += [opt, val]
    if qmp_sock:
        cmd += ['-qmp', f'unix:{qmp_sock},server=on,wait=off']
    return cmd + list(qemu_args)


def boot(ws, cmdline=(), qemu_args=(), timeout=300, name='boot',
         qmp_script=None):
    """Boot; qmp_script(qmp, console) may drive the VM over QMP.  A boot
    whose only reports are a known upstream flake boots once more (its
    log kept as <name>-flake.log), and res.flake says why."""
    res = boot_once(ws, cmdline, qemu_args, timeout, name, qmp_script)
    flake = upstream_flake(res.log, res.problems)
    if flake is None:
        return res
    kept = os.path.join(ws.logs, f'{name}-flake.log')
    os.replace(res.log_path, kept)
    print(f'ws: boot {name}: {flake}; booting once more (first log: '
          f'{kept})')
    res = boot_once(ws, cmdline, qemu_args, timeout, name, qmp_script)
    res.flake = f'{flake}; first log {kept}'
    return res


def boot_once(ws, cmdline, qemu_args, timeout, name, qmp_script):
    cmdline, qemu_args = list(cmdline), list(qemu_args)
    if not os.path.exists(ws.bzimage()):
        raise WsError(f'{ws.bzimage()} not built; run "tools/ws build"')
    initrd = build_initramfs(ws)
    os.makedirs(ws.logs, exist_ok=True)
    log_path = os.path.join(ws.logs, f'{name}.log')
    res = BootResult(name, log_path)
    qmp_sock = None
    if qmp_script:
        qmp_sock = os.path.join(ws.work, f'{name}.qmp')
        if os.path.exists(qmp_sock):
            os.unlink(qmp_sock)
    cmd = qemu_command(ws, initrd, cmdline, qemu_args, qmp_sock)
    t0 = time.monotonic()
    with open(log_path, 'w') as logf:
        logf.write('$ ' + ' '.join(cmd) + '\n')
        logf.flush()
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT)
        console = Console(proc, logf, t0 + timeout)
        try:
            if qmp_script:
                try:
                    qmp_script(QMP(qmp_sock), console)
                except WsError as e:
                    res.qmp_error = str(e)
            console.drain()
            if not console.timed_out:
                # The console closed: QEMU is on its way out.
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    res.timed_out = True
        finally:
            if proc.poll() is None:
                res.timed_out = True
                proc.kill()
            proc.wait()
    res.wall = time.monotonic() - t0
    res.timed_out = res.timed_out or console.timed_out
    res.log = console.text
    parse_guest_lines(res)
    return res


def parse_guest_lines(res):
    text = res.log
    res.problems = scan_log(text)
    res.done = 'ws-boot: done' in text
    m = re.search(r'ws-boot: init at ([0-9.]+)', text)
    if m:
        res.init_uptime = float(m.group(1))
    for m in re.finditer(r'^ws-report: ([^:]+): (.*?)\r?$', text, re.M):
        res.reports.append((m.group(1).strip(), m.group(2).strip()))
    for m in re.finditer(r'^ws-check: ([^:]+): (ok|FAIL)(.*?)\r?$', text,
                         re.M):
        res.checks.append((m.group(1).strip(), m.group(2) == 'ok',
                           m.group(3).strip()))


class Console:
    """The guest's serial console, read with a deadline."""

    def __init__(self, proc, logf, deadline):
        self.proc = proc
        self.logf = logf
        self.deadline = deadline
        self.buf = b''
        self.timed_out = False
        # Where the next wait_for() starts looking: after the last needle
        # found, so that a message printed again (once per cycle) is
        # waited for again.
        self.cursor = 0

    @property
    def text(self):
        return self.buf.decode('utf-8', 'replace')

    def _read(self, until):
        fd = self.proc.stdout.fileno()
        while True:
            left = min(until, self.deadline) - time.monotonic()
            if left <= 0:
                if time.monotonic() >= self.deadline:
                    self.timed_out = True
                return False
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                continue
            chunk = os.read(fd, 65536)
            if not chunk:
                return True
            self.buf += chunk
            self.logf.write(chunk.decode('utf-8', 'replace'))
            self.logf.flush()
            if self._found():
                return None

    def _found(self):
        """Whether the needle is in what came after the cursor; if so,
        move the cursor past it."""
        want = getattr(self, '_want', None)
        at = self.buf.find(want, self.cursor) if want else -1
        if at < 0:
            return False
        self.cursor = at + len(want)
        return True

    def wait_for(self, needle, timeout):
        """Read until needle appears after the last one found; raise
        WsError on timeout or exit."""
        self._want = needle.encode()
        try:
            if self._found():
                return
            got = self._read(time.monotonic() + timeout)
            if got is None:
                return
            raise WsError(f'console: "{needle}" did not appear')
        finally:
            self._want = None

    def drain(self):
        self._want = None
        self._read(self.deadline)
        if self.proc.poll() is None and time.monotonic() >= self.deadline:
            self.timed_out = True


class QMP:
    """A minimal QMP client (the QEMU machine protocol is line JSON)."""

    def __init__(self, path, timeout=30):
        end = time.monotonic() + timeout
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(path)
                break
            except OSError:
                if time.monotonic() > end:
                    raise WsError(f'cannot connect to QMP at {path}')
                time.sleep(0.1)
        self.sock.settimeout(timeout)
        self.rf = self.sock.makefile('r')
        json.loads(self.rf.readline())
        self.cmd('qmp_capabilities')

    def cmd(self, name, **arguments):
        msg = {'execute': name}
        if arguments:
            msg['arguments'] = arguments
        self.sock.sendall((json.dumps(msg) + '\n').encode())
        while True:
            line = self.rf.readline()
            if not line:
                raise WsError(f'QMP closed during {name}')
            reply = json.loads(line)
            if 'return' in reply:
                return reply['return']
            if 'error' in reply:
                raise WsError(f'QMP {name}: {reply["error"]}')
