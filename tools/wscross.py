# SPDX-License-Identifier: GPL-2.0
"""Cross-architecture build gate: the series must build beyond x86_64.

The series changes <linux/mm.h>, <asm-generic/pgalloc.h> and the page-table
code of several architectures, and adds options (mem_table, the census)
whose Kconfig reaches past x86.  The test command only builds x86_64, so a
name clash or a wrong assumption on another architecture would go unseen.

For each architecture of ARCHES that the series touches (a file under
arch/<arch>/, or any header under include/, which every architecture
includes), with the compilers of Debian's cross gcc packages:
- configure a defconfig plus kernel-config/cross/<arch>.config (merged with
  merge_config.sh -m, then olddefconfig); a fragment option this tree
  defines that does not survive fails the check;
- after "make prepare" only, build each object whose source the series
  changes (generic or of that architecture) and a fixed sample of objects
  that include the changed headers, with make -k so that every error is
  seen; an object that the configuration does not build is a skip;
- build the same objects in the base tree with the same fragment, and
  compare warnings (file and message, line numbers dropped) as multisets.
One check "cross <arch>" per architecture: objects built, errors, new
warnings.  Where the configuration has modules (x86_64), a further check
reads the undefined symbols of the sample's module objects: each that an
object of the series defines must be exported by it, or the module would
not load.  The test configuration has no modules, so this is the only
place where a missing EXPORT_SYMBOL() shows.  The base's results are
cached in the machine-wide cache ($WS_CACHE/cross-base-results.json,
keyed by base, defconfig, fragment, objects and compiler), so a new
clone reuses them too, and ccache keeps the rest warm, so a warm run
rebuilds nothing of the base.

An architecture the series touches that has no entry here (for lack of a
Debian cross compiler, or outside the set the gate was asked for) is a
skip with that reason.  WS_CROSS_ARCHES=arm64,powerpc restricts the run.
"""

import collections
import hashlib
import json
import os
import re
import time

import wslib
from wslib import (BASE_REF, ROOT, WsError, banner, fmt_secs, git, info,
                   parse_config, run)

FRAGMENTS = os.path.join(ROOT, 'kernel-config', 'cross')

# modules: objects of the sample that the configuration builds into a
# module, and whose undefined symbols the series' objects must export.
Arch = collections.namedtuple(
    'Arch', 'name karch srcarch prefix package defconfig sample modules',
    defaults=((),))

# Objects that include the changed generic headers (mm.h, pgalloc.h,
# tlb.h): the page-table allocation and freeing paths.
GENERIC_SAMPLE = (
    'mm/memory.o', 'mm/vmalloc.o', 'mm/pgtable-generic.o', 'mm/mmu_gather.o',
    'mm/hugetlb_vmemmap.o', 'mm/sparse-vmemmap.o', 'mm/memory_hotplug.o',
    'kernel/fork.o',
)

