// SPDX-License-Identifier: GPL-2.0
/*
 * fork+exit loop for "tools/ws bench": each child exits at once, so the
 * work is the kernel's copy and teardown of an address space, its page
 * tables included.  Prints the guest time the loop took; under
 * qemu -icount shift=0 one guest nanosecond is one guest instruction.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

int main(int argc, char **argv)
{
	int n = argc > 1 ? atoi(argv[1]) : 1000;
	long long start, elapsed;
	int i;

	start = now_ns();
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid == 0)
			_exit(0);
		if (pid < 0) {
			perror("fork");
			return 1;
		}
		waitpid(pid, NULL, 0);
	}
	elapsed = now_ns() - start;
	printf("ws-bench: forkexit: %d forks %lld ns\n", n, elapsed);
	return 0;
}
