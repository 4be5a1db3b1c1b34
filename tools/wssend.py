# SPDX-License-Identifier: GPL-2.0
"""The sending gate: b4 and git send-email send the series as README says.

A sending recipe that works only on its author's machine, a cover letter
that b4 swapped for its own template or rewrote, or a patch that misses
an architecture's list is seen first by the lists.  So this gate runs
README's two recipes as written, with no network, and checks what they
would send.

b4 0.12, on a fresh clone of the work tree (work/send/linux): "b4 prep
--enroll ws/base", our cover letter (the branch description, which a
clone does not carry) put in with "b4 prep --edit-cover" from a file,
"b4 prep --auto-to-cc", then "b4 send -o".  b4's default cover strategy,
"commit", is the one that works: with "branch-description", enroll wants
a base *branch* (given the tag it picks another branch that holds it,
often the series itself: "Could not run rev-list <tip>..HEAD"), and b4
0.12 then writes the fork point's parent as base-commit, "ws/base~1".
Checks on the mails: one per patch plus the cover; the cover's subject
and body are the branch description, verbatim; base-commit is ws/base;
every mail is from the repository identity and reaches its lists; the
patch mails "git am" onto ws/base into the work tree's tree.

git send-email: README's command line, run on patches/ with --dry-run
(and --smtp-server=/bin/true, so nothing could be sent): one mail per
patch plus the cover, from the repository identity, reaching its lists.

The lists a mail must reach are found apart from b4: linux-mm and
linux-kernel on every mail, and for a patch that touches arch/<A>/ the
bare addresses (the lists, and x86@kernel.org) that
scripts/get_maintainer.pl names for arch/<A>/ in the base's MAINTAINERS.
"""

import difflib
import email
import email.policy
import email.utils
import glob
import os
import re
import shutil

import wslib
from wslib import BASE_REF, ROOT, WsError, banner, git, info, run

# Debian packages, by the command or file that shows each is present.
# git send-email needs Mail::Address, which git-email only recommends.
PACKAGES = [
    ('b4', 'b4'),
    ('git-email', '/usr/lib/git-core/git-send-email'),
    ('libmailtools-perl', '/usr/share/perl5/Mail/Address.pm'),
]

SERIES_LISTS = ('linux-mm@kvack.org', 'linux-kernel@vger.kernel.org')

# The directories get_maintainer.pl's top_of_kernel_tree() wants to see
# (with scripts/, which the sparse checkout holds whole).
TOP_DIRS = ('Documentation', 'arch', 'include', 'drivers', 'fs', 'init',
            'ipc', 'kernel', 'lib')

# b4's own --auto-to-cc commands (ez.py), set in the scratch clone so that
# a user's global b4 configuration cannot change what is tested.
GET_MAINTAINER = ('scripts/get_maintainer.pl --nogit --nogit-fallback '
                  '--nogit-chief-penguins --norolestats')

# README's git send-email command; run in a tree with the series applied
# (--cc-cmd runs its scripts/get_maintainer.pl), with P=this repository.
SEND_EMAIL = (
    'git send-email --dry-run --to=linux-mm@kvack.org '
    '--cc=linux-kernel@vger.kernel.org '
    "--cc-cmd='scripts/get_maintainer.pl --nogit --nogit-fallback "
    "--norolestats{mpath}' "
    '"$P/patches/0000-cover-letter.patch" '
    '$(awk -v d="$P/patches/" \'{sub(/#.*/, "")} NF {print d $1}\' '
    '"$P/series")')

SUBJECT_RX = re.compile(r'^\[[^\]]*?(\d+)/(\d+)\]\s*')
DIFF_RX = re.compile(r'^diff --git a/(\S+) b/(\S+)$', re.M)
# b4's LoreMessage.find_trailers(): a line it takes for a trailer.
TRAILER_RX = re.compile(r'^\s*\w\S+:\s+\S.*', re.M)


# ---------------------------------------------------------------------------
# The scratch clone and README's b4 recipe

