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
nothing.  The gate therefore runs the vmlinux.o validation again itself,
with the exact command line the build recorded in .vmlinux.o.cmd (it only
reads vmlinux.o), and the W=1 gate recompiles every object the series
touches, which runs objtool on each (wsgates.w1_sparse reports those).

A warning fails the gate unless tests/build-warning-exceptions lists its
message with the reason (the base's own warnings, if any).
"""

import os
import re
import shlex

from wslib import WsError, run
from wsgates import OBJTOOL_RX, read_build_exceptions


def vmlinux_objtool_command(build_dir):
    """objtool's command line from the last link of vmlinux.o."""
    cmd_file = os.path.join(build_dir, '.vmlinux.o.cmd')
    if not os.path.exists(cmd_file):
        raise WsError(f'{cmd_file} is missing: build the kernel first')
    with open(cmd_file) as f:
        text = f.read()
    m = re.search(r'^savedcmd_vmlinux\.o := (.*)$', text, re.M)
    if not m:
        raise WsError(f'{cmd_file}: no savedcmd_vmlinux.o line')
    for part in m.group(1).split(';'):
        words = shlex.split(part.strip())
        if words and os.path.basename(words[0]) == 'objtool':
            return words
    return None


def objtool_messages(output):
    """[(object, message)] with addresses kept: they name the function."""
    return [(m.group(1), m.group(2).strip())
            for m in OBJTOOL_RX.finditer(output)]


def vmlinux_noinstr(ws, checks):
    name = 'objtool: vmlinux.o noinstr validation'
    cmd = vmlinux_objtool_command(ws.build_dir)
    if cmd is None:
        checks.add(name, False, 'the vmlinux.o link ran no objtool: is '
                   'CONFIG_DEBUG_ENTRY (NOINSTR_VALIDATION) on?')
        return
    if '--noinstr' not in cmd:
        checks.add(name, False, f'objtool ran without --noinstr: {cmd}')
        return
    r = run(cmd, cwd=ws.build_dir, check=False, capture=True)
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