# Per architecture: its own objects that include the headers it changes
# (pgalloc.h, tlb.h) or <linux/mm.h> with a conflicting name.
ARCHES = (
    # x86_64 with modules (the test configuration has none): i915's
    # remap_io_mapping() writes PTEs with set_pte_at(), inline, from a
    # module, as drivers do.  Not Xen PV, where the write goes through
    # pv_ops: that is the next entry.
    Arch('x86_64', 'x86_64', 'x86', '', 'gcc', 'x86_64_defconfig',
         ('drivers/gpu/drm/i915/i915_mm.o',),
         modules=('drivers/gpu/drm/i915/i915_mm.o',)),
    # x86_64 as a Xen PV guest: the paravirt MMU and its lazy MMU hooks.
    Arch('x86_64-xenpv', 'x86_64', 'x86', '', 'gcc', 'x86_64_defconfig',
         ('arch/x86/xen/mmu_pv.o', 'arch/x86/xen/enlighten_pv.o')),
    Arch('i386', 'i386', 'x86', '', 'gcc', 'i386_defconfig',
         ('arch/x86/mm/init_32.o', 'arch/x86/mm/pgtable_32.o')),
    Arch('arm64', 'arm64', 'arm64', 'aarch64-linux-gnu-',
         'gcc-aarch64-linux-gnu', 'defconfig',
         ('arch/arm64/mm/pgd.o', 'arch/arm64/mm/fixmap.o',
          'arch/arm64/mm/trans_pgd.o', 'arch/arm64/mm/hugetlbpage.o')),
    Arch('riscv', 'riscv', 'riscv', 'riscv64-linux-gnu-',
         'gcc-riscv64-linux-gnu', 'defconfig',
         ('arch/riscv/mm/pgtable.o', 'arch/riscv/mm/hugetlbpage.o')),
    Arch('powerpc', 'powerpc', 'powerpc', 'powerpc64le-linux-gnu-',
         'gcc-powerpc64le-linux-gnu', 'ppc64le_defconfig',
         ('arch/powerpc/mm/ptdump/ptdump.o',
          'arch/powerpc/mm/ptdump/book3s64.o',
          'arch/powerpc/mm/ptdump/shared.o',
          'arch/powerpc/mm/book3s64/radix_pgtable.o',
          'arch/powerpc/mm/init_64.o')),
    Arch('s390', 's390', 's390', 's390x-linux-gnu-', 'gcc-s390x-linux-gnu',
         'defconfig',
         ('arch/s390/mm/gmap.o', 'arch/s390/mm/vmem.o',
          'arch/s390/mm/pgtable.o', 'arch/s390/mm/init.o')),
    Arch('mips', 'mips', 'mips', 'mips64el-linux-gnuabi64-',
         'gcc-mips64el-linux-gnuabi64', 'loongson3_defconfig',
         ('arch/mips/mm/pgtable-64.o', 'arch/mips/mm/init.o',
          'arch/mips/kvm/mmu.o', 'arch/mips/kvm/mips.o')),
    Arch('arm', 'arm', 'arm', 'arm-linux-gnueabihf-',
         'gcc-arm-linux-gnueabihf', 'multi_v7_defconfig',
         ('arch/arm/mm/pgd.o', 'arch/arm/mm/init.o',
          'arch/arm/mm/ioremap.o')),
)

# Architectures the series touches that ARCHES leaves out, and why.
NOT_BUILT = {
    'loongarch': 'Debian (bookworm) has no loongarch64 cross compiler',
    'csky': 'Debian has no csky cross compiler',
    'hexagon': 'Debian has no hexagon cross compiler',
    'microblaze': 'Debian has no microblaze cross compiler',
    'nios2': 'Debian has no nios2 cross compiler',
    'openrisc': 'Debian has only a bare-metal or1k-elf compiler',
    'm68k': 'not in the gate\'s set (gcc-m68k-linux-gnu exists)',
    'sh': 'not in the gate\'s set (gcc-sh4-linux-gnu exists)',
    'sparc': 'not in the gate\'s set (gcc-sparc64-linux-gnu exists)',
    'um': 'not in the gate\'s set (ARCH=um builds with the native gcc)',
}

# Debian packages of the compilers (and ccache, which every build here
# runs), by the command that shows each is present: wslib.PACKAGES' format.
PACKAGES = [(a.package, a.prefix + 'gcc') for a in ARCHES] + \
    [('ccache', 'ccache')]

JOBS = os.environ.get('WS_JOBS') or '2'
PROBE = 'ws-probe.o'		# matched by the rule %-probe.o, also at ./
DIAG_RX = re.compile(r'^(\S+?):(?:(\d+):(?:\d+:)?)? (warning|error|fatal '
                     r'error): (.*)$', re.M)
MAKE_ERR_RX = re.compile(r'^make\[\d+\]: \*\*\* .*$|^make: \*\*\* .*$', re.M)
ANSI_RX = re.compile(r'\x1b\[[0-9;]*[mK]')


def selected_arches():
    """ARCHES, or those WS_CROSS_ARCHES names (for iterating on one)."""
    want = os.environ.get('WS_CROSS_ARCHES')
    if not want:
        return list(ARCHES)
    names = [n.strip() for n in want.split(',') if n.strip()]
    known = {a.name: a for a in ARCHES}
    bad = [n for n in names if n not in known]
    if bad:
        raise WsError(f'WS_CROSS_ARCHES: unknown {bad}; known: '
                      f'{", ".join(known)}')
    return [known[n] for n in names]


