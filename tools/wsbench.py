# SPDX-License-Identifier: GPL-2.0
"""The page-table constructor benchmark: the series against its base.

Builds two kernels from the same configuration (kernel-config/base.config
plus tests/bench/bench.config, no debug options): the pinned base, from
the shared checkout work/base-src, and the work tree with the series.  Boots each
under QEMU TCG with -icount shift=0,sleep=off and one vCPU, where guest
time is guest instructions (one per nanosecond) and a run is
deterministic.  The guest (tests/bench/init) runs

  - a fork+exit loop (tests/bench/forkexit.c), and
  - lib/test_vmalloc.c's fix_size_alloc_test (vmalloc+vfree of one page),

each several times.  The figure is the median over the runs of the guest
instructions per operation, the spread of the runs, and the ratio
series/base.  A boot is deterministic, but the runs within one boot are
not alike (the page allocator, RCU and the timer tick do different work
each time), so only a median over several runs compares.  Figures, not a
timed test: nothing here passes or fails on a number.
"""

import os
import re
import shutil
import statistics
import subprocess
import time

import wslib
from wslib import (ROOT, WsError, banner, info, run, fmt_secs,
                   run_with_heartbeat)

BENCH_SRC = os.path.join(ROOT, 'tests', 'bench')


def build_kernel(ws, label, src, out, extra_frags=()):
    """Configure and build bzImage and test_vmalloc.ko; return both."""
    frags = [os.path.join(ROOT, 'kernel-config', 'base.config'),
             os.path.join(BENCH_SRC, 'bench.config')] + list(extra_frags)
    os.makedirs(out, exist_ok=True)
    env = ws.make_env()
    jobs = os.environ.get('WS_JOBS') or str(os.cpu_count() or 2)
    make = ['make', '-C', src, f'-j{jobs}', '-s', f'O={out}', 'ARCH=x86_64']
    if shutil.which('ccache'):
        make.append('CC=ccache gcc')
    with banner(f'bench: building the {label} kernel in {out}'):
        # merge_config.sh runs make in its working directory, and keeps
        # two temporary files there while it runs.
        r = run(['scripts/kconfig/merge_config.sh', '-O', out] + frags,
                cwd=src, env=env, capture=True, check=False)
        if r.returncode != 0:
            raise WsError('merge_config.sh failed:\n' + r.stdout[-3000:])
        run(make + ['olddefconfig'], env=env, capture=True)
        have = open(os.path.join(out, '.config')).read()
        for want in ['CONFIG_TEST_VMALLOC=m'] + [
                line.strip() for frag in extra_frags
                for line in open(frag) if line.startswith('CONFIG_')]:
            if want not in have:
                raise WsError(f'{label}: {want} did not survive')
        run_with_heartbeat(make + ['bzImage', 'modules'], env, True, out)
    return (os.path.join(out, 'arch/x86/boot/bzImage'),
            os.path.join(out, 'lib/test_vmalloc.ko'))


def build_initramfs(bench, label, module, forkexit):
    return script_initramfs(bench, label, 'init',
                            [(forkexit, 'forkexit'),
                             (module, 'test_vmalloc.ko')])


def boot(bench, label, bzimage, initrd, args):
    t0 = time.monotonic()
    text, log = icount_boot(bench, label, bzimage, initrd,
                            [f'ws.forks={args.forks}',
                             f'ws.vloops={args.vloops}',
                             f'ws.reps={args.reps}'])
    forks = [int(t) / int(n) for n, t in re.findall(
        r'ws-bench: forkexit: (\d+) forks (\d+) ns', text)]
    vm = [int(us) * 1000 / int(loops) for loops, us in re.findall(
        r'Summary: fix_size_alloc_test passed: 1 failed: 0 repeat: 1 '
        r'loops: (\d+) avg: (\d+) usec', text)]
    # busybox insmod retries with init_module() when finit_module() fails,
    # and test_vmalloc always fails its load: two runs per insmod.
    if len(forks) != args.reps or len(vm) < args.reps:
        raise WsError(f'{label}: expected {args.reps} runs of each '
                      f'workload, got {len(forks)} and {len(vm)}; see {log}')
    info(f'{label}: {fmt_secs(time.monotonic() - t0)} wall')
    return {'fork+exit': forks, 'fix_size_alloc_test': vm}