def sparse_dirs(tree):
    """What b4 and get_maintainer.pl read: see scratch_clone()."""
    dirs = {'scripts'}
    for top in TOP_DIRS:
        sub = git(tree, 'ls-tree', '-d', '--name-only', f'HEAD:{top}')
        dirs.add(f'{top}/{sub.split()[0]}' if sub else top)
    changed = git(tree, 'diff', '--name-only', '--no-renames',
                  f'{BASE_REF}..HEAD').splitlines()
    return sorted(dirs | {os.path.dirname(p) for p in changed} - {''})


def scratch_clone(ws, send_dir):
    """A fresh clone of the work tree, configured as a user's would be.

    Its checkout is sparse: the directories of the files the series
    touches (b4 cherry-picks them, git am patches them), scripts/, and
    a little of each top-level directory that get_maintainer.pl looks
    for.  The mails come out the same as from a full clone (compared
    once, 2026-11-29), in 2 seconds instead of writing 1.4 GB.
    """
    shutil.rmtree(send_dir, ignore_errors=True)
    os.makedirs(send_dir)
    tree = os.path.join(send_dir, 'linux')
    branch = git(ws.tree, 'symbolic-ref', '--short', 'HEAD')
    run(['git', 'clone', '-q', '--no-checkout', '--branch', branch, ws.tree,
         tree], capture=True)
    git(tree, 'sparse-checkout', 'set', '--cone', *sparse_dirs(tree))
    git(tree, 'checkout', '-q', branch)
    name, mail = wslib.identity()
    cover = os.path.join(send_dir, 'cover.txt')
    with open(cover, 'w') as f:
        f.write(wslib.branch_description(ws.tree) + '\n')
    for key, val in (('user.name', name), ('user.email', mail),
                     # b4 send -o never runs it; a command, not a host,
                     # so that b4 uses no web endpoint either.
                     ('sendemail.smtpserver', '/bin/false'),
                     ('b4.prep-cover-strategy', 'commit'),
                     ('core.editor', f'cp {cover}')):
        git(tree, 'config', key, val)
    return tree


def snippet_entries():
    with open(os.path.join(ROOT, 'MAINTAINERS-snippet')) as f:
        text = f.read()
    return text, [e.strip() for e in text.split('\n\n') if e.strip()]


def maintainers_path(tree, send_dir):
    """'' when the series carries MAINTAINERS-snippet, else --mpath FILE.

    b4 prep and b4 send refuse a tree with uncommitted changes, so an
    appended snippet would stop them; get_maintainer.pl reads a
    MAINTAINERS file named by --mpath instead.
    """
    text, entries = snippet_entries()
    head = git(tree, 'show', 'HEAD:MAINTAINERS')
    if all(e in head for e in entries):
        info('the series carries MAINTAINERS-snippet')
        return ''
    path = os.path.join(send_dir, 'MAINTAINERS')
    with open(path, 'w') as f:
        f.write(head + '\n\n' + text)
    info(f'MAINTAINERS-snippet appended in {path} (get_maintainer.pl '
         '--mpath)')
    return f' --mpath {path}'


def b4_recipe(tree, outdir, mpath):
    """README's b4 commands; return the failing one's output, or ''."""
    git(tree, 'config', 'b4.send-auto-to-cmd', GET_MAINTAINER + mpath +
        ' --nol')
    git(tree, 'config', 'b4.send-auto-cc-cmd', GET_MAINTAINER + mpath +
        ' --nom')
    steps = [['prep', '--enroll', BASE_REF],
             ['prep', '--edit-cover'],
             ['prep', '--auto-to-cc'],
             # No patatt key here: a user with one drops --no-sign.
             ['send', '-o', outdir, '--no-sign']]
    for args in steps:
        cmd = ['b4', '--offline-mode'] + args
        r = run(['nice', '-n', '10'] + cmd, cwd=tree, capture=True,
                check=False, input='')
        if r.returncode != 0:
            tail = '\n'.join(r.stdout.strip().splitlines()[-15:])
            return f'"{" ".join(cmd)}" failed ({r.returncode}):\n{tail}'
    return ''


# ---------------------------------------------------------------------------
# Mails

