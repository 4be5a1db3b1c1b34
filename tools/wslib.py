# SPDX-License-Identifier: GPL-2.0
"""Base library of tools/ws: base import, work tree, export, build, checks.

The command modules (wsboot, wskunit, wsgates, wsrun, wsbench and the
gates) import this module; it imports none of them, so that the
dependencies run one way.
"""

import fcntl
import fnmatch
import hashlib
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BASE_REF = 'ws/base'
BASE_CONF = os.path.join(ROOT, 'base.conf')
SERIES = os.path.join(ROOT, 'series')
SERIES_PARTS = os.path.join(ROOT, 'series.parts')
PATCHES = os.path.join(ROOT, 'patches')
COVER = '0000-cover-letter.patch'
ARCH = 'x86_64'

# Debian packages the workspace needs, by the command or file that shows
# each is present.  The pinned linux-source package is handled apart.
PACKAGES = [
    ('qemu-system-x86', 'qemu-system-x86_64'),
    ('busybox-static', '/bin/busybox'),
    ('ccache', 'ccache'),
    ('quilt', 'quilt'),
    ('b4', 'b4'),
    ('sparse', 'sparse'),
    ('gcc', 'gcc'),
    ('make', 'make'),
    ('bison', 'bison'),
    ('flex', 'flex'),
    ('libelf-dev', '/usr/include/libelf.h'),
    ('libssl-dev', '/usr/include/openssl/ssl.h'),
    ('cpio', 'cpio'),
    ('xz-utils', 'xz'),
    ('perl', 'perl'),
    ('git', 'git'),
    ('python3', 'python3'),
    ('liburcu-dev', 'dpkg:liburcu-dev'),
    ('valgrind', 'valgrind'),
    ('bc', 'bc'),
    ('ovmf', '/usr/share/ovmf/OVMF.fd'),
    ('libc6-dev', '/usr/lib/x86_64-linux-gnu/libc.a'),
]


class WsError(Exception):
    """A failure with a message meant for the user."""


def die(msg):
    sys.stdout.flush()
    print(f'ws: error: {msg}', file=sys.stderr)
    sys.exit(2)


def info(msg):
    print(f'ws: {msg}', flush=True)


# Scratch directories that runs make inside their work directory and
# remove when they end; a run killed midway leaves them behind.
WORK_SCRATCH_PREFIXES = ('roundtrip-', 'quilt-')
WORK_LOCK = '.ws-lock'


