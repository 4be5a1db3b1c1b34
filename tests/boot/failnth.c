// SPDX-License-Identifier: GPL-2.0
/*
 * Fault-injection walks over page-table allocation, for the boot tests
 * (tests/boot.d/45-failnth.sh, which sets fail_page_alloc and failslab up
 * so that every allocation can fail).
 *
 *   ws-failnth [OPERATION...]
 *
 * For each operation, and N = 1, 2, ...: write N to this thread's
 * /proc/thread-self/fail-nth, run the operation, and read fail-nth back.
 * 0 means that the operation's Nth allocation failed; it must then either
 * fail with the operation's error and leave the data as it was, or
 * succeed (the kernel coped: a page-table pool's fallback, a retry).  A
 * value left over means that the operation needed fewer than N
 * allocations, and ends the walk.  The operations:
 *
 *   fork     fork a child of a process with 8 MiB of anonymous memory in
 *            use (4K and, where THP is on, huge): every level of its
 *            tables is copied, the child checks the data and exits
 *   mremap   move 4 MiB to an address 2 TiB away, in a part of the
 *            address space with no tables yet
 *   populate MADV_POPULATE_WRITE 4 MiB in another such part
 *   thp      populate 4 MiB 2M-aligned with MADV_HUGEPAGE (each huge
 *            fault deposits a PTE table), split a huge page with an
 *            mprotect() of 4K, then MADV_COLLAPSE it back
 *   split    map at 4K the direct map's 2M region of a page of ours
 *            (CPA's set_memory_split()), then collapse it back
 *   collapse the same region, split beforehand: restore its large
 *            mapping (set_memory_collapse())
 *
 * split and collapse run in this task through x86/directmap_test in
 * debugfs, the x86_directmap KUnit suite's file.  A failed split may keep
 * what it split before the failure, as set_memory_split() says, but must
 * leave no 4K mapping (and no table: 45-failnth.sh's PageTables check);
 * a failed collapse must leave the region at 4K.  Either way DirectMap4k
 * in /proc/meminfo must be back where it was once the region is
 * collapsed again.  With pks_tables=on a split takes its table from the
 * keyed pool and allocates nothing here, so its walk has no step.
 * Without that file, or with every page of ours in a region mapped at 4K
 * (debug_pagealloc), the two are skipped with the reason.
 *
 * Prints "ws-failnth: OPERATION steps S failed F" per operation, where S
 * allocations were failed in turn and F of them failed the operation,
 * then "ws-failnth: errors N"; exits 1 if N is not 0.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/rseq.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
#ifndef MADV_COLLAPSE
#define MADV_COLLAPSE 25
#endif

#define PAGE		4096UL
#define HUGE		(2UL << 20)
#define MIB		(1UL << 20)
/* Far from the heap, the stack and the mmap base, and from each other. */
#define MREMAP_TARGET	((char *)0x7e0000000000UL)
#define POPULATE_AT	((char *)0x7d0000000000UL)
#define THP_AT		((char *)0x7c0000000000UL)
/* No operation here makes this many allocations: a walk that does hangs. */
#define MAX_STEPS	20000
/* More stack than the walks use, grown and faulted in before them. */
#define STACK_RESERVE	(256 * 1024)

static long errors;
static int fail_nth_fd;

/* Where the walker is, for a report of a fatal signal. */
static const char *where_op = "start";
static const char *where_phase = "";
static long where_step;

static void complain(const char *op, const char *what)
{
	fprintf(stderr, "ws-failnth: %s: %s: %s\n", op, what, strerror(errno));
	errors++;
}

/* An error that an operation may return for a failed allocation. */
static int out_of_memory(int err)
{
	return err == ENOMEM || err == EAGAIN;
}

static void fill(char *p, size_t size, uintptr_t salt)
{
	size_t off;

	for (off = 0; off < size; off += PAGE)
		*(uintptr_t *)(p + off) = off ^ salt;
}

static int intact(const char *p, size_t size, uintptr_t salt)
{
	size_t off;

	for (off = 0; off < size; off += PAGE)
		if (*(const uintptr_t *)(p + off) != (off ^ salt))
			return 0;
	return 1;
}

static void check_data(const char *op, const char *p, size_t size,
		       uintptr_t salt)
{
	if (!intact(p, size, salt)) {
		fprintf(stderr, "ws-failnth: %s: data lost\n", op);
		errors++;
	}
}

