# SPDX-License-Identifier: GPL-2.0
"""The objtool gate: noinstr validation of vmlinux.o, and every object the
series touches.

kernel-config/debug.config turns on CONFIG_DEBUG_ENTRY, which makes
CONFIG_NOINSTR_VALIDATION, and the function tracer and tracepoints, as a
distribution kernel has them.  objtool then checks at the vmlinux.o link
that code in .noinstr.text calls nothing outside it (a traced helper, an
instrumented one) unless it is inside instrumentation_begin()/end().

The build prints objtool's warnings only when it relinks vmlinux.o or
recompiles an object, so an incremental build that did neither would show
nothing.  The gate therefore links vmlinux.o again into a scratch file and
runs objtool on it, both with the exact command lines the build recorded
in .vmlinux.o.cmd, and the W=1 gate recompiles every object the series
touches, which runs objtool on each (wsgates.w1_sparse reports those).

A warning fails the gate unless tests/build-warning-exceptions lists its
message with the reason (the base's own warnings, if any).
"""

import os
import re
import shlex

from wslib import WsError, run
from wsgates import OBJTOOL_RX, read_build_exceptions


def vmlinux_link_commands(build_dir):
    """(ld words, objtool words or None) of the last vmlinux.o link."""
    cmd_file = os.path.join(build_dir, '.vmlinux.o.cmd')
    if not os.path.exists(cmd_file):
        raise WsError(f'{cmd_file} is missing: build the kernel first')
    with open(cmd_file) as f:
        text = f.read()
    m = re.search(r'^savedcmd_vmlinux\.o := (.*)$', text, re.M)
    if not m:
        raise WsError(f'{cmd_file}: no savedcmd_vmlinux.o line')
    ld, objtool = None, None
    for part in m.group(1).split(';'):
        words = shlex.split(part.strip())
        if words and '-r' in words and ld is None:
            ld = words
        elif words and os.path.basename(words[0]) == 'objtool':
            objtool = words
    if ld is None:
        raise WsError(f'{cmd_file}: no "ld -r" in the vmlinux.o command')
    return ld, objtool


def relink_and_check(build_dir, ld, objtool):
    """Link vmlinux.o again into a scratch file and run objtool on it as
    the build did.  objtool also writes (ORC, IBT seal, static calls), so
    it cannot run twice on the build's own vmlinux.o."""
    scratch = 'ws-objtool-vmlinux.o'
    out = ld[:]
    out[out.index('-o') + 1] = scratch
    try:
        run(out, cwd=build_dir, capture=True)
        return run(objtool[:-1] + [scratch], cwd=build_dir, check=False,
                   capture=True)
    finally:
        path = os.path.join(build_dir, scratch)
        if os.path.exists(path):
            os.unlink(path)


def objtool_messages(output):
    """[(object, message)] with addresses kept: they name the function."""
    return [(m.group(1), m.group(2).strip())
            for m in OBJTOOL_RX.finditer(output)]


def vmlinux_noinstr(ws, checks):
    name = 'objtool: vmlinux.o noinstr validation'
    ld, cmd = vmlinux_link_commands(ws.build_dir)
    if cmd is None:
        checks.add(name, False, 'the vmlinux.o link ran no objtool: is '
                   'CONFIG_DEBUG_ENTRY (NOINSTR_VALIDATION) on?')
        return
    if '--noinstr' not in cmd:
        checks.add(name, False, f'objtool ran without --noinstr: {cmd}')
        return
    r = relink_and_check(ws.build_dir, ld, cmd)
    allowed = read_build_exceptions()
    found = objtool_messages(r.stdout)
    fresh = [(o, msg) for o, msg in found if (o, msg) not in allowed]
    for o, msg in found:
        if (o, msg) in allowed:
            print(f'  accepted (tests/build-warning-exceptions): {o}: {msg}')
    for o, msg in fresh:
        print(f'  {o}: warning: objtool: {msg}')
    ok = r.returncode == 0 and not fresh
    detail = f'{len(fresh)} warnings ({len(found) - len(fresh)} accepted)'
    if r.returncode:
        detail += f'; objtool exited {r.returncode}:\n' + r.stdout[-2000:]
    checks.add(name, ok, detail)


def run_gate(ws, checks):
    vmlinux_noinstr(ws, checks)