def kbuild_dir(tree, d):
    return any(os.path.exists(os.path.join(tree, d, f))
               for f in ('Kbuild', 'Makefile'))


def descent_stops_above(d, lists):
    """True when kbuild never enters directory d in this config, so its
    probe printed nothing: the nearest ancestor whose lists were read
    does not list the next directory down (arch/x86/xen/ on i386
    without CONFIG_XEN).  False when that ancestor lists it, so d was
    entered and its lists should have been printed."""
    names = {d + '/built-in.a', d + '/modules.order'}
    if names & lists.get('.', set()):
        return False
    parent = os.path.dirname(d) or '.'
    if parent in lists:
        return not names & lists[parent]
    return parent != '.' and descent_stops_above(parent, lists)


def reached(d, lists):
    """True when kbuild descends into directory d: the top-level Kbuild
    lists it, or its parent lists it and is reached."""
    names = {d + '/built-in.a', d + '/modules.order'}
    if names & lists['.']:
        return True
    parent = os.path.dirname(d)
    return bool(parent) and bool(names & lists.get(parent, set())) and \
        reached(parent, lists)


class CrossBuild:
    """One source tree built for one architecture in its own directory."""

    def __init__(self, ws, arch, tree, bdir):
        self.ws, self.arch, self.bdir = ws, arch, os.path.abspath(bdir)
        self.tree = os.path.abspath(tree)
        self.fragment = os.path.join(FRAGMENTS, f'{arch.name}.config')

    def make_cmd(self, *targets, extra=()):
        a = self.arch
        return ['make', '-C', self.tree, f'O={self.bdir}', f'ARCH={a.karch}',
                f'CROSS_COMPILE={a.prefix}', f'CC=ccache {a.prefix}gcc',
                *extra, *targets]

    def env(self):
        return {'CCACHE_BASEDIR': os.path.abspath(self.ws.work),
                'CCACHE_NOHASHDIR': '1'}

    def make(self, *targets, extra=(), check=True):
        return run(self.make_cmd(*targets, extra=extra), capture=True,
                   check=check, env=self.env())

    def config_key(self):
        """What .config is made from: the defconfig, the fragment, the
        compiler and every Kconfig file and defconfig of the tree."""
        spec = ['*Kconfig*', 'arch/*/configs/*']
        return hashlib.sha256(json.dumps(
            [self.arch.defconfig, read(self.fragment),
             compiler_version(self.arch),
             git(self.tree, 'ls-files', '-s', '--', *spec),
             git(self.tree, 'diff', 'HEAD', '--', *spec)]).encode()
        ).hexdigest()

    def configure(self):
        """defconfig + fragment into .config, made again only on a change.

        The new configuration is made in .config.ws so that an unchanged
        one keeps .config's time stamp and "make prepare" stays a no-op.
        """
        os.makedirs(self.bdir, exist_ok=True)
        stamp = os.path.join(self.bdir, '.ws-config-key')
        key = self.config_key()
        if os.path.exists(stamp) and read(stamp) == key and \
                os.path.exists(os.path.join(self.bdir, '.config')):
            return
        new = os.path.join(self.bdir, '.config.ws')
        kc = [f'KCONFIG_CONFIG={new}']
        self.make(self.arch.defconfig, extra=['-s'] + kc)
        run([os.path.join(self.tree, 'scripts/kconfig/merge_config.sh'),
             '-m', '-O', self.bdir, new, self.fragment], cwd=self.bdir,
            capture=True, env={'KCONFIG_CONFIG': new})
        self.make('olddefconfig', extra=['-s'] + kc)
        cur = os.path.join(self.bdir, '.config')
        if not os.path.exists(cur) or read(cur) != read(new):
            os.replace(new, cur)
        with open(stamp, 'w') as f:
            f.write(key)

    def config_problems(self):
        """(lost, absent): fragment options .config lacks, and those of
        them that no Kconfig file of this tree defines."""
        have = parse_config(os.path.join(self.bdir, '.config'))
        known = wslib.kconfig_symbols(self.tree)
        lost, absent = [], []
        for name, want in parse_config(self.fragment).items():
            if have.get(name, 'n') != want:
                (lost if name in known else absent).append(
                    f'CONFIG_{name}={want} (has {have.get(name, "n")})')
        return lost, absent

    def kbuild_lists(self, dirs):
        """{dir: what its kbuild file builds in this config}, for dirs.

        One make run with a goal dir/ws-probe.o per directory (./ for the
        top-level Kbuild): kbuild takes each as a single target of that
        directory, and a rule given with --eval (make hands it on to
        every sub-make) prints the directory's lists, computed with all
        that the top-level and arch Makefiles export (BITS, for one).
        """
        key = '@ws-objs@'
        rule = (f'--eval=%-probe.o: FORCE ; @echo {key} $(obj) '
                '$(real-obj-y) $(real-obj-m)')
        r = self.make(*[f'{d}/{PROBE}' for d in dirs],
                      extra=['-s', '-k', rule], check=False)
        lists = {}
        for ln in r.stdout.splitlines():
            if ln.startswith(key + ' '):
                lists[ln.split()[1]] = set(ln.split()[2:])
        lost = [d for d in dirs
                if d not in lists and not descent_stops_above(d, lists)]
        if lost:
            raise WsError(f'cannot read what {", ".join(lost)} build(s) for '
                          f'{self.arch.name}:\n{r.stdout[-1500:]}')
        return lists

    def enabled(self, objs):
        """The objs the kernel of this config builds: each is listed in
        its directory's kbuild file, and that directory is reached from
        the top-level Kbuild (which lists arch/<arch>/power/ and the
        like itself) through kbuild files that list it."""
        dirs = {'.'}
        for o in objs:
            d = os.path.dirname(o)
            while d:
                if kbuild_dir(self.tree, d):
                    dirs.add(d)
                d = os.path.dirname(d)
        lists = self.kbuild_lists(sorted(dirs))
        return [o for o in objs
                if o in lists.get(os.path.dirname(o), ())
                and reached(os.path.dirname(o), lists)]

    def compile(self, objs):
        """Build objs with -k; return (built, errors, warnings)."""
        for o in objs:		# rebuilt every time, so that ccache replays
            p = os.path.join(self.bdir, o)	# the warnings
            if os.path.exists(p):
                os.unlink(p)
        r = self.make(*objs, extra=['-s', '-k', f'-j{JOBS}'], check=False)
        out = ANSI_RX.sub('', r.stdout)
        built = [o for o in objs if os.path.exists(os.path.join(self.bdir, o))]
        errors, warnings = [], []
        for m in DIAG_RX.finditer(out):
            where = self.relpath(m.group(1)) if m.group(2) else m.group(1)
            if m.group(3) == 'warning':
                warnings.append((where, m.group(4).strip()))
            else:
                at = f'{where}:{m.group(2)}' if m.group(2) else where
                line = f'{at}: {m.group(3)}: {m.group(4)}'
                if line not in errors:
                    errors.append(line)
        if r.returncode and not errors:
            errors = MAKE_ERR_RX.findall(out) or [out.strip()[-500:]]
        return built, errors, warnings

    def relpath(self, fname):
        """A compiler's file name as a path inside the source tree."""
        p = os.path.normpath(os.path.join(self.bdir, fname))
        return p[len(self.tree) + 1:] if p.startswith(self.tree + '/') else p