def lock_work(work, what):
    """Take the work directory for this process, for its whole life.

    A second tools/ws on the same work directory refuses at once: two runs
    would reset, build and read one kernel tree under each other.  The
    lock is an flock(), which the kernel drops when the process dies,
    however it dies; the file only names the holder.  Once the lock is
    held, scratch directories that a killed run left are removed, so that
    they cannot change this run.  Returns the open lock file, to be kept.
    """
    os.makedirs(work, exist_ok=True)
    path = os.path.join(work, WORK_LOCK)
    f = open(path, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        f.seek(0)
        holder = f.read().strip() or 'another process'
        f.close()
        raise WsError(f'{work} is in use by {holder}; wait for it to end, '
                      'or give this one another --work directory')
    f.seek(0)
    f.truncate()
    f.write(f'"tools/ws {what}" (pid {os.getpid()})\n')
    f.flush()
    for name in os.listdir(work):
        if name.startswith(WORK_SCRATCH_PREFIXES):
            shutil.rmtree(os.path.join(work, name), ignore_errors=True)
    return f


class banner:
    """Context manager that prints a step's start and its elapsed time."""

    def __init__(self, what):
        self.what = what

    def __enter__(self):
        self.t0 = time.monotonic()
        print(f'==> {self.what} ...', flush=True)
        return self

    def __exit__(self, typ, val, tb):
        dt = time.monotonic() - self.t0
        state = 'done' if typ is None else 'FAILED'
        print(f'==> {self.what}: {state} in {fmt_secs(dt)}', flush=True)
        return False


def fmt_secs(s):
    return f'{int(s // 60)}m{s % 60:04.1f}s' if s >= 60 else f'{s:.1f}s'


def run(cmd, check=True, capture=False, cwd=None, env=None, input=None,
        timeout=None):
    """Run a command; on failure raise WsError naming it."""
    full_env = None
    if env:
        full_env = dict(os.environ)
        full_env.update(env)
    try:
        r = subprocess.run(cmd, cwd=cwd, env=full_env, input=input,
                           text=True, timeout=timeout,
                           stdout=subprocess.PIPE if capture else None,
                           stderr=subprocess.STDOUT if capture else None)
    except FileNotFoundError:
        raise WsError(f'command not found: {cmd[0]}')
    if check and r.returncode != 0:
        out = (r.stdout or '').strip()
        tail = '\n'.join(out.splitlines()[-30:])
        raise WsError(f'command failed ({r.returncode}): '
                      f'{shlex.join(cmd)}' + (f'\n{tail}' if tail else ''))
    return r


def run_with_heartbeat(cmd, env, check, build_dir, every=60):
    """Run a long, quiet command; say every minute that it still runs."""
    full_env = dict(os.environ)
    full_env.update(env)
    t0 = time.monotonic()
    proc = subprocess.Popen(cmd, env=full_env)
    while True:
        try:
            rc = proc.wait(timeout=every)
            break
        except subprocess.TimeoutExpired:
            print(f'    ... still running ({fmt_secs(time.monotonic() - t0)}'
                  ')', flush=True)
    if check and rc != 0:
        raise WsError(f'command failed ({rc}): {shlex.join(cmd)}')
    return subprocess.CompletedProcess(cmd, rc)


def git(tree, *args, check=True, capture=True, env=None):
    r = run(['git', '-C', tree] + list(args), check=check, capture=capture,
            env=env)
    return r.stdout.strip() if capture and check else r


# ---------------------------------------------------------------------------
# The pinned base

def read_conf(path=BASE_CONF):
    conf = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            key, _, val = line.partition('=')
            conf[key.strip()] = val.strip()
    return conf


class Base:
    """The base this run uses: base.conf, or the WS_BASE_* override."""

    def __init__(self):
        conf = read_conf()
        self.package = conf['BASE_PACKAGE']
        self.pinned = conf['BASE_VERSION']
        self.tarball = conf['BASE_TARBALL']
        self.upstream = conf['BASE_UPSTREAM']
        self.version = os.environ.get('WS_BASE_VERSION') or self.pinned
        if self.version == self.pinned:
            self.sha256 = os.environ.get('WS_BASE_SHA256') or \
                conf['BASE_SHA256']
        else:
            self.sha256 = os.environ.get('WS_BASE_SHA256')
        self.overridden = self.version != self.pinned

    @property
    def slug(self):
        return re.sub(r'[^A-Za-z0-9.+-]', '_', self.version)

    def describe(self):
        s = f'{self.package} {self.version} ({self.upstream} + Debian patches)'
        if self.overridden:
            s = (f'{self.package} {self.version} (OVERRIDE of the pinned '
                 f'{self.pinned})')
        return s


def cache_dir():
    d = os.environ.get('WS_CACHE')
    if not d:
        xdg = os.environ.get('XDG_CACHE_HOME') or \
            os.path.join(os.path.expanduser('~'), '.cache')
        d = os.path.join(xdg, 'ptguard')
    os.makedirs(d, exist_ok=True)
    return d


def apt_get():
    return os.environ.get('WS_APT_GET', 'apt-get')


def apt_cache():
    return os.environ.get('WS_APT_CACHE', 'apt-cache')


_apt_updated = False


def apt_update():
    global _apt_updated
    if _apt_updated:
        return
    if not shutil.which(apt_get()):
        raise WsError(f'{apt_get()} not found: the workspace installs its '
                      'tools from Debian packages and needs a Debian '
                      '(bookworm) machine with apt')
    info('apt-get update')
    r = run([apt_get(), 'update', '-q'], check=False, capture=True)
    out = r.stdout or ''
    if r.returncode != 0 or re.search(r'^(Err|W: Failed to fetch)', out,
                                      re.M):
        tail = '\n'.join(out.strip().splitlines()[-8:])
        raise WsError('cannot reach the Debian package mirror '
                      f'("apt-get update" failed):\n{tail}\n'
                      'Check the network route to the mirror and '
                      '/etc/apt/sources.list, then run again.')
    _apt_updated = True


def apt_install(pkgs):
    env = {'DEBIAN_FRONTEND': 'noninteractive'}
    r = run([apt_get(), 'install', '-y', '-q', '--no-install-recommends',
             '--allow-downgrades'] + pkgs, check=False, capture=True, env=env)
    if r.returncode != 0:
        tail = '\n'.join((r.stdout or '').strip().splitlines()[-10:])
        raise WsError(f'apt-get install {" ".join(pkgs)} failed:\n{tail}')


def missing_packages(packages=None):
    miss = []
    for pkg, probe in PACKAGES if packages is None else packages:
        if probe.startswith('dpkg:'):
            present = installed_version(probe[5:]) is not None
        elif probe.startswith('/'):
            present = os.path.exists(probe)
        else:
            present = shutil.which(probe)
        if not present:
            miss.append(pkg)
    return miss


def setup_packages(packages=None):
    """Install the Debian packages of packages (default: PACKAGES, the
    base workspace's) that are missing."""
    miss = missing_packages(packages)
    if not miss:
        return
    with banner(f'installing {" ".join(miss)}'):
        apt_update()
        apt_install(miss)
    still = missing_packages(packages)
    if still:
        raise WsError(f'still missing after apt-get install: {still}')


def installed_version(pkg):
    r = run(['dpkg-query', '-W', '-f=${Status}\t${Version}', pkg],
            check=False, capture=True)
    if r.returncode != 0 or 'install ok installed' not in r.stdout:
        return None
    return r.stdout.split('\t', 1)[1].strip()


def offered_versions(pkg):
    r = run([apt_cache(), 'madison', pkg], check=False, capture=True)
    vers = []
    for line in (r.stdout or '').splitlines():
        parts = [p.strip() for p in line.split('|')]
        if len(parts) >= 2 and parts[0] == pkg and parts[1] not in vers:
            vers.append(parts[1])
    return vers


def sha256_of(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


def ensure_base_package(base):
    """Install the base package at exactly base.version; verify the hash."""
    have = installed_version(base.package)
    if have != base.version or not os.path.exists(base.tarball):
        if not shutil.which(apt_get()):
            raise WsError(
                f'{base.package} {base.version} is not installed and '
                'apt-get is not available to install it. Install that '
                'exact version, or run on Debian bookworm.')
        apt_update()
        offered = offered_versions(base.package)
        if base.version not in offered:
            lst = ', '.join(offered) if offered else '(none)'
            example = offered[0] if offered else 'VERSION'
            raise WsError(
                f'{base.package} version {base.version} cannot be had from '
                f'apt any more.\nVersions apt offers: {lst}\n'
                'The series is pinned to that version on purpose; nothing '
                'falls back to another one.  To try one of the offered '
                'versions, override the pin for a run:\n'
                f'  WS_BASE_VERSION={example} WS_BASE_SHA256=<sha256 of '
                f'{base.tarball}> tools/ws ...\n'
                '(run once without WS_BASE_SHA256 to be told the hash), '
                'or change base.conf in a commit of its own.')
        with banner(f'installing {base.package}={base.version}'):
            apt_install([f'{base.package}={base.version}'])
    digest = sha256_of(base.tarball)
    if base.sha256 is None:
        raise WsError(
            f'{base.tarball} ({base.package} {base.version}) has sha256 '
            f'{digest}, but no hash was given for this overridden version. '
            f'Set WS_BASE_SHA256={digest} if you accept it.')
    if digest != base.sha256:
        raise WsError(f'{base.tarball} has sha256 {digest}, expected '
                      f'{base.sha256} for {base.package} {base.version}. '
                      'Refusing to use an unverified base.')
    return digest


GITIGNORE_DEBIAN_BLOCK = re.compile(
    r'\n#\n# Debian packaging: ignore everything at the top level[^\n]*\n'
    r'(#[^\n]*\n)*/\*\n!/debian/\n?')


def strip_debian_gitignore(tree):
    path = os.path.join(tree, '.gitignore')
    with open(path) as f:
        text = f.read()
    new, n = GITIGNORE_DEBIAN_BLOCK.subn('\n', text)
    if n != 1:
        raise WsError(f'{path}: Debian\'s "ignore everything at the top '
                      'level" block was not found where expected; the '
                      'import would silently drop new files. Check the '
                      'base tarball.')
    with open(path, 'w') as f:
        f.write(new.rstrip('\n') + '\n')


def base_commit_message(base, digest):
    return f"""\
Import {base.package} {base.version} as the series base

This is {base.tarball} from Debian's {base.package} package,
version {base.version}: upstream {base.upstream} plus Debian's patches.

  sha256 {digest}

One change from the tarball: the block at the end of the top-level
.gitignore that Debian keeps for its packaging repository ("ignore
everything at the top level", /* and !/debian/) is removed.  With it in
place git ignores every file that is not tracked yet, so a new file such
as kernel/mem_table.c would be silently left out of "git add".
"""


def ensure_base():
    """Return the path of the cached git repository holding the base."""
    base = Base()
    digest = ensure_base_package(base)
    repo = os.path.join(cache_dir(), 'base', base.slug)
    stamp = os.path.join(repo, '.git', 'ws-imported')
    if os.path.exists(stamp):
        with open(stamp) as f:
            if f.read().strip() == digest:
                git(repo, 'config', 'gc.auto', '0')
                return repo
    if os.path.exists(repo):
        shutil.rmtree(repo)
    for old in os.listdir(cache_dir()):
        if old.startswith('import-'):	# left by an interrupted import
            shutil.rmtree(os.path.join(cache_dir(), old), ignore_errors=True)
    with banner(f'importing {base.package} {base.version} into {repo}'):
        tmp = tempfile.mkdtemp(prefix='import-', dir=cache_dir())
        try:
            run(['tar', '-xf', base.tarball, '-C', tmp])
            tops = os.listdir(tmp)
            if len(tops) != 1:
                raise WsError(f'{base.tarball}: expected one top-level '
                              f'directory, found {tops}')
            src = os.path.join(tmp, tops[0])
            strip_debian_gitignore(src)
            os.makedirs(os.path.dirname(repo), exist_ok=True)
            os.rename(src, repo)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        mtime = time.strftime('%Y-%m-%dT%H:%M:%SZ',
                              time.gmtime(os.path.getmtime(base.tarball)))
        name, email = identity()
        env = {'GIT_AUTHOR_DATE': mtime, 'GIT_COMMITTER_DATE': mtime,
               'GIT_AUTHOR_NAME': name, 'GIT_AUTHOR_EMAIL': email,
               'GIT_COMMITTER_NAME': name, 'GIT_COMMITTER_EMAIL': email}
        git(repo, 'init', '-q', '-b', 'base')
        # Never let an automatic gc repack and prune this repository in
        # the background: clones hard-link its loose objects, and a
        # prune racing a clone breaks it.
        git(repo, 'config', 'gc.auto', '0')
        # -f: the tarball is the base; its own ignore rules must not
        # drop any file it ships.
        git(repo, 'add', '-A', '-f', '.')
        run(['git', '-C', repo, '-c', 'gc.auto=0', 'commit', '-q',
             '--no-verify', '-F', '-'],
            input=base_commit_message(base, digest), env=env, capture=True)
        git(repo, 'tag', '-f', BASE_REF)
        with open(stamp, 'w') as f:
            f.write(digest + '\n')
    return repo


def clone_base(repo, tree):
    """Clone the base repository (hard links) into a new work tree."""
    run(['git', '-c', 'gc.auto=0', 'clone', '-q', '--no-checkout',
         '--config', 'gc.auto=0', repo, tree], capture=True)


def base_checkout(work, want=None):
    """work/base-src: a checkout of the base commit want (default: BASE_REF
    of the imported base), made once and shared by the gates that build
    the base out of tree beside the series (docs, cross, bench).  They
    only read it: every build puts its output in an O= directory of its
    own (the bench's merge_config.sh keeps two temporary files in it while
    it runs; the gates run one at a time)."""
    tree = os.path.join(os.path.abspath(work), 'base-src')
    have = run(['git', '-C', tree, 'rev-parse', '-q', '--verify', 'HEAD'],
               check=False, capture=True).stdout.strip() \
        if os.path.isdir(os.path.join(tree, '.git')) else ''
    if have and have == want and not git(tree, 'status', '--porcelain',
                                         '--untracked-files=no'):
        return tree
    repo = ensure_base()
    want = want or git(repo, 'rev-parse', f'{BASE_REF}^{{commit}}')
    if have == want and not git(tree, 'status', '--porcelain',
                                '--untracked-files=no'):
        return tree
    shutil.rmtree(tree, ignore_errors=True)
    with banner(f'checking out the base into {tree}'):
        clone_base(repo, tree)
        git(tree, 'checkout', '-q', '--detach', want)
    return tree


def identity():
    """The repository's configured git identity: authorship of everything."""
    name = run(['git', '-C', ROOT, 'config', 'user.name'], check=False,
               capture=True).stdout.strip()
    email = run(['git', '-C', ROOT, 'config', 'user.email'], check=False,
                capture=True).stdout.strip()
    if not name or not email:
        raise WsError('git user.name and user.email are not configured for '
                      f'{ROOT}; the series is authored with that identity')
    return name, email


# ---------------------------------------------------------------------------
# series and patches/

def read_series(path=SERIES):
    """Patch names of a quilt series file (comments and options dropped)."""
    names = []
    if not os.path.exists(path):
        return names
    with open(path) as f:
        for line in f:
            line = line.split('#', 1)[0].strip()
            if line:
                names.append(line.split()[0])
    return names


def series_patches(series=SERIES, patches=PATCHES):
    out = []
    for name in read_series(series):
        p = os.path.join(patches, name)
        if not os.path.isfile(p):
            raise WsError(f'series names {name}, but {p} does not exist')
        out.append(p)
    return out


SERIES_HEADER = """\
# The ptguard series, in order.  A quilt series file: one patch of
# patches/ per line.  Written by "tools/ws export" from the commits of the
# kernel work tree; change the commits and export, do not edit by hand.
"""

def read_table(path, usage):
    """Rows of a "A | B | ..." file, with as many fields as usage names.

    Blank lines and lines starting with # are skipped; a missing file is
    an empty table; a row with another number of fields, or an empty
    one, stops with the file, the line and usage.
    """
    rows = []
    if not os.path.exists(path):
        return rows
    nfields = usage.count(' | ') + 1
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.strip()
            if not line or line.startswith('#'):
                continue
            fields = [x.strip() for x in line.split(' | ')]
            if len(fields) != nfields or not all(fields):
                raise WsError(f'{path}:{n}: expected "{usage}", got: {line}')
            rows.append(tuple(fields))
    return rows


def read_parts(path=SERIES_PARTS):
    """[(first patch subject, part title)] from series.parts."""
    return read_table(path, 'SUBJECT | TITLE')


def patch_subject(path):
    """The subject of a format-patch file, without the [PATCH n/m] tag."""
    with open(path) as f:
        head = f.read().partition('\n\n')[0]
    m = re.search(r'^Subject: (?:\[[^\]]*\] )?(.*(?:\n .*)*)', head, re.M)
    return re.sub(r'\n ', ' ', m.group(1)).strip() if m else ''


def series_text(names, outdir, parts=None):
    """The series file for the exported names, in sections by part.

    names are the exported files (cover letter included), outdir the
    directory holding them.  Each part of series.parts starts a comment
    header before its first patch.
    """
    parts = read_parts() if parts is None else parts
    titles = dict(parts)
    lines = [SERIES_HEADER]
    seen = set()
    patches = [n for n in names if n != COVER]
    for i, n in enumerate(patches):
        subject = patch_subject(os.path.join(outdir, n))
        if subject in titles:
            seen.add(subject)
            lines.append(f'\n# {titles[subject]}\n')
        elif i == 0 and parts:
            raise WsError(f'the first patch ("{subject}") starts no part '
                          f'of {SERIES_PARTS}')
        lines.append(n + '\n')
    missing = [s for s, _ in parts if s not in seen]
    if missing and patches:
        raise WsError(f'{SERIES_PARTS} names first patches that the '
                      f'series does not have: {missing}; update it with '
                      'the new subjects')
    return ''.join(lines)


FORMAT_PATCH_OPTS = [
    '-c', 'core.abbrev=12', '-c', 'diff.noprefix=false',
    '-c', 'diff.mnemonicPrefix=false', '-c', 'format.signOff=false',
    '-c', 'diff.algorithm=default', '-c', 'format.coverLetter=false',
]


def format_patches(tree, outdir):
    """Export commits since the base into outdir; return the file names."""
    os.makedirs(outdir, exist_ok=True)
    count = int(git(tree, 'rev-list', '--count', f'{BASE_REF}..HEAD'))
    if count == 0:
        return []
    desc = branch_description(tree)
    cmd = ['git', '-C', tree] + FORMAT_PATCH_OPTS + [
        'format-patch', '-q', '--zero-commit', '--abbrev=12', '--full-index',
        '--no-signature', '--no-renames', '--no-thread', '--numbered',
        '--subject-prefix=PATCH', '--no-to', '--no-cc', '--no-add-header',
        '--no-notes', '--no-attach', '--stat=80', '--stat-graph-width=30',
        '-o', outdir]
    if desc:
        cmd += ['--cover-letter', '--cover-from-description=subject']
    cmd.append(f'{BASE_REF}..HEAD')
    # The cover letter is dated like the newest patch, so that an
    # unchanged series exports to the same bytes.
    date = git(tree, 'log', '-1', '--format=%aI', 'HEAD')
    run(cmd, capture=True, env={'GIT_COMMITTER_DATE': date})
    return sorted(n for n in os.listdir(outdir) if n.endswith('.patch'))


def branch_description(tree):
    br = git(tree, 'symbolic-ref', '--short', '-q', 'HEAD', check=False)
    if not isinstance(br, str):
        br = br.stdout.strip() if br.returncode == 0 else ''
    if not br:
        return ''
    r = run(['git', '-C', tree, 'config', f'branch.{br}.description'],
            check=False, capture=True)
    return r.stdout.strip() if r.returncode == 0 else ''


def cover_description(path):
    """The branch description a cover letter was written from."""
    with open(path) as f:
        text = f.read()
    head, _, body = text.partition('\n\n')
    subj = re.search(r'^Subject: (?:\[[^\]]*\] )?(.*(?:\n .*)*)', head, re.M)
    subject = re.sub(r'\n ', ' ', subj.group(1)) if subj else ''
    lines = []
    for line in body.splitlines():
        if re.match(r'^\S.* \(\d+\):$', line):
            break
        lines.append(line)
    return (subject + '\n\n' + '\n'.join(lines).strip()).strip() + '\n'


def uncommitted(*paths):
    """git status of paths in the repository that holds them, or ''."""
    top = os.path.dirname(os.path.abspath(paths[0]))
    r = run(['git', '-C', top, 'rev-parse', '--show-toplevel'], check=False,
            capture=True)
    if r.returncode != 0:
        return ''
    return git(top, 'status', '--porcelain', '--',
               *[os.path.abspath(p) for p in paths])


# ---------------------------------------------------------------------------
# The workspace: a kernel work tree and its build directory

class Workspace:
    def __init__(self, work):
        self.work = work
        self.tree = os.path.join(work, 'linux')
        self.build_dir = os.path.join(work, 'build')
        self.logs = os.path.join(work, 'logs')

    # -- work tree ---------------------------------------------------------

    def tree_exists(self):
        return os.path.isdir(os.path.join(self.tree, '.git'))

    def dirty(self):
        return git(self.tree, 'status', '--porcelain')

    def commits_since_base(self):
        return int(git(self.tree, 'rev-list', '--count',
                       f'{BASE_REF}..HEAD'))

    def in_progress(self):
        gd = git(self.tree, 'rev-parse', '--absolute-git-dir')
        for d in ('rebase-apply', 'rebase-merge', 'MERGE_HEAD',
                  'CHERRY_PICK_HEAD'):
            if os.path.exists(os.path.join(gd, d)):
                return d
        return None

    def matches_series(self):
        """True when exporting the tree would reproduce patches/ exactly."""
        with tempfile.TemporaryDirectory() as tmp:
            names = format_patches(self.tree, tmp)
            want = read_series()
            cover = os.path.join(PATCHES, COVER)
            if os.path.exists(cover):
                want = [COVER] + want
            if names != want:
                return False
            for n in names:
                with open(os.path.join(tmp, n), 'rb') as a, \
                        open(os.path.join(PATCHES, n), 'rb') as b:
                    if a.read() != b.read():
                        return False
        return True

    def apply(self, force=False, series=SERIES, patches=PATCHES):
        """Make the work tree: base plus every patch of series, by git am."""
        plist = series_patches(series, patches)   # fail before touching
        repo = ensure_base()
        base_sha = git(repo, 'rev-parse', BASE_REF)
        if self.tree_exists() and self._holds_series(base_sha):
            # Resetting and applying again would give every file the
            # series touches a new time stamp, and through <linux/mm.h>
            # make would rebuild nearly the whole kernel for nothing.
            info(f'{self.tree}: already the base plus patches/ exactly; '
                 'kept as it is')
            return
        if self.tree_exists():
            self._check_replace(force, base_sha)
        else:
            os.makedirs(self.work, exist_ok=True)
            with banner(f'creating the work tree {self.tree}'):
                clone_base(repo, self.tree)
                git(self.tree, 'checkout', '-q', '-B', 'series', BASE_REF)
        name, email = identity()
        git(self.tree, 'config', 'user.name', name)
        git(self.tree, 'config', 'user.email', email)
        self._am(plist, patches)

    def _holds_series(self, base_sha):
        """True when the tree is clean, on branch series, on this base, and
        exporting it would write patches/ exactly."""
        r = run(['git', '-C', self.tree, 'symbolic-ref', '-q', 'HEAD'],
                check=False, capture=True)
        if r.stdout.strip() != 'refs/heads/series':
            return False
        have_base = run(['git', '-C', self.tree, 'rev-parse', '-q',
                         '--verify', BASE_REF + '^{commit}'],
                        check=False, capture=True).stdout.strip()
        return (have_base == base_sha and not self.in_progress() and
                not self.dirty() and self.commits_since_base() > 0 and
                self.matches_series())

    def _check_replace(self, force, base_sha):
        state = self.in_progress()
        if state and not force:
            raise WsError(f'{self.tree}: a git operation is in progress '
                          f'({state}); finish or abort it first')
        have_base = run(['git', '-C', self.tree, 'rev-parse', '-q',
                         '--verify', BASE_REF + '^{commit}'],
                        check=False, capture=True).stdout.strip()
        if have_base != base_sha:
            if not force:
                raise WsError(f'{self.tree} was made from another base; '
                              'export your work, then run with --force '
                              'or remove the tree')
            shutil.rmtree(self.tree)
            return self.apply_fresh_clone()
        if not force:
            if self.dirty():
                raise WsError(f'{self.tree} has uncommitted changes; commit '
                              'and export them, or use --force to discard')
            if self.commits_since_base() and not self.matches_series():
                raise WsError(f'{self.tree} has commits that differ from '
                              'patches/; run "tools/ws export" first, or '
                              'use --force to discard them')
        if state:
            git(self.tree, 'am', '--abort', check=False)
            git(self.tree, 'rebase', '--abort', check=False)
        git(self.tree, 'checkout', '-q', '-f', '-B', 'series', BASE_REF)
        git(self.tree, 'clean', '-q', '-fdx')

    def apply_fresh_clone(self):
        repo = ensure_base()
        clone_base(repo, self.tree)
        git(self.tree, 'checkout', '-q', '-B', 'series', BASE_REF)

    def _am(self, plist, patches):
        cover = os.path.join(patches, COVER)
        br = 'series'
        if os.path.exists(cover):
            git(self.tree, 'config', f'branch.{br}.description',
                cover_description(cover).rstrip('\n'))
        else:
            git(self.tree, 'config', '--unset', f'branch.{br}.description',
                check=False)
        with banner(f'applying {len(plist)} patches with git am'):
            for p in plist:
                r = run(['git', '-C', self.tree, 'am', '-q', '--keep-cr',
                         '--committer-date-is-author-date', '--reject', p],
                        check=False, capture=True)
                if r.returncode != 0:
                    rej = self._collect_rejects()
                    git(self.tree, 'am', '--abort', check=False)
                    git(self.tree, 'clean', '-q', '-fd', check=False)
                    raise WsError(
                        f'patch {os.path.basename(p)} does not apply:\n'
                        f'{r.stdout.strip()}\n{rej}'.rstrip())
        info(f'{self.tree}: {len(plist)} patches applied on {BASE_REF}')

    def _collect_rejects(self):
        out = []
        r = run(['git', '-C', self.tree, 'ls-files', '--others',
                 '--exclude-standard', '--', '*.rej'], check=False,
                capture=True)
        for rel in r.stdout.split():
            with open(os.path.join(self.tree, rel)) as f:
                out.append(f'--- reject {rel} ---\n{f.read()}')
        return '\n'.join(out)

    def export(self, force=False, patches=PATCHES, series=SERIES,
               parts=None):
        if not self.tree_exists():
            raise WsError(f'no work tree at {self.tree}; run "tools/ws apply"')
        state = self.in_progress()
        if state:
            raise WsError(f'{self.tree}: a git operation is in progress '
                          f'({state}); finish it before exporting')
        dirty = self.dirty()
        if dirty:
            raise WsError(f'{self.tree} has uncommitted changes; commit them '
                          f'(or stash) before exporting:\n{dirty}')
        if run(['git', '-C', self.tree, 'merge-base', '--is-ancestor',
                BASE_REF, 'HEAD'], check=False).returncode != 0:
            raise WsError(f'HEAD of {self.tree} does not descend from '
                          f'{BASE_REF}')
        if not force:
            local = uncommitted(patches, series)
            if local:
                raise WsError('patches/ or series has uncommitted changes '
                              'in this repository; export would overwrite '
                              f'them. Commit or stash them first:\n{local}')
        with tempfile.TemporaryDirectory() as tmp:
            names = format_patches(self.tree, tmp)
            text = series_text(names, tmp, parts)
            os.makedirs(patches, exist_ok=True)
            for old in os.listdir(patches):
                if old.endswith('.patch') and old not in names:
                    os.unlink(os.path.join(patches, old))
            for n in names:
                shutil.copyfile(os.path.join(tmp, n),
                                os.path.join(patches, n))
        with open(series, 'w') as f:
            f.write(text)
        info(f'exported {len([n for n in names if n != COVER])} patches '
             f'to {patches}')
        return names

    def changed_files(self):
        out = git(self.tree, 'diff', '--name-only', '--no-renames',
                  '--diff-filter=AM', f'{BASE_REF}..HEAD')
        return [f for f in out.splitlines() if f]

    def added_lines(self):
        """{path: set(line numbers)} of lines the series adds."""
        out = git(self.tree, 'diff', '-U0', '--no-renames',
                  f'{BASE_REF}..HEAD')
        added, cur = {}, None
        for line in out.splitlines():
            if line.startswith('+++ '):
                cur = line[6:] if line.startswith('+++ b/') else None
            m = re.match(r'^@@ -\S+ \+(\d+)(?:,(\d+))? @@', line)
            if m and cur:
                start, n = int(m.group(1)), int(m.group(2) or 1)
                added.setdefault(cur, set()).update(range(start, start + n))
        return added

    # -- configuration and build ------------------------------------------

    def fragments(self):
        d = os.path.join(ROOT, 'kernel-config')
        order = os.path.join(d, 'order')
        with open(order) as f:
            names = [ln.split('#', 1)[0].strip() for ln in f]
        return [os.path.join(d, n) for n in names if n]

    def make_env(self):
        env = {'ARCH': ARCH, 'KBUILD_BUILD_USER': 'ptguard',
               'KBUILD_BUILD_HOST': 'ws',
               'KBUILD_BUILD_TIMESTAMP': 'Thu Jan  1 00:00:00 UTC 2026',
               'CCACHE_BASEDIR': self.work,
               'CCACHE_NOHASHDIR': '1'}
        return env

    def make_args(self):
        args = [f'O={self.build_dir}', f'ARCH={ARCH}']
        if shutil.which('ccache'):
            args.append('CC=ccache gcc')
        return args

    def make(self, *targets, capture=False, check=True, extra=()):
        jobs = os.environ.get('WS_JOBS') or str(os.cpu_count() or 2)
        cmd = ['make', '-C', self.tree, f'-j{jobs}', '-s'] + \
            self.make_args() + list(extra) + list(targets)
        if capture:
            return run(cmd, capture=True, check=check, env=self.make_env())
        return run_with_heartbeat(cmd, self.make_env(), check,
                                  self.build_dir)

    def merged_fragment(self):
        """All fragments concatenated: the kunitconfig that matches .config."""
        parts = []
        for frag in self.fragments():
            with open(frag) as f:
                parts.append(f'# --- {os.path.basename(frag)}\n' + f.read())
        return '\n'.join(parts)

    def configure(self):
        if not self.tree_exists():
            raise WsError(f'no work tree at {self.tree}; run "tools/ws '
                          'apply" first')
        frags = self.fragments()
        os.makedirs(self.build_dir, exist_ok=True)
        merged = os.path.join(self.build_dir, 'ws-fragments.config')
        new = self.merged_fragment()
        old_cfg = os.path.join(self.build_dir, '.config')
        if os.path.exists(old_cfg) and os.path.exists(merged):
            with open(merged) as f:
                if f.read() == new and not self.config_problems(frags):
                    return
        with banner('configuring: merge_config.sh ' +
                    ' '.join(os.path.relpath(f, ROOT) for f in frags)):
            env = self.make_env()
            cmd = ['scripts/kconfig/merge_config.sh', '-O', self.build_dir]
            cmd += frags
            r = run(cmd, cwd=self.tree, env=env, capture=True, check=False)
            if r.returncode != 0:
                raise WsError('merge_config.sh failed:\n' + r.stdout[-3000:])
            self.make('olddefconfig')
            bad = self.config_problems(frags)
            if bad:
                raise WsError('options asked for by kernel-config/ did not '
                              'survive olddefconfig (missing dependency?):\n'
                              + '\n'.join(bad))
            with open(merged, 'w') as f:
                f.write(new)

    def kconfig_symbols(self):
        """Every symbol a Kconfig file of the work tree defines."""
        return kconfig_symbols(self.tree)

    def config_problems(self, frags):
        """Options kernel-config/ asks for that .config does not have.

        An option that no Kconfig file of the tree defines is not a
        problem: the fragments name the options of the whole series, and
        a prefix of it (a bisection, an earlier part) lacks the later
        ones.  Such options are listed once, as information.  Where two
        fragments name an option, the later one's value is the one asked
        for, as merge_config.sh applies them.
        """
        have = parse_config(os.path.join(self.build_dir, '.config'))
        known = self.kconfig_symbols()
        bad, absent = [], []
        asked = {}
        for frag in frags:
            for name, want in parse_config(frag).items():
                asked.pop(name, None)
                asked[name] = (frag, want)
        for name, (frag, want) in asked.items():
            got = have.get(name, 'n')
            if got != want and name not in known:
                absent.append(name)
            elif got != want:
                bad.append(f'  {os.path.basename(frag)}: CONFIG_{name}='
                           f'{want} asked, .config has {got}')
        if absent and absent != getattr(self, '_absent_said', None):
            self._absent_said = absent
            info('not in this tree (a later patch adds them): ' +
                 ' '.join(f'CONFIG_{n}' for n in absent))
        return bad

    def build(self):
        with banner('building the kernel (out of tree: '
                    f'{self.build_dir})'):
            self.make()
        return os.path.join(self.build_dir, 'arch/x86/boot/bzImage')

    def bzimage(self):
        return os.path.join(self.build_dir, 'arch/x86/boot/bzImage')

    def kernel_release(self):
        p = os.path.join(self.build_dir, 'include/config/kernel.release')
        with open(p) as f:
            return f.read().strip()


def parse_config(path):
    vals = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            m = re.match(r'^CONFIG_(\w+)=(.*)$', line)
            if m:
                vals[m.group(1)] = m.group(2)
                continue
            m = re.match(r'^# CONFIG_(\w+) is not set$', line)
            if m:
                vals[m.group(1)] = 'n'
    return vals


def kconfig_symbols(tree):
    """Every symbol a Kconfig file of the git tree at tree defines."""
    out = git(tree, 'grep', '-h', '-E',
              r'^[[:space:]]*(menu)?config [A-Za-z0-9_]+', '--', '*Kconfig*')
    return {ln.split()[1] for ln in out.splitlines() if ln.split()[1:]}


# ---------------------------------------------------------------------------
# Counting checks: every test command ends with "N passed, N failed".

KNOWN_FAILURES = os.path.join(ROOT, 'tests', 'known-failures')


def read_known_failures(path=KNOWN_FAILURES):
    """[(glob, reason, fixed_by)] from tests/known-failures.

    Each line is "CHECK NAME GLOB | REASON | WHAT FIXES IT"; the glob is
    matched against the whole check name with fnmatch.
    """
    return read_table(path, 'CHECK GLOB | REASON | WHAT FIXES IT')


class Checks:
    """Counted checks.  A failure listed in tests/known-failures is an
    XFAIL: reported with its reason, counted apart, not a failure.  A
    listed check that passes is an XPASS, which fails, so that its entry
    is removed in the change that fixed it."""

    def __init__(self, known=None):
        self.results = []
        self.known = read_known_failures() if known is None else known
        self.xfails = []
        self.matched = set()     # globs of self.known that named a check

    def known_failure(self, name):
        for glob, reason, fixed_by in self.known:
            if fnmatch.fnmatchcase(name, glob):
                self.matched.add(glob)
                return reason, fixed_by
        return None

    def check_known_failures_used(self):
        """After a whole test run: a listed glob that named no check,
        though its gate ran, is stale (the check was renamed, or a fix
        made the failing check go away rather than pass), and fails like
        an XPASS.  A gate ran when some check's name starts with the
        glob's first two words ("arm64 kunit", "cross powerpc"), so a run
        restricted to some architectures, or a gate that stopped with an
        error (itself a failed check), calls nothing stale."""
        names = [name for name, _, _ in self.results]

        def gate_ran(glob):
            scope = ' '.join(glob.split()[:2]).rstrip(':')
            return any(name.startswith(scope) for name in names)

        stale = [glob for glob, _, _ in self.known
                 if glob not in self.matched and gate_ran(glob)]
        self.add('tests/known-failures: every entry names a check of '
                 'this run', not stale,
                 f'stale, remove or correct: {stale}' if stale else
                 f'{len(self.known)} entries')

    def add(self, name, ok, detail=''):
        known = self.known_failure(name)
        if known and not ok:
            self.xfails.append((name, detail))
            self.results.append((name, None, f'XFAIL: {known[0]}'))
            print(f'[XFAIL] {name} -- {known[0]} (to be fixed by: '
                  f'{known[1]})' + (f'\n    {detail}' if detail else ''),
                  flush=True)
            return
        if known and ok:
            detail = ('XPASS: listed in tests/known-failures but passes; '
                      f'remove its entry. {detail}').strip()
            ok = False
        self.results.append((name, bool(ok), detail))
        mark = 'PASS' if ok else 'FAIL'
        line = f'[{mark}] {name}'
        if detail:
            line += f' -- {detail}'
        print(line, flush=True)

    def skip(self, name, reason):
        self.results.append((name, None, reason))
        print(f'[SKIP] {name} -- {reason}', flush=True)

    def counts(self):
        p = sum(1 for r in self.results if r[1] is True)
        f = sum(1 for r in self.results if r[1] is False)
        s = sum(1 for r in self.results if r[1] is None)
        return p, f, s

    def finish(self):
        p, f, s = self.counts()
        if f:
            print('\nFailed checks:')
            for name, ok, detail in self.results:
                if ok is False:
                    print(f'  {name}' + (f': {detail}' if detail else ''))
        if self.xfails:
            print(f'\n{len(self.xfails)} expected failures '
                  '(tests/known-failures; counted as skipped):')
            for name, _ in self.xfails:
                print(f'  {name}')
        line = f'{p} passed, {f} failed'
        if s:
            line += f', {s} skipped'
        print(line, flush=True)
        return 1 if f else 0

