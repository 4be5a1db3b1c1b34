// SPDX-License-Identifier: GPL-2.0
/*
 * Page-table stress for the boot tests (tests/boot.d/40-stress.sh).
 *
 *   ws-stress SECONDS WORKERS
 *
 * WORKERS processes each run rounds of the workloads below until SECONDS
 * have passed, so that page tables are made, written, split, collapsed
 * and freed on every CPU at once:
 *
 *   fork    fork a child that touches 64 pages copied on write, then exits
 *   exec    fork and exec "busybox true"
 *   mmap    map 8 MiB, touch each page, mprotect() every other 64K
 *           read-only and back, munmap() it in pieces from the middle out
 *   mremap  map 4 MiB, fill it, grow it to 8 MiB elsewhere, check it
 *   thp     map 2M-aligned 8 MiB with MADV_HUGEPAGE, touch it (huge
 *           faults), split one huge page with an mprotect() of 4K,
 *           MADV_DONTNEED 2M, MADV_COLLAPSE 2M back, check the data
 *
 * Data is written and read back across every change, so that a lost or
 * wrong entry shows as a mismatch.  Prints "ws-stress: NAME COUNT" for
 * each workload and "ws-stress: errors N"; exits 1 if N is not 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define PAGE		4096UL
#define HUGE		(2UL << 20)
#define MIB		(1UL << 20)

enum { W_FORK, W_EXEC, W_MMAP, W_MREMAP, W_THP, NR_WORKLOADS };

static const char * const names[NR_WORKLOADS] = {
	"fork", "exec", "mmap", "mremap", "thp",
};

/* Per worker: rounds done of each workload, errors, THP collapses. */
struct tally {
	long done[NR_WORKLOADS];
	long errors;
	long collapsed;
};

static struct tally tally;

static void fail(const char *what)
{
	fprintf(stderr, "ws-stress: %d: %s: %s\n", getpid(), what,
		strerror(errno));
	tally.errors++;
}

static void *map_anon(size_t size)
{
	void *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	if (p == MAP_FAILED) {
		fail("mmap");
		return NULL;
	}
	return p;
}

/* Write a word per page that says where it is; check it again. */
static void fill(char *p, size_t size, uintptr_t salt)
{
	size_t off;

	for (off = 0; off < size; off += PAGE)
		*(uintptr_t *)(p + off) = off ^ salt;
}

static int check(const char *p, size_t size, uintptr_t salt,
		 const char *what)
{
	size_t off;

	for (off = 0; off < size; off += PAGE)
		if (*(const uintptr_t *)(p + off) != (off ^ salt)) {
			fprintf(stderr, "ws-stress: %d: %s: page %zu lost its data\n",
				getpid(), what, off / PAGE);
			tally.errors++;
			return -1;
		}
	return 0;
}

static int reap(pid_t pid, const char *what)
{
	int status;

	if (pid < 0) {
		fail(what);
		return -1;
	}
	if (waitpid(pid, &status, 0) < 0) {
		fail("waitpid");
		return -1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status)) {
		fprintf(stderr, "ws-stress: %d: %s: child status %#x\n",
			getpid(), what, status);
		tally.errors++;
		return -1;
	}
	return 0;
}

static void do_fork(void)
{
	size_t size = 64 * PAGE;
	char *p = map_anon(size);
	pid_t pid;

	if (!p)
		return;
	fill(p, size, 0x5a5a);
	pid = fork();
	if (!pid) {
		fill(p, size, 0xa5a5);
		_exit(check(p, size, 0xa5a5, "fork child") ? 1 : 0);
	}
	reap(pid, "fork");
	check(p, size, 0x5a5a, "fork parent");
	munmap(p, size);
}

static void do_exec(void)
{
	pid_t pid = fork();

	if (!pid) {
		execl("/bin/busybox", "true", (char *)NULL);
		_exit(127);
	}
	reap(pid, "exec");
}

static void do_mmap(void)
{
	size_t size = 8 * MIB, chunk = 16 * PAGE, off;
	char *p = map_anon(size);
	long i, n;

	if (!p)
		return;
	fill(p, size, 0x1234);
	for (off = 0; off < size; off += 2 * chunk)
		if (mprotect(p + off, chunk, PROT_READ))
			fail("mprotect ro");
	check(p, size, 0x1234, "mprotect");
	for (off = 0; off < size; off += 2 * chunk)
		if (mprotect(p + off, chunk, PROT_READ | PROT_WRITE))
			fail("mprotect rw");
	/* From the middle out: holes that empty tables one by one. */
	n = size / chunk;
	for (i = 0; i < n / 2; i++) {
		if (munmap(p + (n / 2 + i) * chunk, chunk))
			fail("munmap");
		if (munmap(p + (n / 2 - 1 - i) * chunk, chunk))
			fail("munmap");
	}
}

