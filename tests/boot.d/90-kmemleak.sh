# SPDX-License-Identifier: GPL-2.0
# kmemleak, last, when the kernel has it (the "checkers" configuration of
# "tools/ws matrix"): two explicit scans after every other test of the
# boot, and the report printed, so that a table, a mem_table node or a
# pool block that lost its last reference shows in this boot's log.  An
# object younger than five seconds is not reported, so the second scan
# comes six seconds after the first.  The host also fails the boot on
# the kernel's "new suspected memory leaks" line (tools/wsboot.py).
# kmemleak turns itself off when it cannot track an object (a fail-nth
# walk fails its allocations too); its file then refuses the scans, and
# a scan that failed fails the check rather than passing with nothing
# to report.

if [ -w /sys/kernel/debug/kmemleak ]; then
	km_scanned=true
	echo scan > /sys/kernel/debug/kmemleak || km_scanned=false
	sleep 6
	echo scan > /sys/kernel/debug/kmemleak || km_scanned=false
	ws_check kmemleak-scanned $km_scanned
	km_leaks=0
	while read -r line; do
		case $line in
		"unreferenced object"*) km_leaks=$((km_leaks + 1)) ;;
		esac
		echo "ws-kmemleak: $line"
	done < /sys/kernel/debug/kmemleak
	echo "ws-report: kmemleak: $km_leaks unreferenced objects"
	ws_check kmemleak-clean test "$km_leaks" = 0
fi