def spread(runs):
    return (max(runs) / min(runs) - 1) * 100


def bench_setup(ws, program):
    """The bench directory, tests/bench/<program>.c built static into it,
    and the shared checkout of the pinned base: what the benchmarks of
    the base against the series start from."""
    if not os.path.isdir(ws.tree):
        raise WsError(f'no work tree at {ws.tree}; run "tools/ws apply"')
    bench_dir = os.path.join(ws.work, 'bench')
    os.makedirs(bench_dir, exist_ok=True)
    binary = os.path.join(bench_dir, program)
    run(['gcc', '-static', '-O2', '-Wall', '-o', binary,
         os.path.join(BENCH_SRC, f'{program}.c')])
    base_sha = run(['git', 'rev-parse', 'ws/base^{commit}'], cwd=ws.tree,
                   capture=True).stdout.strip()
    return bench_dir, binary, wslib.base_checkout(ws.work, base_sha)


def bench(ws, args):
    bench_dir, forkexit, base_src = bench_setup(ws, 'forkexit')
    kernels = [('base', base_src), ('series', ws.tree)]
    results = {}
    for label, src in kernels:
        bz, mod = build_kernel(ws, label, src,
                               os.path.join(bench_dir, f'{label}-build'))
        initrd = build_initramfs(bench_dir, label, mod, forkexit)
        results[label] = boot(bench_dir, label, bz, initrd, args)
    lines = [f'guest instructions per operation (qemu -icount shift=0): '
             f'median of the runs, and their spread (max/min - 1)',
             f'{"workload":<22}{"base":>10}{"spread":>9}{"series":>10}'
             f'{"spread":>9}{"change":>10}']
    for work in ('fork+exit', 'fix_size_alloc_test'):
        b, s = results['base'][work], results['series'][work]
        mb, ms = statistics.median(b), statistics.median(s)
        lines.append(f'{work:<22}{mb:>10.0f}{spread(b):>8.2f}%{ms:>10.0f}'
                     f'{spread(s):>8.2f}%{(ms / mb - 1) * 100:>+9.2f}%')
    for label in ('base', 'series'):
        for work, runs in results[label].items():
            lines.append(f'  {label} {work} runs: ' +
                         ' '.join(f'{x:.0f}' for x in runs))
    report = '\n'.join(lines)
    with open(os.path.join(bench_dir, 'results.txt'), 'w') as f:
        f.write(report + '\n')
    print(report)


# ---------------------------------------------------------------------------
# The benchmarks of the series' test code (--pks, --directmap)

def script_initramfs(bench_dir, label, init, extra=()):
    """A busybox initramfs whose /init is tests/bench/<init>.

    extra: (path, name) pairs of more files for its root.
    """
    stage = os.path.join(bench_dir, f'initramfs-{label}')
    shutil.rmtree(stage, ignore_errors=True)
    for d in ('bin', 'sbin', 'proc', 'sys', 'dev'):
        os.makedirs(os.path.join(stage, d))
    shutil.copy2('/bin/busybox', os.path.join(stage, 'bin', 'busybox'))
    shutil.copy2(os.path.join(BENCH_SRC, init), os.path.join(stage, 'init'))
    os.chmod(os.path.join(stage, 'init'), 0o755)
    for path, name in extra:
        shutil.copy2(path, os.path.join(stage, name))
    files = run(['find', '.', '-print0'], cwd=stage, capture=True).stdout
    cpio = subprocess.run(['cpio', '--quiet', '-o', '-0', '-H', 'newc',
                           '--owner=0:0'], cwd=stage, input=files.encode(),
                          stdout=subprocess.PIPE, check=True).stdout
    out = os.path.join(bench_dir, f'initramfs-{label}.cpio')
    with open(out, 'wb') as f:
        f.write(cpio)
    return out


