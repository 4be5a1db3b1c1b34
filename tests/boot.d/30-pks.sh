# SPDX-License-Identifier: GPL-2.0
# Protection Keys for Supervisor pages.  On a CPU that has them (-cpu max)
# and without "nopks", PKS is enabled, and nothing in the log is a PKS
# warning: no window left open on a return to user mode, no soft-key
# fault, no PKS oops line.  The counts of IA32_PKRS writes go in the
# report.
pks_dir=/sys/kernel/debug/x86/pks
if [ -d $pks_dir ]; then
	pks_state=$(dmesg | grep -o 'x86/pks: .*' | head -n 1)
	echo "ws-report: pks: ${pks_state#x86/pks: }"
	if ! ws_cmdline_has nopks; then
		ws_check pks-enabled grep -qw pks /proc/cpuinfo
		ws_check pks-pkrs-counted test -r $pks_dir/pkrs_writes
		[ -r $pks_dir/pkrs_writes ] &&
			echo "ws-report: pks IA32_PKRS writes, elided: $(grep '^all' $pks_dir/pkrs_writes | tr -s ' ' | cut -d' ' -f2-)"
	fi
	ws_check pks-log-clean sh -c \
		"! dmesg | grep -E 'x86/pks: (window open|soft key)|#PF: PKS'"
	if [ -r $pks_dir/pgtables ]; then
		echo "ws-report: pks page tables: $(grep -E '^(mode|blocks|keyed_tables|fallback|early_keyed) ' $pks_dir/pgtables | tr -s ' ' | tr '\n' ' ')"
	fi
fi
# The direct map's page sizes, in KiB, for the cost of keying page tables.
echo "ws-report: direct map: $(grep '^DirectMap' /proc/meminfo | tr -s ' ' | tr '\n' ' ')"

