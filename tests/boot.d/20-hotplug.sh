# SPDX-License-Identifier: GPL-2.0
# Memory hotplug, when the command line has ws.hotplug=SIZE_MB.  The host
# hot-adds a pc-dimm of SIZE_MB over QMP once this script prints
# "ws-hotplug: ready", and removes it once it prints "ws-hotplug: offlined".
# The boot uses debug_pagealloc=on, so that the direct map is 4K and the
# new memory needs PTE tables of its own.  Checked at each step: no table
# escaped its constructor, the new memory's tables were counted, and the
# PageTables counter, less the user tables, moved as the census of
# init_mm did (no accounting leak, on the way in or out; hp_accounting()
# says how closely), and, where the kernel keys its page tables
# (pks_tables=), every table of init_mm still has the key: the new
# memory's direct-map and vmemmap tables come from the keyed pools.
# Needs 10-pgtable-census.sh.

# hp_snapshot NAME: record the census, PageTables and the user page
# tables of the live processes as NAME_*.
hp_snapshot() {
	echo 1 > /proc/sys/vm/stat_refresh
	census_read /sys/kernel/debug/pgtable_ctor/init_mm
	pt=
	while read -r key val _; do
		[ "$key" = PageTables: ] && pt=$val
	done < /proc/meminfo
	eval "${1}_pte=$c_pte ${1}_pmd=$c_pmd ${1}_pages=$c_pages"
	hp_user_tables
	eval "${1}_unc=$c_unc ${1}_unp=$c_unp ${1}_pt=$((pt - u_pt))"
	echo "ws-report: hotplug $1: census $c_pte PTE, $c_pmd PMD tables," \
	     "$c_pages pages, $c_unc unconstructed," \
	     "${c_unp:-?} without the page-table key; PageTables $pt kB," \
	     "$u_pt kB of them user tables (VmPTE:$u_list)"
	hp_pool_report "$1"
}

# hp_user_tables: set u_pt to the VmPTE of every live process summed, in
# kB, and u_list to NAME/VmPTE of each.  Read with builtins only: a
# process started here would be one more to count.
hp_user_tables() {
	u_pt=0 u_list=
	for st in /proc/[0-9]*/status; do
		u_name=
		while read -r key val _; do
			case $key in
			Name:) u_name=$val ;;
			VmPTE:) u_pt=$((u_pt + val)) u_list="$u_list $u_name/$val" ;;
			esac
		done 2>/dev/null < "$st"
	done
}

# hp_pool_report NAME: where the kernel keys its page tables, report the
# pools at snapshot NAME: their blocks, the blocks added so far, and the
# tables that fell back to ordinary pages.
hp_pool_report() {
	[ -r /sys/kernel/debug/x86/pks/pgtables ] || return 0
	while read -r key val; do
		case $key in
		blocks) p_blocks=$val ;;
		refills) p_refills=$val ;;
		fallback) p_fallback=$val ;;
		esac
	done < /sys/kernel/debug/x86/pks/pgtables
	echo "ws-report: hotplug $1: page-table pools $p_blocks blocks," \
	     "$p_refills refills, $p_fallback fallback tables"
}

# hp_keyed NAME: with pks_tables=on or soft, no table of init_mm lacks
# the page-table key at snapshot NAME.
hp_keyed() {
	keys_early_tables || return 0
	eval "unp=\$${1}_unp"
	ws_check "hotplug-$1-keyed$hp_sfx" test "$unp" = 0
}

# hp_blocks: set nblocks to the number of memory blocks.
hp_blocks() {
	set -- /sys/devices/system/memory/memory*
	nblocks=$#
}

# hp_ram: set nram to the number of "System RAM" ranges in /proc/iomem.
# Hot-remove releases the range after it has freed the direct map's
# tables, while the memory blocks go away before: the range is the sign
# that the removal is complete.
hp_ram() {
	nram=0
	while read -r line; do
		case $line in *"System RAM"*) nram=$((nram + 1)) ;; esac
	done < /proc/iomem
}

# hp_wait FUNC VAR WANT: wait up to 120 s for FUNC to set VAR to WANT.
hp_wait() {
	i=0
	$1
	while eval "[ \"\$$2\" != $3 ]" && [ $i -lt 240 ]; do
		sleep 0.5
		i=$((i + 1))
		$1
	done
	eval "[ \"\$$2\" = $3 ]"
}

# hp_list: set blocks to the names of the memory blocks.
hp_list() {
	blocks=
	for b in /sys/devices/system/memory/memory*; do
		blocks="$blocks ${b##*/}"
	done
}

# hp_set_state STATE: write STATE to each hot-added block; all must take it.
hp_set_state() {
	hp_ok=true
	for b in $hp_new; do
		echo "$1" > "/sys/devices/system/memory/$b/state" || hp_ok=false
	done
	$hp_ok
}

# hp_slack_kb: how far PageTables, less the live processes' user tables,
# may stray from the census of init_mm between two snapshots.  VmPTE
# leaves out a process's PGD (and P4D), and the PGD of an exited process
# (each "sleep" of hp_wait(), each command substitution) is freed only
# when no CPU holds its mm as the lazy TLB mm any more, which is up to
# the scheduler: up to one per CPU at each snapshot.  Runs on two CPUs
# have seen -8 to +8 kB between consecutive snapshots, and once (CI, stop
# 36) +12 kB between the first and the last, cause not pinned down; the
# slack is four pages.  A missing constructor or destructor for the new
# memory's tables would be hundreds of pages (the 512 PTE tables of 1 GiB
# at 4K, the 64 that onlining it adds); a single missed table is the
# census's "unconstructed" check to catch, not this one.
hp_slack_kb=16

