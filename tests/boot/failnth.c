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
 *   vmalloc  in a child, dup2() to fd 1048575: the fd table's array of
 *            8 MiB is beyond kmalloc's largest size, so kvmalloc() takes
 *            it from vmalloc (a vm_struct, a vmap area, KASAN's shadow,
 *            the pages, and kernel page tables where the range has none)
 *   ioremap  read a page of /dev/mem outside RAM: memremap() maps it
 *            with ioremap_cache() (a vm_struct, a vmap area, kernel page
 *            tables, a PAT memtype beyond the ISA range), read_mem()
 *            unmaps it again
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
 * vmalloc runs its step in a child of its own, which counts its own
 * allocations and exits, so that every step starts from the small fd
 * table and the child's exit frees what the step took.  On x86_64 such a
 * kvmalloc() first tries to map 2M pages and, if any allocation of that
 * attempt fails, maps 4K pages instead: by default the walk fails the
 * allocations of the 2M attempt, each of which the 4K one absorbs.  With
 * "nohugevmalloc" on the command line there is only the 4K path, and a
 * failure in it fails the dup2() with ENOMEM, but for the bulk page
 * allocator's (vmalloc goes on a page at a time) and the bitmaps'
 * kmalloc() (kvmalloc() falls back to vmalloc).  After each step
 * /proc/vmallocinfo must hold no area whose caller is alloc_fdtable():
 * a leaked array would stay there.  ioremap checks that /proc/vmallocinfo
 * has no more ioremap areas than before the step, that the page's
 * memtype is gone from debugfs x86/pat_memtype_list where PAT tracks one,
 * and that a step that succeeded read what the page held before the
 * walk.  A step whose mapping failed is read_mem()'s EFAULT, which the
 * walk takes for the allocation's error.
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
#include <sys/resource.h>
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
/* WS_FAILNTH_TRACE set: each step's outcome on standard error. */
static int trace;

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
static int out_of_memory(int err, int own)
{
	return err == ENOMEM || err == EAGAIN || (own && err == own);
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
	/* Another error than ENOMEM and EAGAIN that a failed step may give. */
	int oom_error;
	/* Whether each step runs in a child that counts its own allocations. */
	int in_child;
	/* Fewer steps than this: the operation did not do what it is for. */
	long min_steps;
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
	int status = -1;
	/* Nothing is buffered: walk() flushes before each walk. */
	pid_t pid = fork();

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

/* The 2M regions of RAM below 4 GiB, for a report of what changed. */
#define DM_REGIONS	2048
static unsigned char dm_small_start[DM_REGIONS];

/* Mark in SMALL each 2M region of RAM below 4 GiB mapped at 4K. */
static void dm_scan(unsigned char *small)
{
	unsigned long long ours = dm_phys, start, end, p;
	char line[256], name[64];
	struct dm_state st;
	FILE *f = fopen("/proc/iomem", "r");

	memset(small, 0, DM_REGIONS);
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		if (line[0] == ' ' ||
		    sscanf(line, "%llx-%llx : %63[^\n]", &start, &end,
			   name) != 3 || strcmp(name, "System RAM"))
			continue;
		for (p = start & ~(HUGE - 1); p <= end && p / HUGE < DM_REGIONS;
		     p += HUGE) {
			dm_phys = p < start ? start : p;
			if (!dm_do("look", &st) && st.level == DM_LEVEL_4K)
				small[p / HUGE] = 1;
		}
	}
	fclose(f);
	dm_phys = ours;
}

/*
 * Say what is wrong with the region, and which regions of the direct map
 * changed their size since the walks began: DirectMap4k only counts.
 */
