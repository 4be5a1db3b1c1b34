# SPDX-License-Identifier: GPL-2.0
# The page-table census (CONFIG_DEBUG_PGTABLE_CTOR): on every boot, every
# table of init_mm, of this process and, under EFI, of efi_mm passed its
# constructor.  "ws.efi" on the command line says the boot is under OVMF
# and efi_mm must be there; "pti=on" says the census must have walked the
# user copy of the PGD.

# census_read FILE: set c_pte, c_pmd, c_pages, c_unc, c_unp (tables
# without the page-table key, with pks_tables=) and c_walk (the walk's
# memory in KiB) from a census file,
# with shell builtins only (a fork would add its own page tables).
census_read() {
	c_pte= c_pmd= c_pages= c_unc= c_unp= c_walk=
	while read -r a b c _; do
		case $a in
		pte) c_pte=$b ;;
		pmd) c_pmd=$b ;;
		constructed) c_pages=$c ;;
		unconstructed:) c_unc=$b ;;
		unprotected:) c_unp=$b ;;
		walk) c_walk=$c ;;
		esac
	done < "$1"
}

census_check() {
	census_read "/sys/kernel/debug/pgtable_ctor/$1"
	echo "ws-report: census $1: $c_pages constructed table pages," \
	     "$c_unc unconstructed, ${c_unp:-?} without the page-table key," \
	     "walk memory ${c_walk:-?} KiB"
	ws_check "census-$1" test "$c_unc" = 0 -a -n "$c_pages"
}

# keys_early_tables: whether this kernel keys the page tables made
# before its pools in place (x86/pks/pgtables reports "early_keyed").
keys_early_tables() {
	[ -r /sys/kernel/debug/x86/pks/pgtables ] || return 1
	while read -r a _; do
		[ "$a" = early_keyed ] && return 0
	done < /sys/kernel/debug/x86/pks/pgtables
	return 1
}

# census_keyed NAME: with pks_tables=on or soft, every table of the
# kernel's trees has the page-table key in every mapping, the early ones
# keyed in place included.  20-hotplug.sh checks it again after its
# hot-add and its removal.  The dmhotplug boot skips it.
census_keyed() {
	if ws_cmdline_has ws.dmhotplug || ! keys_early_tables; then
		return 0
	fi
	ws_check "census-$1-keyed" test "$c_unp" = 0
}

if [ -d /sys/kernel/debug/pgtable_ctor ]; then
	census_check init_mm
	census_keyed init_mm
	census_check current
	if ws_cmdline_has ws.efi; then
		ws_check efi-runtime test -d /sys/firmware/efi
		ws_check efi-mm-census test -e /sys/kernel/debug/pgtable_ctor/efi_mm
	fi
	if [ -e /sys/kernel/debug/pgtable_ctor/efi_mm ]; then
		census_check efi_mm
		census_keyed efi_mm
	fi
	if ws_cmdline_has pti=on; then
		ws_check pti-enabled grep -qw pti /proc/cpuinfo
	fi
fi