def read(path):
    with open(path) as f:
        return f.read()


def cross_dir(ws):
    return os.path.join(os.path.abspath(ws.work), 'cross')


def touched(changed):
    """({srcarch: [files]} the series changes under arch/, and whether it
    changes a header under include/, which every architecture includes)."""
    per_arch = {}
    for f in changed:
        parts = f.split('/')
        if parts[0] == 'arch' and len(parts) > 2:
            per_arch.setdefault(parts[1], []).append(f)
    return per_arch, any(f.startswith('include/') for f in changed)


NOT_KERNEL = ('arch/', 'tools/', 'Documentation/', 'scripts/', 'samples/',
              'usr/')


def candidates(arch, changed):
    """Each .c the series changes that is generic or of this architecture,
    then the fixed sample."""
    objs = [f[:-2] + '.o' for f in changed if f.endswith('.c') and (
        f.startswith(f'arch/{arch.srcarch}/') or not f.startswith(NOT_KERNEL))]
    return objs + [o for o in GENERIC_SAMPLE + arch.sample if o not in objs]


def compiler_version(arch):
    return run([arch.prefix + 'gcc', '--version'],
               capture=True).stdout.splitlines()[0]


def base_results(ws, arch, base_sha, objs):
    """The base's built objects, errors and warnings for objs, from the
    cache when base, config, objects and compiler are unchanged."""
    # Machine-wide: a new clone or work directory reuses it.
    path = os.path.join(wslib.cache_dir(), 'cross-base-results.json')
    cache = json.loads(read(path)) if os.path.exists(path) else {}
    key = hashlib.sha256(json.dumps(
        [base_sha, arch.defconfig, read(os.path.join(
            FRAGMENTS, f'{arch.name}.config')), objs,
         compiler_version(arch)]).encode()).hexdigest()
    ent = cache.get(arch.name)
    if ent and ent['key'] == key:
        info(f'cross {arch.name}: base results from {path}')
        return ent
    b = CrossBuild(ws, arch, wslib.base_checkout(ws.work, base_sha),
                   os.path.join(cross_dir(ws), arch.name, 'base'))
    b.configure()
    b.make('prepare', extra=['-s', f'-j{JOBS}'])
    bobjs = b.enabled(objs)
    built, errors, warnings = b.compile(bobjs)
    if errors:
        info(f'cross {arch.name}: the base itself gives {len(errors)} '
             'errors (its warnings there are incomplete):\n  ' +
             '\n  '.join(errors[:5]))
    ent = {'key': key, 'objects': bobjs, 'built': built, 'errors': errors,
           'warnings': warnings}
    cache[arch.name] = ent
    with open(path + '.tmp', 'w') as f:
        json.dump(cache, f, indent=1, sort_keys=True)
    os.replace(path + '.tmp', path)
    return ent