# hp_accounting A B: PageTables, less the user tables, moved from A to B
# as the census of init_mm did, within hp_slack_kb.
hp_accounting() {
	eval "dpt=\$((${2}_pt - ${1}_pt)) dpages=\$((${2}_pages - ${1}_pages))"
	drift=$((dpt - dpages * 4))
	echo "ws-report: hotplug $1->$2: PageTables less user tables $dpt kB," \
	     "census $dpages pages (drift $drift kB)"
	ws_check "hotplug-accounting-$1-$2$hp_sfx" \
		test "$drift" -ge -$hp_slack_kb -a "$drift" -le $hp_slack_kb
}

# hp_cycle: add, online, offline and remove the pc-dimm once, checked
# at each step.  Check names end in $hp_sfx (empty on the first cycle).
# With debug_pagealloc=on the direct map is 4K and the new memory needs
# PTE tables of its own; without it the direct map maps it with large
# pages, and only the vmemmap's and the upper levels' tables are new.
hp_cycle() {
	hp_blocks
	hp_base_blocks=$nblocks
	hp_ram
	hp_base_ram=$nram
	hp_list
	hp_base_list="$blocks "
	hp_snapshot before
	echo "ws-hotplug: ready"

	ws_check "hotplug-added$hp_sfx" \
		hp_wait hp_blocks nblocks $((hp_base_blocks + hp_new_blocks))
	hp_snapshot added
	hp_list
	hp_new=
	for b in $blocks; do
		case "$hp_base_list" in *" $b "*) ;; *) hp_new="$hp_new $b" ;; esac
	done
	echo "ws-report: hotplug: new memory blocks:$hp_new"
	ws_check "hotplug-added-constructed$hp_sfx" test "$added_unc" = 0
	hp_keyed added
	$hp_4k && ws_check "hotplug-added-tables$hp_sfx" \
		test $((added_pte - before_pte)) -ge "$hp_new_ptes"
	hp_accounting before added

	ws_check "hotplug-online$hp_sfx" hp_set_state online_movable
	hp_snapshot online
	ws_check "hotplug-online-constructed$hp_sfx" test "$online_unc" = 0
	hp_accounting added online
	ws_check "hotplug-offline$hp_sfx" hp_set_state offline
	echo "ws-hotplug: offlined"

	ws_check "hotplug-removed$hp_sfx" hp_wait hp_ram nram "$hp_base_ram"
	hp_blocks
	ws_check "hotplug-removed-blocks$hp_sfx" \
		test "$nblocks" = "$hp_base_blocks"
	hp_snapshot removed
	ws_check "hotplug-removed-constructed$hp_sfx" test "$removed_unc" = 0
	hp_keyed removed
	$hp_4k && ws_check "hotplug-removed-tables$hp_sfx" \
		test $((online_pte - removed_pte)) -ge "$hp_new_ptes"
	hp_accounting online removed
}

# hp_steady: after the last cycle, PageTables (less the user tables) and
# the census of init_mm are where the first cycle left them, within the
# slack of hp_accounting() and two census pages: no cycle leaked a table
# or its accounting.  Over the 20 cycles of the matrix's hotplug runs, a
# leak of one page a cycle is 76 kB.
# The first cycle may keep an upper-level table that covers the slot.
hp_steady() {
	hp_sfx=
	hp_accounting start removed
	grow_pt=$((removed_pt - first_pt))
	grow_pages=$((removed_pages - first_pages))
	echo "ws-report: hotplug cycles 2-$hp_cycles: PageTables" \
	     "$grow_pt kB, census $grow_pages pages;" \
	     "over all: PageTables $((removed_pt - start_pt)) kB"
	ws_check hotplug-cycles-steady \
		test "$grow_pt" -ge -$hp_slack_kb -a "$grow_pt" -le $hp_slack_kb -a \
		     "$grow_pages" -ge -2 -a "$grow_pages" -le 2
}

hp_size_mb=
hp_cycles=1
for word in $(cat /proc/cmdline); do
	case $word in
	ws.hotplug=*) hp_size_mb=${word#ws.hotplug=} ;;
	ws.hotplug_cycles=*) hp_cycles=${word#ws.hotplug_cycles=} ;;
	esac
done

if [ -n "$hp_size_mb" ]; then
	read -r bs < /sys/devices/system/memory/block_size_bytes
	hp_new_blocks=$((hp_size_mb * 1024 * 1024 / 0x$bs))
	hp_new_ptes=$((hp_size_mb / 2))
	hp_4k=false
	ws_cmdline_has debug_pagealloc=on && hp_4k=true
	echo "ws-report: hotplug: $hp_cycles cycle(s) of ${hp_size_mb} MiB," \
	     "4K direct map: $hp_4k"
	hp_snapshot start
	hp_sfx=
	k=1
	while [ $k -le "$hp_cycles" ]; do
		[ $k -gt 1 ] && hp_sfx=-c$k
		hp_cycle
		[ $k = 1 ] && first_pt=$removed_pt first_pages=$removed_pages
		k=$((k + 1))
	done
	[ "$hp_cycles" -gt 1 ] && hp_steady
fi