static void set_fail_nth(unsigned int n)
{
	char buf[16];
	int len = snprintf(buf, sizeof(buf), "%u", n);

	if (pwrite(fail_nth_fd, buf, len, 0) != len) {
		perror("ws-failnth: fail-nth");
		exit(2);
	}
}

/* What is left of the count; 0 once the Nth allocation has failed. */
static unsigned int get_fail_nth(void)
{
	char buf[16] = "";

	if (pread(fail_nth_fd, buf, sizeof(buf) - 1, 0) <= 0) {
		perror("ws-failnth: fail-nth");
		exit(2);
	}
	return strtoul(buf, NULL, 10);
}

static void *map_at(char *addr, size_t size)
{
	int flags = MAP_PRIVATE | MAP_ANONYMOUS;
	void *p;

	if (addr)
		flags |= MAP_FIXED_NOREPLACE;
	p = mmap(addr, size, PROT_READ | PROT_WRITE, flags, -1, 0);
	if (p == MAP_FAILED) {
		perror("ws-failnth: mmap");
		exit(2);
	}
	return p;
}

/*
 * One operation: set_up(), if any, before the count starts, run() with
 * it on (returns -1 with errno set when the operation failed),
 * tear_down() after it is off.  run() and tear_down() check the data.
 */
struct operation {
	const char *name;
	void (*set_up)(void);
	int (*run)(void);
	void (*tear_down)(int ret);
	/* If set: whether the operation can run here; says why not. */
	int (*ready)(void);
};

/* fork: a parent with tables at every level, huge pages among them. */
static char *fork_mem;
#define FORK_SIZE	(8 * MIB)

static void fork_set_up(void)
{
	if (!fork_mem) {
		fork_mem = map_at(NULL, FORK_SIZE);
		madvise(fork_mem, FORK_SIZE, MADV_HUGEPAGE);
		fill(fork_mem, FORK_SIZE, 0xf0f0);
	}
}

static int fork_run(void)
{
	pid_t pid = fork();
	int status;

	if (!pid)
		_exit(intact(fork_mem, FORK_SIZE, 0xf0f0) ? 0 : 1);
	if (pid < 0)
		return -1;
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "ws-failnth: fork: child status %#x\n", status);
		errors++;
	}
	return 0;
}

static void fork_tear_down(int ret __attribute__((unused)))
{
	check_data("fork", fork_mem, FORK_SIZE, 0xf0f0);
}

/* mremap: on failure the data stays where it was. */
static char *mremap_src;
#define MREMAP_SIZE	(4 * MIB)

static void mremap_set_up(void)
{
	mremap_src = map_at(NULL, MREMAP_SIZE);
	fill(mremap_src, MREMAP_SIZE, 0x3c3c);
}

static int mremap_run(void)
{
	void *p = mremap(mremap_src, MREMAP_SIZE, MREMAP_SIZE,
			 MREMAP_MAYMOVE | MREMAP_FIXED, MREMAP_TARGET);

	return p == MAP_FAILED ? -1 : 0;
}

static void mremap_tear_down(int ret)
{
	char *p = ret ? mremap_src : MREMAP_TARGET;

	check_data("mremap", p, MREMAP_SIZE, 0x3c3c);
	munmap(p, MREMAP_SIZE);
}

/* populate: a failed fault gives -ENOMEM, with what it did mapped. */
static char *populate_mem;
#define POPULATE_SIZE	(4 * MIB)

static void populate_set_up(void)
{
	populate_mem = map_at(POPULATE_AT, POPULATE_SIZE);
}

static int populate_run(void)
{
	return madvise(populate_mem, POPULATE_SIZE, MADV_POPULATE_WRITE);
}

static void populate_tear_down(int ret __attribute__((unused)))
{
	fill(populate_mem, POPULATE_SIZE, 0x6969);
	check_data("populate", populate_mem, POPULATE_SIZE, 0x6969);
	munmap(populate_mem, POPULATE_SIZE);
}

/* thp: huge faults, a split and a collapse, each of which may fail. */
static char *thp_mem;
#define THP_SIZE	(4 * MIB)

static void thp_set_up(void)
{
	thp_mem = map_at(THP_AT, THP_SIZE);
	/* EINVAL: a kernel without THP; the walk then runs at 4K. */
	madvise(thp_mem, THP_SIZE, MADV_HUGEPAGE);
}