def icount_boot(bench_dir, label, bzimage, initrd, cmdline, mem='1G'):
    """Boot under -icount shift=0 with one vCPU; return the console text."""
    cmd = ['qemu-system-x86_64', '-nodefaults', '-no-reboot',
           '-display', 'none', '-serial', 'stdio', '-accel', 'tcg',
           '-icount', 'shift=0,sleep=off', '-cpu', 'max', '-smp', '1',
           '-m', mem, '-kernel', bzimage, '-initrd', initrd,
           '-append', ' '.join(['console=ttyS0', 'panic=-1', 'quiet',
                                'kunit.enable=0'] + cmdline)]
    log = os.path.join(bench_dir, f'{label}.log')
    with banner(f'bench: booting {label}'):
        try:
            r = subprocess.run(cmd, stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, timeout=3600)
        except subprocess.TimeoutExpired:
            raise WsError(f'{label}: the benchmark boot timed out')
    text = r.stdout.decode('utf-8', 'replace').replace('\r', '')
    with open(log, 'w') as f:
        f.write('$ ' + ' '.join(cmd) + '\n' + text)
    if 'ws-bench: done' not in text:
        raise WsError(f'{label}: the guest never finished; see {log}')
    return text, log

PKS_RX = re.compile(r'^ws-bench-pks: (outer|nested) pairs (\d+) ns (\d+) '
                    r'msr_writes (\d+) elided (\d+) pks (on|off)\r?$', re.M)


def pks_boot(bench_dir, label, bzimage, initrd, args, cmdline):
    text, log = icount_boot(bench_dir, label, bzimage, initrd,
                            [f'ws.pairs={args.pairs}', f'ws.reps={args.reps}']
                            + cmdline)
    runs = {'outer': [], 'nested': []}
    for mode, pairs, ns, writes, elided, _ in PKS_RX.findall(text):
        runs[mode].append((int(pairs), int(ns), int(writes), int(elided)))
    if any(len(v) != args.reps for v in runs.values()):
        raise WsError(f'{label}: expected {args.reps} runs of each mode; '
                      f'see {log}')
    boot_writes = re.search(r'^ws-bench-pks: boot writes (.*?)\r?$', text, re.M)
    return runs, boot_writes.group(1).strip() if boot_writes else None


def test_code_kernel(ws, args, init):
    """The series built with its test code (kunit-bench.config), and an
    initramfs whose /init is tests/bench/<init>: what --pks and
    --directmap boot.  Returns (bench dir, bzImage, initramfs)."""
    if not os.path.isdir(ws.tree):
        raise WsError(f'no work tree at {ws.tree}; run "tools/ws apply"')
    bench_dir = os.path.join(ws.work, 'bench')
    os.makedirs(bench_dir, exist_ok=True)
    bz, _ = build_kernel(ws, 'series (test code)', ws.tree,
                         os.path.join(bench_dir, 'kunit-build'),
                         [os.path.join(BENCH_SRC, 'kunit-bench.config')])
    return bench_dir, bz, script_initramfs(bench_dir, init.split('-')[0],
                                           init)