static void dm_complain(const char *op, const char *what,
			const struct dm_state *st)
{
	unsigned char small[DM_REGIONS];
	int i;

	fprintf(stderr, "ws-failnth: %s: %s (level %d present %d ret %d, DirectMap4k %ld kB, %ld kB before)\n",
		op, what, st->level, st->present, st->ret, direct_map_4k(),
		dm_4k_start);
	errors++;
	dm_scan(small);
	for (i = 0; i < DM_REGIONS; i++)
		if (small[i] != dm_small_start[i])
			fprintf(stderr, "ws-failnth: %s: the 2M region at %#llx is at %s now\n",
				op, (unsigned long long)i * HUGE,
				small[i] ? "4K" : "2M or 1G");
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
	int small;

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
	dm_scan(dm_small_start);
	for (off = 0, small = 0; off < DM_REGIONS; off++)
		small += dm_small_start[off];
	printf("ws-failnth: split, collapse: the 2M region of %#llx, mapped at level %d, DirectMap4k %ld kB, %d regions of RAM at 4K\n",
	       dm_phys, dm_level_start, dm_4k_start, small);
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

static int dm_absent;

/* A result of the file as run() returns it: -1 and errno for an error. */
static int dm_result(const char *cmd, struct dm_state *st)
{
	if (dm_do(cmd, st))
		return -1;
	if (st->ret < 0) {
		errno = -st->ret;
		return -1;
	}
	/* Said in the tear-down: the count is still on here. */
	dm_absent = !st->present;
	return 0;
}

static struct dm_state dm_last;

static int split_run(void)
{
	return dm_result("split", &dm_last);
}

/* A step that left the region unmapped, said now that the count is off. */
static void dm_check_present(const char *op, int ret)
{
	if (!ret && dm_absent)
		dm_complain(op, "region not present", &dm_last);
	dm_absent = 0;
}

static void split_tear_down(int ret)
{
	struct dm_state st;

	dm_check_present("split", ret);
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
	return dm_result("collapse", &dm_last);
}

static void collapse_tear_down(int ret)
{
	dm_check_present("collapse", ret);
	if (ret && dm_last.level != DM_LEVEL_4K)
		dm_complain("collapse", "a failed collapse changed the mapping",
			    &dm_last);
	if (!ret && (dm_last.level <= DM_LEVEL_4K || dm_last.ret <= 0))
		dm_complain("collapse", "a collapse left the region at 4K",
			    &dm_last);
	dm_restore("collapse");
}

/* The value of a line of /proc/meminfo, in kB; -1 if it has none. */
static long meminfo_kb(const char *name)
{
	char line[128], key[64];
	long kb = -1, val;
	FILE *f = fopen("/proc/meminfo", "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "%63[^:]: %ld", key, &val) == 2 &&
		    !strcmp(key, name)) {
			kb = val;
			break;
		}
	fclose(f);
	return kb;
}

/* The lines of PATH that contain NEEDLE; -1 if it cannot be read. */
static long count_lines(const char *path, const char *needle)
{
	char line[512];
	long n = 0;
	FILE *f = fopen(path, "r");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strstr(line, needle))
			n++;
	fclose(f);
	return n;
}

/*
 * vmalloc: the fd table of a child grown to fd VM_FD.  alloc_fdtable()
 * takes its array of file pointers (8 bytes a slot, 2^20 slots) with
 * kvmalloc_array(); at 8 MiB that is above KMALLOC_MAX_SIZE, so kmalloc
 * gives up without allocating and vmalloc does all of it.  Its areas (the
 * array's, and the 16 kB of the array of its pages) are the lines of
 * /proc/vmallocinfo whose caller is alloc_fdtable(); the child's exit
 * frees them before waitpid() returns.  VmallocUsed could not tell: the
 * kernel stacks of exited children stay in a per-CPU cache or wait for
 * an RCU grace period.
 */
#define VM_FD		1048575
#define VM_AREA		"alloc_fdtable"

static long vm_areas_start;

static int vm_run(void)
{
	int fd = dup2(STDIN_FILENO, VM_FD);

	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

/*
 * In a child: 0 if the dup2() took vmalloc areas of alloc_fdtable(), 1
 * if the dup2() failed, 2 if it took none.  VmallocUsed's growth is only
 * reported: stacks that RCU frees meanwhile can shrink it.
 */
static int vm_probe(void)
{
	long before = count_lines("/proc/vmallocinfo", VM_AREA);
	long used = meminfo_kb("VmallocUsed");
	int fd = dup2(STDIN_FILENO, VM_FD);
	long areas = count_lines("/proc/vmallocinfo", VM_AREA);

	if (fd < 0)
		return 1;
	printf("ws-failnth: vmalloc: the dup2() took %ld areas of " VM_AREA "(), VmallocUsed grew %ld kB\n",
	       areas - before, meminfo_kb("VmallocUsed") - used);
	fflush(stdout);
	return areas > before ? 0 : 2;
}

static int vm_ready(void)
{
	struct rlimit lim = { VM_FD + 1, VM_FD + 1 };
	int status = -1;
	pid_t pid;

	if (setrlimit(RLIMIT_NOFILE, &lim)) {
		printf("ws-failnth: vmalloc: skipped: RLIMIT_NOFILE %d: %s (fs.nr_open below it?)\n",
		       VM_FD + 1, strerror(errno));
		return 0;
	}
	vm_areas_start = count_lines("/proc/vmallocinfo", VM_AREA);
	fflush(NULL);
	pid = fork();
	if (!pid)
		_exit(vm_probe());
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status)) {
		fprintf(stderr, "ws-failnth: vmalloc: a dup2() to fd %d took no vmalloc area of " VM_AREA "() (status %#x)\n",
			VM_FD, status);
		errors++;
		return 0;
	}
	printf("ws-failnth: vmalloc: %ld areas of " VM_AREA "() before the walk\n",
	       vm_areas_start);
	return 1;
}