def first_per_file(errors):
    """The first error of each file: one line per defect, mostly."""
    seen, out = set(), []
    for e in errors:
        f = e.split(':', 1)[0]
        if f not in seen:
            seen.add(f)
            out.append(e)
    return out


def gate_arch(ws, checks, arch, changed, base_sha):
    """Configure, prepare and build one architecture; one check."""
    name = f'cross {arch.name}'
    times = {}
    t = time.monotonic()
    s = CrossBuild(ws, arch, ws.tree,
                   os.path.join(cross_dir(ws), arch.name, 'series'))
    s.configure()
    lost, absent = s.config_problems()
    if absent:
        info(f'{name}: not in this tree (a later patch adds them): '
             + ' '.join(absent))
    times['configure'], t = time.monotonic() - t, time.monotonic()
    r = s.make('prepare', extra=['-s', f'-j{JOBS}'], check=False)
    times['prepare'], t = time.monotonic() - t, time.monotonic()
    if r.returncode:
        checks.add(name, False, 'make prepare failed:\n' +
                   ANSI_RX.sub('', r.stdout)[-2000:])
        return
    objs = candidates(arch, changed)
    on = s.enabled(objs)
    for o in objs:
        if o not in on:
            checks.skip(f'{name} {o}', f'not built by {arch.defconfig} + '
                        f'kernel-config/cross/{arch.name}.config')
    built, errors, warnings = s.compile(on)
    times['objects'], t = time.monotonic() - t, time.monotonic()
    try:
        base = base_results(ws, arch, base_sha, on)
    except WsError as e:
        checks.add(name, False, f'the base does not build: {e}')
        return
    times['base'] = time.monotonic() - t
    info(f'{name}: ' + ', '.join(f'{k} {fmt_secs(v)}'
                                 for k, v in times.items()))
    new = collections.Counter(warnings) - collections.Counter(
        tuple(w) for w in base['warnings'])
    report(checks, name, on, built, errors, new, lost)
    if arch.modules:
        check_module_symbols(checks, name, s, arch, candidates(arch, changed),
                             built)


def nm(build, obj, *flags):
    """The symbol names nm prints for one object of a build."""
    r = run([build.arch.prefix + 'nm', *flags, os.path.join(build.bdir, obj)],
            capture=True)
    return {ln.split()[-1] for ln in r.stdout.splitlines() if ln.strip()}


EXPORT_PREFIX = '__export_symbol_'	# EXPORT_SYMBOL()'s label, <linux/export.h>