def bench_pks(ws, args):
    """Guest instructions and IA32_PKRS writes per window open/close pair.

    One kernel (the series, base.config + bench.config +
    kunit-bench.config), booted twice under qemu -icount shift=0 with one vCPU: with PKS, and
    with "nopks", where a window is a patched-out static branch.  The
    guest (tests/bench/pks-init) drives the debugfs file x86/pks/bench of
    the x86_pks test code: "outer" pairs open and close a window on a
    closed key, "nested" pairs do it inside an open window, where the
    per-CPU cache finds nothing to write.  Writes "without the cache" are
    the writes plus the ones the cache elided.
    """
    bench_dir, bz, initrd = test_code_kernel(ws, args, 'pks-init')

    lines = [f'PKS write windows: {args.pairs} open/close pairs per run, '
             f'{args.reps} runs, qemu -icount shift=0 (1 ns = 1 guest '
             f'instruction), one vCPU; medians',
             f'{"boot":<10}{"pairs":<8}{"instr/pair":>10}{"spread":>9}'
             f'{"MSR writes/pair":>17}{"without cache":>15}']
    boots = {}
    for label, cmdline in (('pks-on', []), ('pks-nopks', ['nopks'])):
        runs, boot_writes = pks_boot(bench_dir, label, bz, initrd, args,
                                     cmdline)
        boots[label] = runs
        for mode in ('outer', 'nested'):
            rs = runs[mode]
            per = [ns / pairs for pairs, ns, _, _ in rs]
            w = statistics.median(wr / pairs for pairs, _, wr, _ in rs)
            wo = statistics.median((wr + el) / pairs
                                   for pairs, _, wr, el in rs)
            lines.append(f'{label:<10}{mode:<8}{statistics.median(per):>9.1f}'
                         f'{spread(per):>8.2f}%{w:>17.3f}{wo:>15.3f}')
        if boot_writes:
            lines.append(f'  {label}: IA32_PKRS writes and elided writes '
                         f'from boot to the end of the runs: {boot_writes}')
    report = '\n'.join(lines)
    with open(os.path.join(bench_dir, 'pks-results.txt'), 'w') as f:
        f.write(report + '\n')
    print(report)


DM_RX = re.compile(r'^ws-bench-dm: restore (?P<restore>\S+) (?P<rest>.*)$', re.M)


def dm_run(line):
    """The key/value pairs of one x86/snp_directmap_bench result."""
    words = line.split()
    return {k: int(v) for k, v in zip(words[::2], words[1::2])}


def base_directmap_arm(ws, bench_dir):
    """The base kernel (as the page-table benchmark builds it) and an
    initramfs that runs tests/bench/dm-base/dm_base_churn.ko, built
    against it: the churn on the unpatched adjust_direct_map() logic."""
    base_sha = run(['git', 'rev-parse', 'ws/base^{commit}'], cwd=ws.tree,
                   capture=True).stdout.strip()
    src = wslib.base_checkout(ws.work, base_sha)
    out = os.path.join(bench_dir, 'base-build')
    bz, _ = build_kernel(ws, 'base', src, out)
    mod_dir = os.path.join(bench_dir, 'dm-base')
    shutil.rmtree(mod_dir, ignore_errors=True)
    shutil.copytree(os.path.join(BENCH_SRC, 'dm-base'), mod_dir)
    make = ['make', '-C', src, '-s', f'O={out}', 'ARCH=x86_64', f'M={mod_dir}']
    if shutil.which('ccache'):
        make.append('CC=ccache gcc')
    with banner('bench: building dm_base_churn.ko against the base kernel'):
        run(make + ['modules'], env=ws.make_env(), capture=True)
    initrd = script_initramfs(bench_dir, 'directmap-base', 'directmap-base-init',
                              [(os.path.join(mod_dir, 'dm_base_churn.ko'),
                                'dm_base_churn.ko')])
    return bz, initrd