static void vm_tear_down(int ret __attribute__((unused)))
{
	long areas = count_lines("/proc/vmallocinfo", VM_AREA);

	if (areas != vm_areas_start) {
		fprintf(stderr, "ws-failnth: vmalloc: %ld areas of " VM_AREA "() after the step, %ld before the walk\n",
			areas, vm_areas_start);
		errors++;
	}
}

/*
 * ioremap: a read of /dev/mem at a page outside RAM.  read_mem() maps
 * it with xlate_dev_mem_ptr(), which is memremap(), which for a page that
 * is not RAM is ioremap_cache(); it unmaps it once it has copied it.  The
 * page is the first of a top-level "Reserved" range of /proc/iomem that
 * can be read: read_mem() stops at the end of RAM, and STRICT_DEVMEM
 * lets through what is neither RAM nor claimed exclusively; on QEMU that
 * is the BIOS's at 0xf0000.  Page 0 is left alone.
 */
#define PAT_MEMTYPES	"/sys/kernel/debug/x86/pat_memtype_list"
#define IO_READ		64
/* memtype_reserve() leaves 0xa0000-0xfffff alone: always mapped WB. */
#define IO_ISA_END	0x100000ULL

static int io_fd = -1;
static unsigned long long io_phys;
static unsigned char io_data[IO_READ];
static long io_areas_start;
static char io_memtype[48];
static int io_check_memtype;

static int io_read(unsigned char *buf)
{
	ssize_t got = pread(io_fd, buf, IO_READ, io_phys);

	if (got == IO_READ)
		return 0;
	if (got >= 0)
		errno = EIO;
	return -1;
}

/* The first readable candidate of /proc/iomem, from MIN on. */
static int io_find_page(unsigned long long min)
{
	unsigned long long start, end;
	char line[256], name[128];
	FILE *f = fopen("/proc/iomem", "r");

	io_phys = 0;
	if (!f)
		return 0;
	while (fgets(line, sizeof(line), f)) {
		/* Whole pages only: a page shared with RAM reads as zeros. */
		if (line[0] == ' ' ||
		    sscanf(line, "%llx-%llx : %127[^\n]", &start, &end,
			   name) != 3 || strcmp(name, "Reserved") ||
		    start < min || start % PAGE || end - start + 1 < PAGE)
			continue;
		io_phys = start;
		if (!io_read(io_data))
			break;
		io_phys = 0;
	}
	fclose(f);
	return io_phys != 0;
}

static int io_ready(void)
{
	const char *memtypes = "checked";

	io_fd = open("/dev/mem", O_RDONLY);
	if (io_fd < 0) {
		printf("ws-failnth: ioremap: skipped: /dev/mem: %s (CONFIG_DEVMEM=n?)\n",
		       strerror(errno));
		return 0;
	}
	/* Beyond the ISA range if it can, where PAT tracks a memtype. */
	if (!io_find_page(IO_ISA_END) && !io_find_page(PAGE)) {
		printf("ws-failnth: ioremap: skipped: no \"Reserved\" range of /proc/iomem reads from /dev/mem\n");
		return 0;
	}
	io_check_memtype = io_phys >= IO_ISA_END &&
			   count_lines(PAT_MEMTYPES, "") >= 0;
	if (io_phys < IO_ISA_END)
		memtypes = "not checked: PAT does not track the ISA range";
	else if (!io_check_memtype)
		memtypes = "not checked: no " PAT_MEMTYPES;
	snprintf(io_memtype, sizeof(io_memtype), "[mem 0x%016llx-", io_phys);
	io_areas_start = count_lines("/proc/vmallocinfo", " ioremap");
	if (io_areas_start < 0) {
		printf("ws-failnth: ioremap: skipped: /proc/vmallocinfo: %s\n",
		       strerror(errno));
		return 0;
	}
	printf("ws-failnth: ioremap: the page at %#llx, %ld ioremap areas; the memtype %s\n",
	       io_phys, io_areas_start, memtypes);
	return 1;
}

static unsigned char io_got[IO_READ];

static int io_run(void)
{
	return io_read(io_got);
}

static void io_tear_down(int ret)
{
	long areas = count_lines("/proc/vmallocinfo", " ioremap");
	long memtypes = io_check_memtype ?
			count_lines(PAT_MEMTYPES, io_memtype) : 0;

	if (areas > io_areas_start) {
		fprintf(stderr, "ws-failnth: ioremap: %ld ioremap areas after the step, %ld before the walk\n",
			areas, io_areas_start);
		errors++;
	}
	if (memtypes > 0) {
		fprintf(stderr, "ws-failnth: ioremap: the memtype of %#llx stayed in " PAT_MEMTYPES "\n",
			io_phys);
		errors++;
	}
	if (!ret && memcmp(io_got, io_data, IO_READ)) {
		fprintf(stderr, "ws-failnth: ioremap: read other data than before the walk\n");
		errors++;
	}
}

