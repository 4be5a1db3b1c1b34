# SPDX-License-Identifier: GPL-2.0
# Page-table stress, when the command line has ws.stress=SECONDS: two
# workers of /bin/ws-stress (tests/boot/stress.c) fork, exec, map, mprotect,
# unmap, mremap and fault, split and collapse huge pages for that long,
# checking their data.  With the page tables keyed (pks_tables=on, the
# default under -cpu max) every one of those writes goes through a
# window.  Checked: no workload error, nothing new in the kernel log that
# is a warning, a bug, a bad page, a KASAN report or a PKS fault, no table
# fell back to an ordinary page, and the census still finds every table
# of init_mm keyed.  Needs 10-pgtable-census.sh.

# st_pool KEY: set st_val to the value of KEY in x86/pks/pgtables, or "".
st_pool() {
	st_val=
	[ -r /sys/kernel/debug/x86/pks/pgtables ] || return 0
	while read -r key val; do
		[ "$key" = "$1" ] && st_val=$val
	done < /sys/kernel/debug/x86/pks/pgtables
}

# st_pkrs: set st_writes to the IA32_PKRS writes so far, or "".
st_pkrs() {
	st_writes=
	[ -r /sys/kernel/debug/x86/pks/pkrs_writes ] || return 0
	while read -r key val _; do
		[ "$key" = all ] && st_writes=$val
	done < /sys/kernel/debug/x86/pks/pkrs_writes
}

st_seconds=
for word in $(cat /proc/cmdline); do
	case $word in ws.stress=*) st_seconds=${word#ws.stress=} ;; esac
done

if [ -n "$st_seconds" ]; then
	thp=/sys/kernel/mm/transparent_hugepage/enabled
	[ -w $thp ] && echo madvise > $thp
	st_log_lines=$(dmesg | wc -l)
	st_pool fallback
	st_fallback=$st_val
	st_pkrs
	st_writes0=$st_writes
	/bin/ws-stress "$st_seconds" 2 > /tmp/stress.out
	st_rc=$?
	echo "ws-report: stress $st_seconds s:" $(sed 's/^ws-stress: //' /tmp/stress.out)
	ws_check stress-ran test "$st_rc" = 0
	st_pkrs
	[ -n "$st_writes" ] &&
		echo "ws-report: stress: $((st_writes - st_writes0)) IA32_PKRS writes"
	ws_check stress-log-clean sh -c "! dmesg | tail -n +$((st_log_lines + 1)) |
		grep -E 'WARNING:|BUG|Bad page|Oops|KASAN|#PF: PKS|x86/pks: (window open|soft key)|not write-protected'"
	if [ -n "$st_fallback" ]; then
		st_pool fallback
		ws_check stress-no-fallback test "$st_val" = "$st_fallback"
	fi
	if keys_early_tables && [ -r /sys/kernel/debug/pgtable_ctor/init_mm ]; then
		census_read /sys/kernel/debug/pgtable_ctor/init_mm
		ws_check stress-census-init_mm-keyed test "$c_unp" = 0
	fi
fi