def bench_directmap(ws, args):
    """SEV-SNP's direct-map tracking: what 10,000 transitions cost and
    leave behind, against the unpatched kernel.

    Three boots under qemu -icount shift=0 with one vCPU, in one run:
    base, the unpatched kernel (as the page-table benchmark builds it)
    running tests/bench/dm-base/dm_base_churn.ko, which does what its
    adjust_direct_map() does on every transition; and the series with its
    test code (as for --pks), with the tracker restoring large pages and
    with sev_snp_directmap_restore=0, which splits and never restores.
    Each guest runs the x86_directmap suite's churn workload: seeded
    random 4K private/shared transitions over 256 MiB with the RMP
    instructions stubbed (absent in base), then every page shared.  TLB
    flushes are counted, not timed: under -icount a flush costs nothing
    like it does on hardware.  The series' splits and restore batches
    flush once each; base's splits flush once each.
    """
    bench_dir, bz, initrd = test_code_kernel(ws, args, 'directmap-init')
    base_bz, base_initrd = base_directmap_arm(ws, bench_dir)
    lines = [f'SEV-SNP direct-map tracking: {args.ops} random 4K '
             f'transitions over 256 MiB, then all pages shared; '
             f'{args.reps} runs, qemu -icount shift=0, one vCPU; the first '
             f'run of each boot',
             f'{"kernel":<11}{"instr/transition":>16}{"vs base":>8}'
             f'{"instr/share":>12}{"256M large":>11}{"direct map large":>18}'
             f'{"tables held":>12}{"flushes":>8}{"per restore":>12}']
    base_churn = None
    for label, kernel, cmdline in (
            ('base', (base_bz, base_initrd), []),
            ('no-restore', (bz, initrd), ['sev_snp_directmap_restore=0']),
            ('restore', (bz, initrd), [])):
        text, log = icount_boot(bench_dir, f'directmap-{label}', kernel[0],
                                kernel[1], [f'ws.ops={args.ops}',
                                            f'ws.reps={args.reps}'] + cmdline)
        runs = [dm_run(m.group('rest')) for m in DM_RX.finditer(text)]
        if len(runs) != args.reps:
            raise WsError(f'{label}: expected {args.reps} runs; see {log}')
        if any(r['errors'] or r['mismatches'] or r['violations']
               for r in runs):
            raise WsError(f'{label}: failed transitions, tracker/model '
                          f'mismatches or shadow-RMP violations; see {log}')
        # The first run meets a direct map that no run has split yet;
        # without restores, the later runs find their blocks split
        # already, so only the first compares.
        r = runs[0]
        churn = r['churn_ns'] / r['ops']
        if base_churn is None:
            base_churn = churn
        flushes = r['splits'] + r['batches']
        per_restore = (f'{r["batches"] / r["restores"]:.3f}'
                       if r['restores'] else '-')
        lines.append(f'{label:<11}{churn:>16.0f}'
                     f'{(churn / base_churn - 1) * 100:>+7.1f}%'
                     f'{r["share_ns"] / max(r["shares"], 1):>12.0f}'
                     f'{r["large_after_share"] * 100 / r["blocks"]:>10.1f}%'
                     f'{r["direct_map_large_permille"] / 10:>10.1f}% '
                     f'(from {r["before"] / 10:.1f}%)'
                     f'{r["pagetables_held"]:>6}{flushes:>8}'
                     f'{per_restore:>12}')
        lines.append(f'  {label} runs: ' + '; '.join(
            f'{x["churn_ns"] / x["ops"]:.0f} instr/transition, '
            f'{x["splits"]} splits, {x["restores"]} restores in '
            f'{x["batches"]} batches, {x["large_after_churn"]}/{x["blocks"]} '
            f'blocks large before the final shares' for x in runs))
    report = '\n'.join(lines)
    with open(os.path.join(bench_dir, 'directmap-results.txt'), 'w') as f:
        f.write(report + '\n')
    print(report)


# ---------------------------------------------------------------------------
# The page-table protection benchmark (--pgtables)

PT_RX = re.compile(r'^ws-bench-pt: (fork|munmap) mib (\d+) ns (\d+) '
                   r'pkrs (-?\d+)$', re.M)
SPAWN_RX = re.compile(r'^ws-bench-pt: spawn n (\d+) ns (\d+) pkrs (-?\d+)$',
                      re.M)