static const struct operation operations[] = {
	{ .name = "fork", .set_up = fork_set_up, .run = fork_run,
	  .tear_down = fork_tear_down },
	{ .name = "mremap", .set_up = mremap_set_up, .run = mremap_run,
	  .tear_down = mremap_tear_down },
	{ .name = "populate", .set_up = populate_set_up, .run = populate_run,
	  .tear_down = populate_tear_down },
	{ .name = "thp", .set_up = thp_set_up, .run = thp_run,
	  .tear_down = thp_tear_down },
	{ .name = "split", .run = split_run, .tear_down = split_tear_down,
	  .ready = dm_ready },
	{ .name = "collapse", .set_up = collapse_set_up, .run = collapse_run,
	  .tear_down = collapse_tear_down, .ready = dm_ready },
	/* The fdtable, a vm_struct and a vmap area at least. */
	{ .name = "vmalloc", .run = vm_run, .tear_down = vm_tear_down,
	  .ready = vm_ready, .in_child = 1, .min_steps = 3 },
	/*
	 * The bounce buffer and a vm_struct at least: the vmap area of a
	 * page may come from the per-CPU pools of freed areas.
	 */
	{ .name = "ioremap", .run = io_run, .tear_down = io_tear_down,
	  .ready = io_ready, .oom_error = EFAULT, .min_steps = 2 },
};

/*
 * Step N of OP in this task: its return, with the errno of a failure in
 * *err and what is left of the count in *left.
 */
static int step_here(const struct operation *op, unsigned int n, int *err,
		     unsigned int *left)
{
	int ret;

	set_fail_nth(n);
	ret = op->run();
	*err = errno;
	*left = get_fail_nth();
	set_fail_nth(0);
	return ret;
}

/* What a child's step found, in memory it shares with the walker. */
struct child_step {
	int done;
	int ret;
	int err;
	unsigned int left;
};

static struct child_step *child_step;

/*
 * Step N of OP in a child, which counts only its own allocations: the
 * fork's are not part of the step.  A child that does not report ends
 * the walk.
 */
static int step_in_child(const struct operation *op, unsigned int n,
			 int *err, unsigned int *left)
{
	struct child_step *cs = child_step;
	int status = -1;
	pid_t pid;

	memset(cs, 0, sizeof(*cs));
	fflush(NULL);
	pid = fork();
	if (!pid) {
		/* A fatal signal is the walker's to see, as a status. */
		signal(SIGSEGV, SIG_DFL);
		signal(SIGBUS, SIG_DFL);
		close(fail_nth_fd);
		fail_nth_fd = open("/proc/thread-self/fail-nth", O_RDWR);
		if (fail_nth_fd < 0)
			_exit(2);
		cs->ret = step_here(op, n, &cs->err, &cs->left);
		cs->done = 1;
		_exit(0);
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) || !cs->done) {
		fprintf(stderr, "ws-failnth: %s: step %u: child status %#x\n",
			op->name, n, status);
		errors++;
		*err = 0;
		*left = 1;	/* end the walk */
		return 0;
	}
	*err = cs->err;
	*left = cs->left;
	return cs->ret;
}

static void walk(const struct operation *op)
{
	long steps, failed = 0;
	unsigned int left;
	int ret, err;

	where_op = op->name;
	if (op->ready && !op->ready())
		return;
	/* Before the count: a flush may allocate (the output's page cache). */
	fflush(NULL);
	for (steps = 1; steps <= MAX_STEPS; steps++) {
		where_step = steps;
		where_phase = " (set-up)";
		if (op->set_up)
			op->set_up();
		where_phase = " (run)";
		ret = op->in_child ? step_in_child(op, steps, &err, &left) :
				     step_here(op, steps, &err, &left);
		where_phase = " (tear-down)";
		if (trace)
			fprintf(stderr, "ws-failnth: %s step %ld: ret %d errno %d left %u\n",
				op->name, steps, ret, ret ? err : 0, left);
		if (ret) {
			errno = err;
			if (!out_of_memory(err, op->oom_error))
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
	if (steps - 1 < op->min_steps) {
		fprintf(stderr, "ws-failnth: %s: %ld steps, fewer than the %ld of what it runs\n",
			op->name, steps - 1, op->min_steps);
		errors++;
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
	trace = getenv("WS_FAILNTH_TRACE") != NULL;
	child_step = mmap(NULL, PAGE, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (child_step == MAP_FAILED) {
		perror("ws-failnth: mmap");
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