static int thp_run(void)
{
	if (madvise(thp_mem, THP_SIZE, MADV_POPULATE_WRITE))
		return -1;
	fill(thp_mem, THP_SIZE, 0x2d2d);
	if (mprotect(thp_mem + PAGE, PAGE, PROT_READ))
		return -1;
	if (!intact(thp_mem, THP_SIZE, 0x2d2d)) {
		fprintf(stderr, "ws-failnth: thp: data lost in the split\n");
		errors++;
	}
	if (mprotect(thp_mem + PAGE, PAGE, PROT_READ | PROT_WRITE))
		return -1;
	if (madvise(thp_mem, HUGE, MADV_COLLAPSE) && errno != EINVAL)
		return -1;
	return 0;
}

static void thp_tear_down(int ret)
{
	/*
	 * A failed mprotect() may have left a page read-only, a failed
	 * populate part of it unfilled: undo both now.
	 */
	if (ret) {
		if (mprotect(thp_mem, THP_SIZE, PROT_READ | PROT_WRITE))
			complain("thp", "mprotect after the walk");
		fill(thp_mem, THP_SIZE, 0x2d2d);
	}
	check_data("thp", thp_mem, THP_SIZE, 0x2d2d);
	munmap(thp_mem, THP_SIZE);
}

/*
 * split and collapse: the direct map's 2M region around a page of ours,
 * through the file that runs set_memory_split() and set_memory_collapse()
 * in the writing task.  It takes "split|collapse|look PHYS" and gives
 * back "level L present P ret R": the level lookup_address() found
 * (1 = 4K, 2 = 2M, 3 = 1G) and what the call returned.
 */
#define DM_KNOB		"/sys/kernel/debug/x86/directmap_test"
#define DM_LEVEL_4K	1
/* Pages of ours looked at for one in a region the direct map maps large. */
#define DM_SEARCH	(8 * MIB)

struct dm_state {
	int level;
	int present;
	int ret;
};

static int dm_fd = -1;
static char *dm_mem;
static unsigned long long dm_phys;
static int dm_level_start;
static long dm_4k_start;