VMALLOC_RX = re.compile(r'^ws-bench-pt: vmalloc (\S+) runs (\d+) '
                        r'pkrs (-?\d+)$', re.M)
STATE_RX = re.compile(r'^ws-bench-pt: (before|after-big|after-spawn|after) '
                      r'(meminfo|pool) (\S+?):?\s+(\S+)', re.M)


def summaries(text, test):
    """(loops, usec) of each run of one test_vmalloc test, in order."""
    return [(int(loops), int(us)) for loops, us in re.findall(
        rf'Summary: {test} passed: 1 failed: 0 repeat: 1 '
        rf'loops: (\d+) avg: (\d+) usec', text)]


def parse_pgtables(text, mib, reps):
    """The runs of each workload of a tests/bench/pgtables-init console:
    {workload: [(instructions, PKRS writes or None), ...]}, and the
    state lines {"before"|"after-big"|"after-spawn"|"after":
    {"meminfo DirectMap4k": "...", ...}}.
    Raises WsError when a workload has fewer than @reps runs."""
    ops = {}

    def add(work, instr, writes):
        ops.setdefault(work, []).append(
            (instr, None if writes < 0 else writes))

    for work, _, ns, writes in PT_RX.findall(text):
        add(f'{work} {mib} MiB', int(ns), int(writes))
    for n, ns, writes in SPAWN_RX.findall(text):
        add('fork+exec+exit', int(ns) / int(n),
            int(writes) / int(n) if int(writes) >= 0 else -1)
    for test in ('fix_size_alloc_test', 'vm_map_ram_test'):
        runs = summaries(text, test)
        i = 0
        for t, nruns, writes in VMALLOC_RX.findall(text):
            if t != test:
                continue
            nruns, writes = int(nruns), int(writes)
            for loops, us in runs[i:i + nruns]:
                add(test, us * 1000 / loops,
                    writes / (nruns * loops) if writes >= 0 else -1)
            i += nruns
    short = [w for w in (f'fork {mib} MiB', f'munmap {mib} MiB',
                         'fork+exec+exit', 'fix_size_alloc_test',
                         'vm_map_ram_test') if len(ops.get(w, [])) < reps]
    if short:
        raise WsError(f'too few runs of {", ".join(short)}')
    state = {}
    for when, kind, key, value in STATE_RX.findall(text):
        state.setdefault(when, {})[f'{kind} {key}'] = value
    return ops, state


def pgtables_boot(bench_dir, label, bzimage, initrd, args, cmdline):
    """Boot one arm of --pgtables; return parse_pgtables() of it."""
    text, log = icount_boot(bench_dir, f'pgtables-{label}', bzimage, initrd,
                            [f'ws.mib={args.mib}', f'ws.spawns={args.spawns}',
                             f'ws.vloops={args.vloops}',
                             f'ws.reps={args.reps}'] + cmdline, mem='2G')
    try:
        return parse_pgtables(text, args.mib, args.reps)
    except WsError as e:
        raise WsError(f'{label}: {e}; see {log}')


