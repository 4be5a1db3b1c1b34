# SPDX-License-Identifier: GPL-2.0
# kunit.py --qemu_config for the series: x86_64 under TCG with -cpu max
# (PKS and LA57 are emulated there) and two vCPUs, so that the per-CPU
# and cross-CPU paths of the suites run for real.
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
					      '-cpu', 'max', '-smp', '2'])