/* DirectMap4k of /proc/meminfo, in kB. */
static long direct_map_4k(void)
{
	char line[128];
	long kb = -1;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "DirectMap4k: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

/* Run CMD on the region; -1 with errno set if the file refused it. */
static int dm_do(const char *cmd, struct dm_state *st)
{
	char buf[64];
	int len = snprintf(buf, sizeof(buf), "%s %llx", cmd, dm_phys);
	ssize_t got;

	if (pwrite(dm_fd, buf, len, 0) != len)
		return -1;
	got = pread(dm_fd, buf, sizeof(buf) - 1, 0);
	if (got <= 0)
		return -1;
	buf[got] = '\0';
	if (sscanf(buf, "level %d present %d ret %d", &st->level,
		   &st->present, &st->ret) != 3) {
		errno = EPROTO;
		return -1;
	}
	return 0;
}

static void dm_complain(const char *op, const char *what,
			const struct dm_state *st)
{
	fprintf(stderr, "ws-failnth: %s: %s (level %d present %d ret %d, DirectMap4k %ld kB, %ld kB before)\n",
		op, what, st->level, st->present, st->ret, direct_map_4k(),
		dm_4k_start);
	errors++;
}

/* The physical address of a page of ours, from /proc/self/pagemap. */
static unsigned long long phys_of(const void *p)
{
	uint64_t entry = 0;
	int fd = open("/proc/self/pagemap", O_RDONLY);
	off_t off = (uintptr_t)p / PAGE * sizeof(entry);

	if (fd < 0 || pread(fd, &entry, sizeof(entry), off) != sizeof(entry))
		entry = 0;
	if (fd >= 0)
		close(fd);
	/* Bit 63: present; bits 0-54: the PFN, 0 without CAP_SYS_ADMIN. */
	if (!(entry >> 63))
		return 0;
	return (entry & ((1ULL << 55) - 1)) * PAGE;
}

/*
 * Find the region and how it is mapped, once; print why the two walks
 * cannot run, and return 0, where they cannot.
 */
static int dm_ready(void)
{
	static int ready = -1;
	struct dm_state st;
	size_t off;

	if (ready >= 0)
		return ready;
	ready = 0;
	dm_fd = open(DM_KNOB, O_RDWR);
	if (dm_fd < 0) {
		printf("ws-failnth: split, collapse: skipped: no " DM_KNOB
		       " (CONFIG_X86_DIRECTMAP_KUNIT_TEST=n)\n");
		return 0;
	}
	/* The first of our pages whose region is mapped large. */
	dm_mem = map_at(NULL, DM_SEARCH);
	fill(dm_mem, DM_SEARCH, 0x5a5a);
	for (off = 0; off < DM_SEARCH; off += PAGE) {
		dm_phys = phys_of(dm_mem + off);
		if (!dm_phys) {
			complain("split", "no address in /proc/self/pagemap");
			return 0;
		}
		if (dm_do("look", &st)) {
			complain("split", DM_KNOB);
			return 0;
		}
		if (st.level > DM_LEVEL_4K)
			break;
	}
	if (off == DM_SEARCH) {
		printf("ws-failnth: split, collapse: skipped: the direct map of all %lu pages of ours is at 4K (debug_pagealloc?)\n",
		       DM_SEARCH / PAGE);
		return 0;
	}
	dm_level_start = st.level;
	dm_4k_start = direct_map_4k();
	printf("ws-failnth: split, collapse: the 2M region of %#llx, mapped at level %d, DirectMap4k %ld kB\n",
	       dm_phys, dm_level_start, dm_4k_start);
	ready = 1;
	return 1;
}

/* After the walk of either: the region large again, DirectMap4k back. */
static void dm_restore(const char *op)
{
	struct dm_state st;

	if (dm_do("collapse", &st) || st.ret < 0) {
		complain(op, "collapse after the step");
		return;
	}
	if (!st.present || st.level <= DM_LEVEL_4K ||
	    direct_map_4k() != dm_4k_start)
		dm_complain(op, "not restored by a collapse", &st);
	check_data(op, dm_mem, DM_SEARCH, 0x5a5a);
}

/* A result of the file as run() returns it: -1 and errno for an error. */
static int dm_result(const char *op, const char *cmd, struct dm_state *st)
{
	if (dm_do(cmd, st))
		return -1;
	if (st->ret < 0) {
		errno = -st->ret;
		return -1;
	}
	if (!st->present)
		dm_complain(op, "region not present", st);
	return 0;
}

static struct dm_state dm_last;

static int split_run(void)
{
	return dm_result("split", "split", &dm_last);
}

static void split_tear_down(int ret)
{
	struct dm_state st;

	if (dm_do("look", &st)) {
		complain("split", "look after the step");
		return;
	}
	if (ret ? st.level <= DM_LEVEL_4K || direct_map_4k() != dm_4k_start :
		  st.level != DM_LEVEL_4K)
		dm_complain("split", ret ? "a failed split left 4K pages" :
				     "a split left the region large", &st);
	dm_restore("split");
}

static void collapse_set_up(void)
{
	struct dm_state st = { 0 };

	if (dm_do("split", &st) || st.ret || st.level != DM_LEVEL_4K) {
		fprintf(stderr, "ws-failnth: collapse: the split before the step failed (level %d ret %d)\n",
			st.level, st.ret);
		exit(2);
	}
}

static int collapse_run(void)
{
	return dm_result("collapse", "collapse", &dm_last);
}

static void collapse_tear_down(int ret)
{
	if (ret && dm_last.level != DM_LEVEL_4K)
		dm_complain("collapse", "a failed collapse changed the mapping",
			    &dm_last);
	if (!ret && (dm_last.level <= DM_LEVEL_4K || dm_last.ret <= 0))
		dm_complain("collapse", "a collapse left the region at 4K",
			    &dm_last);
	dm_restore("collapse");
}

static const struct operation operations[] = {
	{ "fork", fork_set_up, fork_run, fork_tear_down, NULL },
	{ "mremap", mremap_set_up, mremap_run, mremap_tear_down, NULL },
	{ "populate", populate_set_up, populate_run, populate_tear_down, NULL },
	{ "thp", thp_set_up, thp_run, thp_tear_down, NULL },
	{ "split", NULL, split_run, split_tear_down, dm_ready },
	{ "collapse", collapse_set_up, collapse_run, collapse_tear_down,
	  dm_ready },
};

static void walk(const struct operation *op)
{
	long steps, failed = 0;
	unsigned int left;
	int ret, err;

	where_op = op->name;
	if (op->ready && !op->ready())
		return;
	for (steps = 1; steps <= MAX_STEPS; steps++) {
		where_step = steps;
		where_phase = " (set-up)";
		if (op->set_up)
			op->set_up();
		where_phase = " (run)";
		set_fail_nth(steps);
		ret = op->run();
		err = errno;
		left = get_fail_nth();
		set_fail_nth(0);
		where_phase = " (tear-down)";
		if (ret) {
			errno = err;
			if (!out_of_memory(err))
				complain(op->name, "unexpected error");
			else if (left)
				complain(op->name, "failed with no allocation failed");
			else
				failed++;
		}
		op->tear_down(ret);
		if (left)
			break;
	}
	if (steps > MAX_STEPS) {
		fprintf(stderr, "ws-failnth: %s: still failing after %d steps\n",
			op->name, MAX_STEPS);
		errors++;
	}
	printf("ws-failnth: %s steps %ld failed %ld\n", op->name, steps - 1,
	       failed);
	fflush(stdout);
}

/* Copy /proc/self/maps to standard error, with only what a handler may use. */
static void dump_maps(void)
{
	char buf[4096];
	ssize_t len;
	int fd = open("/proc/self/maps", O_RDONLY);

	if (fd < 0)
		return;
	while ((len = read(fd, buf, sizeof(buf))) > 0)
		if (write(STDERR_FILENO, buf, len) != len)
			break;
	close(fd);
}

/*
 * A fatal signal in a walk is a finding: say which operation, step and
 * phase took it, at what address, and what was mapped, then exit 3.
 */
static void fatal_signal(int sig, siginfo_t *si, void *uc __attribute__((unused)))
{
	char msg[256];
	int len;

	len = snprintf(msg, sizeof(msg),
		       "ws-failnth: %s step %ld%s: signal %d code %d at %p; maps:\n",
		       where_op, where_step, where_phase, sig, si->si_code,
		       si->si_addr);
	if (len > 0 && write(STDERR_FILENO, msg, len) == len)
		dump_maps();
	_exit(3);
}

static void catch_fatal_signals(void)
{
	static char alt[64 * 1024];
	stack_t ss = { .ss_sp = alt, .ss_size = sizeof(alt) };
	struct sigaction sa = {
		.sa_sigaction = fatal_signal,
		.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESETHAND,
	};

	if (sigaltstack(&ss, NULL) || sigaction(SIGSEGV, &sa, NULL) ||
	    sigaction(SIGBUS, &sa, NULL)) {
		perror("ws-failnth: sigaction");
		exit(2);
	}
}

/*
 * A fault on a new stack page allocates the page and, where the stack
 * VMA must grow, maybe maple-tree nodes or an anon_vma.  A failed page
 * is retried (the kernel's "Huh VM_FAULT_OOM leaked out" message); a
 * VMA that cannot grow is a SIGSEGV, as a fault has no error to return.
 * Neither is what a walk means to test, so the stack that the walks use
 * is grown and faulted in here, before the first count.
 */
static void __attribute__((noinline)) grow_stack(void)
{
	volatile char reserve[STACK_RESERVE];
	size_t off;

	for (off = 0; off < sizeof(reserve); off += PAGE)
		reserve[off] = 0;
}

/*
 * glibc registers an rseq area for the thread, which the kernel writes on
 * the way back to user space after the task was preempted or migrated.
 * When fork() has made that page copy-on-write and the walk fails the
 * copy's allocation, the write fails and the kernel can only send
 * SIGSEGV (kernel/rseq.c, force_sigsegv()).  That is rseq's rule, not an
 * error path under test, so the walker gives its area back first.
 */
static void unregister_rseq(void)
{
	void *area = (char *)__builtin_thread_pointer() + __rseq_offset;
	/* glibc registers at least the original 32 bytes (rseq-internal.h). */
	unsigned int len = __rseq_size < 32 ? 32 : __rseq_size;

	if (__rseq_size && syscall(SYS_rseq, area, len, RSEQ_FLAG_UNREGISTER,
				   RSEQ_SIG)) {
		perror("ws-failnth: rseq unregistration");
		exit(2);
	}
}

int main(int argc, char **argv)
{
	size_t i;
	int a;

	fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
	if (fail_nth_fd < 0) {
		perror("ws-failnth: /proc/thread-self/fail-nth");
		return 2;
	}
	catch_fatal_signals();
	unregister_rseq();
	grow_stack();
	for (i = 0; i < sizeof(operations) / sizeof(operations[0]); i++) {
		if (argc > 1) {
			for (a = 1; a < argc; a++)
				if (!strcmp(argv[a], operations[i].name))
					break;
			if (a == argc)
				continue;
		}
		walk(&operations[i]);
	}
	printf("ws-failnth: errors %ld\n", errors);
	return errors ? 1 : 0;
}
