// SPDX-License-Identifier: GPL-2.0
/*
 * Page-table workloads for "tools/ws bench --pgtables".  Under
 * qemu -icount shift=0 one guest nanosecond is one guest instruction.
 *
 *   ptbench big MIB REPS   REPS times: map MIB MiB of private anonymous
 *                          memory at 4K (no THP), touch every page, then
 *                          time one fork+exit of the process and the
 *                          munmap of the range.
 *   ptbench spawn N        time N fork+exec+exit of /bin/true: a small
 *                          address space built and torn down, as a
 *                          build's compiler processes are.
 *
 * Each timed operation also reports the IA32_PKRS writes it cost, from
 * debugfs x86/pks/pkrs_writes (-1 where the kernel has no such file).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define PKRS_WRITES "/sys/kernel/debug/x86/pks/pkrs_writes"

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The "all" line's writes column, or -1. */
static long long pkrs_writes(void)
{
	long long writes = -1;
	char line[256];
	FILE *f = fopen(PKRS_WRITES, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "all", 3))
			writes = atoll(line + 3);
	fclose(f);
	return writes;
}

struct sample {
	long long ns;
	long long writes;
};

static void begin(struct sample *s)
{
	s->writes = pkrs_writes();
	s->ns = now_ns();
}

static void end(struct sample *s)
{
	s->ns = now_ns() - s->ns;
	s->writes = s->writes < 0 ? -1 : pkrs_writes() - s->writes;
}

static int fork_exit(void)
{
	pid_t pid = fork();

	if (pid < 0) {
		perror("fork");
		return -1;
	}
	if (pid == 0)
		_exit(0);
	waitpid(pid, NULL, 0);
	return 0;
}

static int big(size_t mib, int reps)
{
	size_t len = mib << 20;
	struct sample s;
	long page = sysconf(_SC_PAGESIZE);
	int r;

	for (r = 0; r < reps; r++) {
		char *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
			       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		size_t off;

		if (p == MAP_FAILED) {
			perror("mmap");
			return 1;
		}
		if (madvise(p, len, MADV_NOHUGEPAGE))
			perror("madvise");
		for (off = 0; off < len; off += page)
			p[off] = 1;

		begin(&s);
		if (fork_exit())
			return 1;
		end(&s);
		printf("ws-bench-pt: fork mib %zu ns %lld pkrs %lld\n",
		       mib, s.ns, s.writes);

		begin(&s);
		if (munmap(p, len)) {
			perror("munmap");
			return 1;
		}
		end(&s);
		printf("ws-bench-pt: munmap mib %zu ns %lld pkrs %lld\n",
		       mib, s.ns, s.writes);
	}
	return 0;
}

static int spawn(int n)
{
	struct sample s;
	int i;

	begin(&s);
	for (i = 0; i < n; i++) {
		pid_t pid = fork();

		if (pid < 0) {
			perror("fork");
			return 1;
		}
		if (pid == 0) {
			execl("/bin/true", "true", (char *)NULL);
			_exit(127);
		}
		waitpid(pid, NULL, 0);
	}
	end(&s);
	printf("ws-bench-pt: spawn n %d ns %lld pkrs %lld\n", n, s.ns,
	       s.writes);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 4 && !strcmp(argv[1], "big"))
		return big(atol(argv[2]), atoi(argv[3]));
	if (argc == 3 && !strcmp(argv[1], "spawn"))
		return spawn(atoi(argv[2]));
	fprintf(stderr, "usage: ptbench big MIB REPS | ptbench spawn N\n");
	return 2;
}