static void do_mremap(void)
{
	size_t size = 4 * MIB;
	char *p = map_anon(size), *q;

	if (!p)
		return;
	fill(p, size, 0x4321);
	q = mremap(p, size, 2 * size, MREMAP_MAYMOVE);
	if (q == MAP_FAILED) {
		fail("mremap");
		munmap(p, size);
		return;
	}
	check(q, size, 0x4321, "mremap");
	fill(q + size, size, 0x8765);
	check(q + size, size, 0x8765, "mremap grown");
	munmap(q, 2 * size);
}

static void do_thp(void)
{
	size_t size = 8 * MIB;
	char *raw = map_anon(size + HUGE), *p;

	if (!raw)
		return;
	p = (char *)(((uintptr_t)raw + HUGE - 1) & ~(HUGE - 1));
	/* EINVAL: a kernel without THP; the rest runs at 4K. */
	if (madvise(p, size, MADV_HUGEPAGE) && errno != EINVAL)
		fail("MADV_HUGEPAGE");
	fill(p, size, 0x7777);
	/* A 4K change in a huge page splits its PMD mapping. */
	if (mprotect(p + HUGE + PAGE, PAGE, PROT_READ))
		fail("mprotect thp");
	check(p, size, 0x7777, "thp split");
	if (mprotect(p + HUGE + PAGE, PAGE, PROT_READ | PROT_WRITE))
		fail("mprotect thp back");
	if (madvise(p + 2 * HUGE, HUGE, MADV_DONTNEED))
		fail("MADV_DONTNEED");
	fill(p, size, 0x7777);
	/* Back to one PMD mapping: khugepaged's work, done here. */
	if (!madvise(p + HUGE, HUGE, MADV_COLLAPSE))
		tally.collapsed++;
	else if (errno != EAGAIN && errno != ENOMEM && errno != EINVAL)
		fail("MADV_COLLAPSE");
	check(p, size, 0x7777, "thp collapse");
	munmap(raw, size + HUGE);
}

static void (* const workloads[NR_WORKLOADS])(void) = {
	do_fork, do_exec, do_mmap, do_mremap, do_thp,
};

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One worker: rounds until the deadline; its tally goes to @fd. */
static void worker(double deadline, int fd)
{
	int w;

	while (now() < deadline)
		for (w = 0; w < NR_WORKLOADS; w++) {
			workloads[w]();
			tally.done[w]++;
		}
	if (write(fd, &tally, sizeof(tally)) != sizeof(tally))
		_exit(2);
	_exit(0);
}

int main(int argc, char **argv)
{
	struct tally sum = { 0 }, one;
	int seconds, workers, i, w, fds[2];
	double deadline;

	if (argc != 3 || (seconds = atoi(argv[1])) <= 0 ||
	    (workers = atoi(argv[2])) <= 0) {
		fprintf(stderr, "usage: ws-stress SECONDS WORKERS\n");
		return 2;
	}
	if (pipe(fds)) {
		perror("ws-stress: pipe");
		return 2;
	}
	deadline = now() + seconds;
	for (i = 0; i < workers; i++) {
		pid_t pid = fork();

		if (!pid) {
			close(fds[0]);
			worker(deadline, fds[1]);
		}
		if (pid < 0)
			fail("fork worker");
	}
	close(fds[1]);
	for (i = 0; i < workers; i++) {
		if (read(fds[0], &one, sizeof(one)) != sizeof(one)) {
			fprintf(stderr, "ws-stress: a worker died\n");
			sum.errors++;
			continue;
		}
		for (w = 0; w < NR_WORKLOADS; w++)
			sum.done[w] += one.done[w];
		sum.errors += one.errors;
		sum.collapsed += one.collapsed;
	}
	while (wait(NULL) > 0)
		;
	for (w = 0; w < NR_WORKLOADS; w++)
		printf("ws-stress: %s %ld\n", names[w], sum.done[w]);
	printf("ws-stress: thp-collapsed %ld\n", sum.collapsed);
	printf("ws-stress: errors %ld\n", sum.errors + tally.errors);
	return sum.errors + tally.errors ? 1 : 0;
}