class Mail:
    """One mail: its number in the series, sender, recipients, body."""

    def __init__(self, msg, body=''):
        self.subject = re.sub(r'\s*\n\s*', ' ', str(msg['Subject'] or ''))
        m = SUBJECT_RX.match(self.subject)
        self.num = int(m.group(1)) if m else None
        self.total = int(m.group(2)) if m else None
        self.sender = email.utils.parseaddr(str(msg['From'] or ''))
        self.to = addresses(msg, 'To')
        self.cc = addresses(msg, 'Cc')
        self.body = body

    def label(self):
        num = '----' if self.num is None else f'{self.num:04d}'
        return f'{num} {self.subject[:60]}'


def addresses(msg, header):
    return {a.lower() for _, a in
            email.utils.getaddresses([str(v) for v in msg.get_all(header,
                                                                  [])])}


def read_b4_mails(outdir):
    mails = []
    for path in sorted(glob.glob(os.path.join(outdir, '*.eml'))):
        with open(path, 'rb') as f:
            msg = email.message_from_binary_file(f,
                                                 policy=email.policy.default)
        mails.append(Mail(msg, msg.get_content()))
    return mails


def read_dry_run(out):
    """The mails git send-email --dry-run logged, headers only."""
    mails = []
    for block in re.findall(r'^Dry-OK\. Log says:\n(.*?)^Result: ', out,
                            re.M | re.S):
        head = re.sub(r'^(Sendmail|Server): .*\n', '', block)
        mails.append(Mail(email.message_from_string(
            head, policy=email.policy.default)))
    return mails


# ---------------------------------------------------------------------------
# The lists each mail must reach

def touched_arches(paths):
    return {m.group(1) for m in (re.match(r'arch/([^/]+)/', p)
                                 for p in paths) if m}


def patch_paths(text):
    return {p for pair in DIFF_RX.findall(text) for p in pair}


class ArchLists:
    """The bare addresses (lists, x86@kernel.org) of each arch/<A>/.

    Asked of scripts/get_maintainer.pl with the base's MAINTAINERS, so
    that a series that breaks an architecture's entry is caught.
    """

    def __init__(self, tree, send_dir):
        self.tree = tree
        self.base = os.path.join(send_dir, 'MAINTAINERS.base')
        with open(self.base, 'w') as f:
            f.write(git(tree, 'show', f'{BASE_REF}:MAINTAINERS') + '\n')
        self.cache = {}

    def of(self, arch):
        """Fed a patch to a file of arch/<A>/ that no entry names itself,
        which needs no checkout of arch/<A>/."""
        if arch not in self.cache:
            probe = f'arch/{arch}/ptguard-send-probe'
            r = run(['perl', 'scripts/get_maintainer.pl', '--mpath',
                     self.base, '--nogit', '--nogit-fallback',
                     '--norolestats', '--nor', '--nokeywords'],
                    cwd=self.tree, capture=True,
                    input=f'--- a/{probe}\n+++ b/{probe}\n')
            self.cache[arch] = {a.lower() for n, a in email.utils.getaddresses(
                r.stdout.splitlines()) if a and not n} - set(SERIES_LISTS)
            print(f'  arch/{arch}/: '
                  f'{" ".join(sorted(self.cache[arch])) or "(no list)"}')
        return self.cache[arch]

    def expected(self, patch_texts):
        """{mail number: addresses it must reach}; 0 is the cover."""
        want = {0: set(SERIES_LISTS)}
        for num, text in patch_texts.items():
            want[num] = set(SERIES_LISTS)
            for arch in touched_arches(patch_paths(text)):
                want[num] |= self.of(arch)
        return want


def check_recipients(checks, name, mails, want):
    """Print where each expected address is; fail on any that is not."""
    missing = []
    for m in mails:
        where = {'To': [], 'Cc': [], 'MISSING': []}
        for addr in sorted(want.get(m.num, ())):
            key = 'To' if addr in m.to else 'Cc' if addr in m.cc \
                else 'MISSING'
            where[key].append(addr)
        missing += [f'{m.label()}: {a}' for a in where['MISSING']]
        print(f'  {m.label()[:40]}: ' + '; '.join(
            f'{k} {" ".join(v)}' for k, v in where.items() if v))
    for line in missing:
        print(f'  MISSING {line}')
    checks.add(name, mails and not missing,
               f'{len(missing)} expected addresses missing'
               + (': ' + '; '.join(missing[:5]) if missing else '')
               + f' ({len(mails)} mails)')


