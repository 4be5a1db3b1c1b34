# SPDX-License-Identifier: GPL-2.0
# The direct map's collapse over hot-added memory, when the command line
# has ws.dmhotplug (and no debug_pagealloc).  Once this script prints
# "ws-dmhotplug: ready", the host adds two 512 MiB pc-dimms at 4 GiB and
# 4.5 GiB, one gigabyte of the direct map in two "System RAM" resources,
# and a 1 GiB pc-dimm at 5 GiB.  It removes the first at
# "ws-dmhotplug: remove 1" and the others at "ws-dmhotplug: remove 2".
#
# A region split and collapsed in the first gigabyte comes back at 2M,
# not 1G: memory hot-remove frees only whole 1G leaves
# (remove_pud_table()), so a 1G leaf over both DIMMs would map the first
# after its removal.  In the 1 GiB DIMM, one resource, the region comes
# back at 1G, and the leaf goes with the DIMM.  Driven through the
# x86_directmap suite's debugfs file; needs 20-hotplug.sh's hp_* helpers.

dm_knob=/sys/kernel/debug/x86/directmap_test

# dm_do CMD PHYS: run CMD (split, collapse, look) on the 2M region of
# PHYS; sets dm_level (1 = 4K, 2 = 2M, 3 = 1G), dm_present and dm_ret.
dm_do() {
	echo "$1 $2" > $dm_knob || return 1
	read -r _ dm_level _ dm_present _ dm_ret < $dm_knob
	echo "ws-report: dmhotplug: $1 $2: level $dm_level present $dm_present ret $dm_ret"
}

# dm_expect NAME CMD PHYS LEVEL [RET]: a present mapping at LEVEL.
dm_expect() {
	dm_do "$2" "$3"
	ws_check "dmhotplug-$1" test "$dm_level" = "$4" -a "$dm_present" = 1 \
		-a "$dm_ret" = "${5:-0}"
}

# dm_gone NAME PHYS: nothing maps PHYS any more.
dm_gone() {
	dm_do look "$2"
	ws_check "dmhotplug-$1" test "$dm_present" = 0
}

if ws_cmdline_has ws.dmhotplug; then
	ws_check dmhotplug-knob test -w $dm_knob
	hp_ram
	dm_base_ram=$nram
	echo "ws-dmhotplug: ready"
	ws_check dmhotplug-added hp_wait hp_ram nram $((dm_base_ram + 3))

	# Two DIMMs in one gigabyte: 2M at the add, and after a collapse.
	dm_expect two-dimms-at-add look 0x100000000 2
	dm_expect two-dimms-split split 0x100200000 1
	dm_expect two-dimms-collapse-2m-only collapse 0x100200000 2 1
	# One 1 GiB DIMM: 1G at the add, and after a collapse.
	dm_expect one-dimm-at-add look 0x140000000 3
	dm_expect one-dimm-split split 0x140200000 1
	dm_expect one-dimm-collapse-1g collapse 0x140200000 3 2

	echo "ws-dmhotplug: remove 1"
	ws_check dmhotplug-removed-1 hp_wait hp_ram nram $((dm_base_ram + 2))
	dm_gone removed-dimm-unmapped 0x100200000
	dm_expect other-dimm-kept look 0x120000000 2
	echo "ws-dmhotplug: remove 2"
	ws_check dmhotplug-removed-2 hp_wait hp_ram nram "$dm_base_ram"
	dm_gone other-dimm-unmapped 0x120000000
	dm_gone 1g-dimm-unmapped 0x140000000
fi
