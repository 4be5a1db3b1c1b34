# SPDX-License-Identifier: GPL-2.0
# Fault injection over page-table allocation, when the command line has
# ws.failnth=1: /bin/ws-failnth (tests/boot/failnth.c) fails each
# allocation of a fork, an mremap, a populate and a THP fault, split and
# collapse, of CPA's split and collapse of a 2M region of the direct
# map, of a vmalloc() of 8 MiB (a child's fd table) and of an
# ioremap_cache() (a read of /dev/mem), in turn, through fail_page_alloc
# and failslab with fail-nth, with every allocation eligible (order 0,
# sleeping or not).  Checked: each failure either failed its operation
# with ENOMEM or EAGAIN (EFAULT for the /dev/mem read) and lost no data,
# or was absorbed; the direct map's region and DirectMap4k came back
# after each step, and so did the vmalloc and ioremap areas of
# /proc/vmallocinfo and the PAT memtypes (ws-failnth checks those);
# nothing new in the kernel log is a warning, a bug, a bad page, a KASAN
# report, a PKS fault or an OOM kill; the census finds no table of
# init_mm without the page-table key beyond the fallback tables counted
# meanwhile; and the
# PageTables counter moved as the census of init_mm did, so that no
# failure path leaked a table.
# Needs 10-pgtable-census.sh.

# fn_snapshot NAME: record the census, PageTables and the pools' fallback
# count as NAME_*.
fn_snapshot() {
	echo 1 > /proc/sys/vm/stat_refresh
	census_read /sys/kernel/debug/pgtable_ctor/init_mm
	pt=
	while read -r key val _; do
		[ "$key" = PageTables: ] && pt=$val
	done < /proc/meminfo
	fb=0
	if [ -r /sys/kernel/debug/x86/pks/pgtables ]; then
		while read -r key val; do
			[ "$key" = fallback ] && fb=$val
		done < /sys/kernel/debug/x86/pks/pgtables
	fi
	eval "${1}_pages=$c_pages ${1}_unp=${c_unp:-0} ${1}_pt=$pt ${1}_fb=$fb"
	echo "ws-report: failnth $1: census $c_pages pages," \
	     "${c_unp:-?} without the page-table key; PageTables $pt kB;" \
	     "fallback tables $fb"
}

# fn_inject DIR KNOB VALUE: set a fault-injection knob.
fn_inject() {
	[ -w "/sys/kernel/debug/$1/$2" ] && echo "$3" > "/sys/kernel/debug/$1/$2"
}

if ws_cmdline_has ws.failnth=1; then
	fi_ready=true
	for knob in failslab/ignore-gfp-wait fail_page_alloc/ignore-gfp-wait \
		    fail_page_alloc/ignore-gfp-highmem fail_page_alloc/min-order; do
		[ -w /sys/kernel/debug/$knob ] || fi_ready=false
	done
	ws_check failnth-available $fi_ready
fi
if ws_cmdline_has ws.failnth=1 && $fi_ready; then
	thp=/sys/kernel/mm/transparent_hugepage/enabled
	[ -w $thp ] && echo madvise > $thp
	fn_inject failslab ignore-gfp-wait N
	fn_inject failslab verbose 0
	fn_inject fail_page_alloc ignore-gfp-wait N
	fn_inject fail_page_alloc ignore-gfp-highmem N
	fn_inject fail_page_alloc min-order 0
	fn_inject fail_page_alloc verbose 0
	fn_log_lines=$(dmesg | wc -l)
	fn_snapshot before
	/bin/ws-failnth > /tmp/failnth.out 2> /tmp/failnth.err
	fn_rc=$?
	while read -r line; do
		echo "ws-report: ${line#ws-}"
	done < /tmp/failnth.out
	head -n 40 /tmp/failnth.err
	ws_check failnth-ran test "$fn_rc" = 0
	fn_snapshot after
	ws_check failnth-log-clean sh -c "! dmesg | tail -n +$((fn_log_lines + 1)) |
		grep -E 'WARNING:|BUG|Bad page|Oops|KASAN|#PF: PKS|x86/pks: (window open|soft key)|not write-protected|oom-kill|Out of memory'"
	ws_check failnth-census-keyed \
		test "$after_unp" -le $((after_fb - before_fb + before_unp))
	# Give or take the PGDs (two pages each with page-table isolation)
	# of two exited processes that a CPU still holds as its lazy TLB mm.
	fn_drift=$((after_pt - before_pt - (after_pages - before_pages) * 4))
	echo "ws-report: failnth: PageTables moved $((after_pt - before_pt)) kB," \
	     "the census $((after_pages - before_pages)) pages (drift $fn_drift kB)"
	ws_check failnth-accounting test "$fn_drift" -ge -16 -a "$fn_drift" -le 16
	# The KUnit suites that walk fail-nth over mem_table's stores and
	# SEV-SNP's transitions, with the knobs still set.  They ran at boot
	# (kunit.filter_glob=*_fail_nth), where nothing could arm fault
	# injection and each skipped: run them again through debugfs.  Each
	# must pass with no case skipped.
	for suite in mem_table_fail_nth x86_directmap_fail_nth; do
		dir=/sys/kernel/debug/kunit/$suite
		if [ -w "$dir/run" ]; then
			echo 1 > "$dir/run"
			sed "s/^/ws-report: $suite: /" "$dir/results"
		fi
		ws_check "failnth-kunit-$suite" sh -c "
			[ -r '$dir/results' ] &&
			grep -Eq '^ok [0-9]+ $suite\$' '$dir/results' &&
			! grep -Eq '^ *not ok|# SKIP' '$dir/results'"
	done
fi