def pgtables_report(boots, states, reps):
    """The --pgtables report: boots and states are parse_pgtables()'s
    results by arm ("base", "off", "on")."""
    lines = [f'page tables write-protected with PKS: guest instructions '
             f'per operation (qemu -icount shift=0, one vCPU, 2 GiB), '
             f'median of {reps} runs and the change against base; '
             f'IA32_PKRS writes per operation',
             f'{"workload":<22}{"base":>12}{"off":>12}{"":>8}{"on":>12}'
             f'{"":>8}{"PKRS/op on":>12}{"off":>8}']
    for work in boots['base']:
        med = {k: statistics.median(i for i, _ in boots[k][work])
               for k in boots}
        row = f'{work:<22}{med["base"]:>12.0f}'
        for k in ('off', 'on'):
            row += (f'{med[k]:>12.0f}'
                    f'{(med[k] / med["base"] - 1) * 100:>+7.2f}%')
        for k, width in (('on', 12), ('off', 8)):
            w = [x for _, x in boots[k][work] if x is not None]
            row += (f'{statistics.median(w):>{width}.2f}' if w
                    else f'{"-":>{width}}')
        lines.append(row)
    lines.append('direct map and page tables (/proc/meminfo, kB), '
                 'before -> after the workloads; keyed pool')
    for k in boots:
        b, a = states[k].get('before', {}), states[k].get('after', {})
        mem = ', '.join(f'{key.split()[1]} {b.get(key)} -> {a.get(key)}'
                        for key in sorted(a) if key.startswith('meminfo'))
        lines.append(f'  {k}: {mem}')
        big, spawn = (states[k].get(when, {}).get('meminfo DirectMap4k')
                      for when in ('after-big', 'after-spawn'))
        lines.append(f'  {k}: DirectMap4k after the fork/munmap runs {big}, '
                     f'after the spawns {spawn}')
        if any(key.startswith('pool') for key in a):
            lines.append(f'  {k} pool after: ' + ', '.join(
                f'{key.split()[1]} {v}' for key, v in a.items()
                if key.startswith('pool')))
    for k in boots:
        for work, runs in boots[k].items():
            lines.append(f'  {k} {work} runs: ' + ' '.join(
                f'{i:.0f}' for i, _ in runs))
    return '\n'.join(lines)


def bench_pgtables(ws, args):
    """Page tables write-protected with PKS: what they cost.

    Two kernels from the same configuration (base.config, bench.config
    and pgtables.config: no debug options, jump labels on as distribution
    kernels have them), in build directories of their own: the pinned
    base, and the series, booted with pks_tables=off and with
    pks_tables=on (the default under -cpu max, which has PKS).  Three
    boots under qemu -icount shift=0 with one vCPU and 2 GiB, in one
    invocation.  The guest (tests/bench/pgtables-init, with
    tests/bench/ptbench.c) runs fork+exit of a process with ws.mib MiB
    touched at 4K and the munmap of that range, fork+exec+exit of
    /bin/true, and test_vmalloc's fix_size_alloc_test and
    vm_map_ram_test; it reports guest instructions and IA32_PKRS writes
    per operation (-icount counts a WRMSR as one instruction, so the
    writes carry the hardware cost), and DirectMap4k/2M/1G, PageTables
    and the keyed pool before, between and after the workloads.
    """
    bench_dir, ptbench, base_src = bench_setup(ws, 'ptbench')
    kernels = {}
    for label, src in (('base', base_src),
                       ('series', ws.tree)):
        bz, mod = build_kernel(ws, label, src,
                               os.path.join(bench_dir,
                                            f'pgtables-{label}-build'),
                               [os.path.join(BENCH_SRC, 'pgtables.config')])
        kernels[label] = (bz, script_initramfs(
            bench_dir, f'pgtables-{label}', 'pgtables-init',
            [(ptbench, 'ptbench'), (mod, 'test_vmalloc.ko')]))
    boots = {}
    states = {}
    for label, kernel, cmdline in (('base', 'base', []),
                                   ('off', 'series', ['pks_tables=off']),
                                   ('on', 'series', ['pks_tables=on'])):
        t0 = time.monotonic()
        boots[label], states[label] = pgtables_boot(
            bench_dir, label, *kernels[kernel], args, cmdline)
        info(f'{label}: {fmt_secs(time.monotonic() - t0)} wall')
        if label == 'on' and states[label].get('after', {}).get(
                'pool mode') != 'on':
            raise WsError('the pks_tables=on boot did not run with its '
                          'tables keyed (no PKS under -cpu max?)')

    report = pgtables_report(boots, states, args.reps)
    with open(os.path.join(bench_dir, 'pgtables-results.txt'), 'w') as f:
        f.write(report + '\n')
    print(report)