def check_count(checks, name, mails, npatches):
    nums = sorted(m.num for m in mails if m.num is not None)
    ok = len(mails) == npatches + 1 and nums == list(range(npatches + 1)) \
        and all(m.total == npatches for m in mails)
    checks.add(name, ok, f'{len(mails)} mails for {npatches} patches'
               + ('' if ok else f'; numbers {nums[:40]}'))


def check_identity(checks, name, mails):
    """Every mail from the identity, and no in-body From: of another."""
    who = wslib.identity()
    bad = [m.label() for m in mails if m.sender != who]
    for m in mails:
        first = m.body.lstrip('\n').split('\n', 1)[0]
        if first.startswith('From: ') and \
                email.utils.parseaddr(first[6:]) != who:
            bad.append(f'{m.label()} (in-body {first})')
    checks.add(name, mails and not bad,
               f'{who[0]} <{who[1]}>'
               + (f'; not from it: {"; ".join(bad[:5])}' if bad else ''))


# ---------------------------------------------------------------------------
# Checks on b4's mails

def check_cover(checks, ws, cover):
    """The cover is the branch description: subject and body, verbatim."""
    desc = wslib.branch_description(ws.tree)
    name = 'b4 send -o: the cover letter is the branch description, verbatim'
    if not desc:
        checks.add(name, False, f'{ws.tree} has no branch description')
        return
    subject, _, body = desc.partition('\n')
    got_subject = SUBJECT_RX.sub('', cover.subject)
    got_body = cover.body.split('\n---\n', 1)[0].strip()
    if 'EDITME' in got_body:
        checks.add(name, False, "b4's EDITME template, not ours")
        return
    diff = [ln for ln in difflib.unified_diff(
        body.strip().splitlines(), got_body.splitlines(), lineterm='', n=0)
        if ln[:1] in '+-' and ln[:3] not in ('+++', '---')]
    for line in diff:
        print(f'  cover (- ours, + sent): {line}')
    same_subject = got_subject == subject.strip()
    detail = ('subject same' if same_subject
              else f'subject differs: {got_subject!r}') + '; '
    detail += f'{len(diff)} body lines differ' if diff else 'body same'
    last = body.strip().split('\n\n')[-1]
    if diff and TRAILER_RX.search(last):
        detail += ('; b4 reads a last paragraph of "Word: text" lines as '
                   'trailers and moves them: reword "'
                   + TRAILER_RX.search(last).group(0) + '"')
    checks.add(name, same_subject and not diff, detail)


def check_base_commit(checks, tree, cover):
    m = re.search(r'^base-commit: (\S+)$', cover.body, re.M)
    base = git(tree, 'rev-parse', BASE_REF)
    got = m.group(1) if m else '(none)'
    checks.add(f'b4 send -o: base-commit is {BASE_REF}', got == base,
               f'base-commit: {got}')


def check_am(checks, ws, tree, outdir, mails):
    """The patch mails, git am'd onto ws/base, give the work tree."""
    name = (f'b4 send -o: the patch mails git am onto {BASE_REF} into the '
            'work tree, authored by the repository identity')
    paths = sorted(glob.glob(os.path.join(outdir, '*.eml')))
    patches = [p for p, m in zip(paths, mails) if m.num]
    git(tree, 'checkout', '-q', '-B', 'ws-am-check', BASE_REF)
    r = run(['git', '-C', tree, 'am', '-q'] + patches, check=False,
            capture=True)
    if r.returncode != 0:
        git(tree, 'am', '--abort', check=False)
        checks.add(name, False, 'git am failed:\n' + r.stdout[-1500:])
        return
    got = git(tree, 'rev-parse', 'HEAD^{tree}')
    want = git(ws.tree, 'rev-parse', 'HEAD^{tree}')
    who = '%s <%s>' % wslib.identity()
    authors = set(git(tree, 'log', '--format=%an <%ae>',
                      f'{BASE_REF}..HEAD').splitlines())
    checks.add(name, got == want and authors == {who},
               f'{len(patches)} mails applied; tree {got[:12]}, work tree '
               f'{want[:12]}; authors {sorted(authors)}')