def check_module_symbols(checks, name, build, arch, objs, built):
    """Every symbol that a module object of the sample takes from an
    object of the series is exported by that object."""
    check = f'{name}: modules link against the series\' symbols'
    mods = [o for o in arch.modules if o in built]
    if not mods:
        checks.skip(check, f'{", ".join(arch.modules)} not built by '
                    f'{arch.defconfig} + kernel-config/cross/{arch.name}'
                    '.config')
        return
    not_mod = [o for o in mods if '-DMODULE' not in read(os.path.join(
        build.bdir, os.path.dirname(o), f'.{os.path.basename(o)}.cmd'))]
    defined, exported = {}, set()
    for o in built:
        if o in arch.modules:
            continue
        for sym in nm(build, o, '--defined-only', '--extern-only'):
            defined.setdefault(sym, o)
        exported |= {s[len(EXPORT_PREFIX):]
                     for s in nm(build, o, '--defined-only')
                     if s.startswith(EXPORT_PREFIX)}
    missing = []
    for m in mods:
        for sym in sorted(nm(build, m, '--undefined-only')):
            if sym in defined and sym not in exported:
                missing.append(f'{m} uses {sym}, which {defined[sym]} does '
                               'not export')
    for line in [f'{o} was not built as part of a module' for o in not_mod] \
            + missing:
        print(f'  {name}: {line}')
    checks.add(check, not (missing or not_mod),
               f'{len(mods)} module object(s) checked against the exports '
               f'of {len(built) - len(mods)} object(s): '
               + ('; '.join(missing[:6]) or 'nothing missing'))


def report(checks, name, on, built, errors, new, lost):
    """The checks of one architecture, every problem printed above them.

    An object that does not compile is a check of its own, so that a
    known failure listed in tests/known-failures hides that object only,
    never a new error elsewhere on the architecture.  The architecture's
    own check covers new warnings and options lost in olddefconfig."""
    fresh = [f'{f}: warning: {msg}' + (f' (x{n})' if n > 1 else '')
             for (f, msg), n in sorted(new.items())]
    for line in [f'config: {x} did not survive olddefconfig'
                 for x in lost] + errors + fresh:
        print(f'  {name}: {line}')
    failed = [o for o in on if o not in built]
    first = first_per_file(errors)
    for o in failed:
        stem = o[:-2]
        mine = [e for e in first if e.startswith(stem + '.')] or first
        checks.add(f'{name}: {o} compiles', False,
                   '\n    '.join(mine[:6]))
    detail = (f'{len(built)}/{len(on)} objects built, {len(errors)} errors, '
              f'{sum(new.values())} new warnings')
    if lost:
        detail += f'; options lost in olddefconfig: {" ".join(lost)}'
    if fresh:
        detail += '\n    ' + '\n    '.join(fresh[:8])
    checks.add(f'{name}: no new warning, every option survived',
               not (fresh or lost), detail)


def run_gate(ws, checks):
    """One check per architecture of ARCHES the series touches; a skip
    with the reason for each touched one that ARCHES leaves out."""
    if not ws.tree_exists():
        raise WsError(f'no work tree at {ws.tree}')
    wslib.setup_packages(PACKAGES)
    changed = ws.changed_files()
    base_sha = git(ws.tree, 'rev-parse', BASE_REF + '^{commit}')
    per_arch, headers = touched(changed)
    t0 = time.monotonic()
    for arch in selected_arches():
        if arch.srcarch not in per_arch and not headers:
            checks.skip(f'cross {arch.name}', f'the series changes neither '
                        f'arch/{arch.srcarch}/ nor a header under include/')
            continue
        with banner(f'gate: cross build for {arch.name}'):
            gate_arch(ws, checks, arch, changed, base_sha)
    ours = {a.srcarch for a in ARCHES}
    for srcarch, files in sorted(per_arch.items()):
        if srcarch not in ours:
            why = NOT_BUILT.get(srcarch, 'no cross build is set up for it')
            checks.skip(f'cross {srcarch}', f'{why}; the series changes '
                        f'{len(files)} file(s) there: {", ".join(files)}')
    info(f'cross builds: {fmt_secs(time.monotonic() - t0)} in all')
