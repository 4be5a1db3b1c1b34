# SPDX-License-Identifier: GPL-2.0
# kunit.py --qemu_config for the series: x86_64 under TCG with -cpu max
# (PKS and LA57 are emulated there) and two vCPUs, so that the per-CPU
# and cross-CPU paths of the suites run for real.  3G of memory (the
# later -m wins over kunit.py's own -m 1024) puts a whole gigabyte of RAM
# under one 1G mapping of the direct map, for x86_directmap's 1G cases.
from ..qemu_config import QemuArchParams

QEMU_ARCH = QemuArchParams(linux_arch='x86_64',
			   kconfig='''
CONFIG_SERIAL_8250=y
CONFIG_SERIAL_8250_CONSOLE=y''',
			   qemu_arch='x86_64',
			   kernel_path='arch/x86/boot/bzImage',
			   kernel_command_line='console=ttyS0',
			   extra_qemu_params=['-bios', 'qboot.rom',
					      '-accel', 'tcg',
					      '-cpu', 'max', '-smp', '2',
					      '-m', '3G'])
