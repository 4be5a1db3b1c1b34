# SPDX-License-Identifier: GPL-2.0
# The kernel and the machine it booted on.
echo "ws-report: kernel: $(cat /proc/version)"
echo "ws-report: cpus online: $(cat /sys/devices/system/cpu/online)"
echo "ws-report: memory: $(grep MemTotal /proc/meminfo | tr -s ' ' | cut -d' ' -f2-)"
if grep -qw la57 /proc/cpuinfo; then
	echo "ws-report: paging: 5-level capable CPU ($(grep -o 'no5lvl' /proc/cmdline || echo 'la57 allowed'))"
else
	echo "ws-report: paging: 4-level CPU"
fi
# Every CPU QEMU gave the guest (-smp, 2 unless a run asks otherwise) came
# up: the online set is the present set.
ws_check cpus-online test "$(cat /sys/devices/system/cpu/online)" = \
	"$(cat /sys/devices/system/cpu/present)"