def b4_gate(ws, checks, tree, send_dir, mpath, lists):
    outdir = os.path.join(send_dir, 'b4-out')
    fail = b4_recipe(tree, outdir, mpath)
    checks.add('b4: README recipe on a fresh clone (prep --enroll ws/base, '
               '--edit-cover, --auto-to-cc; send -o)', not fail,
               fail or f'mails in {outdir}')
    if fail:
        return
    mails = read_b4_mails(outdir)
    n = ws.commits_since_base()
    check_count(checks, 'b4 send -o: one mail per patch and a cover letter',
                mails, n)
    cover = next((m for m in mails if m.num == 0), None)
    if cover is None:
        checks.add('b4 send -o: the cover letter is the branch description, '
                   'verbatim', False, 'no cover letter among the mails')
    else:
        check_cover(checks, ws, cover)
        check_base_commit(checks, tree, cover)
    check_identity(checks, 'b4 send -o: every mail is from the repository '
                   'identity', mails)
    want = lists.expected({m.num: m.body for m in mails if m.num})
    check_recipients(checks, 'b4 send -o: every mail reaches linux-mm, '
                     'linux-kernel and its architectures\' lists', mails,
                     want)
    check_am(checks, ws, tree, outdir, mails)


# ---------------------------------------------------------------------------
# git send-email

def send_email_gate(checks, tree, mpath, lists):
    """README's git send-email command, dry run, on patches/."""
    plist = wslib.series_patches()
    texts = {}
    for i, p in enumerate(plist, 1):
        with open(p, errors='replace') as f:
            texts[i] = f.read()
    cmd = SEND_EMAIL.replace('{mpath}', mpath).replace(
        'git send-email ', 'git send-email --confirm=never '
        '--smtp-server=/bin/true ', 1)
    r = run(['nice', '-n', '10', 'bash', '-c', cmd], cwd=tree, capture=True,
            check=False, env={'P': ROOT}, input='')
    checks.add('git send-email --dry-run: README command runs',
               r.returncode == 0, r.stdout[-1500:] if r.returncode else
               f'P={ROOT}, in {tree}')
    if r.returncode != 0:
        return
    mails = read_dry_run(r.stdout)
    check_count(checks, 'git send-email --dry-run: one mail per patch and '
                'the cover letter', mails, len(plist))
    check_identity(checks, 'git send-email --dry-run: every mail is from the '
                   'repository identity', mails)
    check_recipients(checks, 'git send-email --dry-run: every mail reaches '
                     'linux-mm, linux-kernel and its architectures\' lists',
                     mails, lists.expected(texts))


README_B4 = ['b4 prep --enroll ws/base',
             'EDITOR="cp $P/work/cover.txt" b4 prep --edit-cover',
             'b4 prep --auto-to-cc', 'b4 send -o $P/work/outbox']


def readme_shows_recipes(checks):
    """The commands this gate runs are the README's, as a user reads them:
    continuation lines joined, runs of blanks made one."""
    with open(os.path.join(ROOT, 'README')) as f:
        text = re.sub(r'\\\n\s*', '', f.read())
    text = re.sub(r'[ \t]+', ' ', text)
    send_email = SEND_EMAIL.replace('{mpath}', '')
    want = README_B4 + [re.sub(r'\s+', ' ', send_email)]
    missing = [w for w in want if w not in text]
    checks.add('sending: README shows the recipes this gate runs',
               not missing, f'not in README: {missing}' if missing else '')


def run_gate(ws, checks):
    if not ws.tree_exists():
        raise WsError(f'no work tree at {ws.tree}')
    wslib.setup_packages(PACKAGES)
    if ws.commits_since_base() == 0:
        checks.skip('sending: b4 and git send-email',
                    'the series is empty: nothing to send')
        return
    readme_shows_recipes(checks)
    send_dir = os.path.abspath(os.path.join(ws.work, 'send'))
    with banner(f'gate: sending, a fresh clone in {send_dir}'):
        tree = scratch_clone(ws, send_dir)
        mpath = maintainers_path(tree, send_dir)
        lists = ArchLists(tree, send_dir)
    with banner('gate: sending with git send-email --dry-run'):
        send_email_gate(checks, tree, mpath, lists)
    with banner('gate: sending with b4'):
        b4_gate(ws, checks, tree, send_dir, mpath, lists)
