// SPDX-License-Identifier: GPL-2.0
/*
 * The base arm of "tools/ws bench --directmap": the x86_directmap suite's
 * churn workload on the unpatched kernel, built against it as an external
 * module.  In the base kernel, rmpupdate() calls adjust_direct_map() for
 * every transition, private or shared: if the page's direct-map mapping
 * is larger than 4K, set_memory_4k() splits it, and nothing restores it.
 * That function is static and the RMP instructions need SNP hardware, so
 * this module does what it does (lookup_address(), then set_memory_4k())
 * with the kernel's own set_memory_4k(), whose address the init script
 * reads from /proc/kallsyms: it is not exported.
 *
 * Writing N to /sys/module/dm_base_churn/parameters/run runs N seeded
 * random 4K transitions over 256 MiB (the suite's seed, blocks and
 * sequence), then shares every page; reading .../result gives the
 * figures, as the series' x86/snp_directmap_bench does.
 */
#include <linux/bitmap.h>
#include <linux/gfp.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/mutex.h>
#include <linux/prandom.h>
#include <linux/sched.h>
#include <linux/sched/clock.h>
#include <linux/slab.h>

#include <asm/pgtable.h>

#define BLOCK_ORDER	(PMD_SHIFT - PAGE_SHIFT)
#define BLOCK_PAGES	(1 << BLOCK_ORDER)
#define CHURN_BLOCKS	128
#define CHURN_SEED	20261123

static unsigned long set_memory_4k_addr;
module_param(set_memory_4k_addr, ulong, 0400);
MODULE_PARM_DESC(set_memory_4k_addr, "set_memory_4k() from /proc/kallsyms");

static char result[256] = "no run yet\n";
static DEFINE_MUTEX(run_lock);

struct churn {
	struct page	*blocks[CHURN_BLOCKS];
	unsigned int	levels[CHURN_BLOCKS];
	unsigned long	model[BITS_TO_LONGS(CHURN_BLOCKS * BLOCK_PAGES)];
	unsigned long	nr_private, splits;
	int		errors;
};

static unsigned int map_level(unsigned long addr)
{
	unsigned int level;

	if (!lookup_address(addr, &level))
		return PG_LEVEL_NONE;
	return level;
}

/* The base kernel's adjust_direct_map() for a 4K transition of @pfn. */
static int adjust_direct_map(struct churn *c, u64 pfn)
{
	int (*split)(unsigned long addr, int numpages) =
		(void *)set_memory_4k_addr;
	unsigned long vaddr = (unsigned long)pfn_to_kaddr(pfn);
	unsigned int level;
	pte_t *pte = lookup_address(vaddr, &level);

	if (!pte || pte_none(*pte) || level == PG_LEVEL_4K)
		return 0;
	c->splits++;
	return split(vaddr, 1);
}

static void churn_flip(struct churn *c, unsigned int bit)
{
	u64 pfn = page_to_pfn(c->blocks[bit / BLOCK_PAGES]) + bit % BLOCK_PAGES;

	c->errors += !!adjust_direct_map(c, pfn);
	if (__test_and_change_bit(bit, c->model))
		c->nr_private--;
	else
		c->nr_private++;
	/* As the series' churn does. */
	cond_resched();
}

static unsigned int blocks_as_before(struct churn *c)
{
	unsigned int b, n = 0;

	for (b = 0; b < CHURN_BLOCKS; b++)
		n += map_level((unsigned long)page_address(c->blocks[b])) ==
		     c->levels[b];
	return n;
}

static void churn_free(struct churn *c)
{
	int b;

	for (b = 0; b < CHURN_BLOCKS; b++)
		if (c->blocks[b])
			__free_pages(c->blocks[b], BLOCK_ORDER);
	kfree(c);
}

static int churn_run(unsigned long ops)
{
	struct churn *c = kzalloc(sizeof(*c), GFP_KERNEL);
	unsigned int large_mid, bit;
	u64 t0, t_churn, t_share;
	unsigned long shares;
	struct rnd_state rnd;
	int b;

	if (!c)
		return -ENOMEM;
	for (b = 0; b < CHURN_BLOCKS; b++) {
		c->blocks[b] = alloc_pages(GFP_KERNEL | __GFP_NOWARN, BLOCK_ORDER);
		if (!c->blocks[b]) {
			churn_free(c);
			return -ENOMEM;
		}
		c->levels[b] = map_level((unsigned long)page_address(c->blocks[b]));
	}

	prandom_seed_state(&rnd, CHURN_SEED);
	t0 = local_clock();
	while (ops--)
		churn_flip(c, prandom_u32_state(&rnd) % (CHURN_BLOCKS * BLOCK_PAGES));
	t_churn = local_clock() - t0;
	large_mid = blocks_as_before(c);
	shares = c->nr_private;
	t0 = local_clock();
	for_each_set_bit(bit, c->model, CHURN_BLOCKS * BLOCK_PAGES)
		churn_flip(c, bit);
	t_share = local_clock() - t0;

	snprintf(result, sizeof(result),
		 "churn_ns %llu shares %lu share_ns %llu errors %d mismatches 0 violations 0 blocks %d large_after_churn %u large_after_share %u splits %lu collapses 0 restores 0 batches 0\n",
		 t_churn, shares, t_share, c->errors, CHURN_BLOCKS, large_mid,
		 blocks_as_before(c), c->splits);
	churn_free(c);
	return 0;
}

static int run_set(const char *val, const struct kernel_param *kp)
{
	unsigned long ops;
	int ret = kstrtoul(val, 0, &ops);

	if (ret)
		return ret;
	if (!ops || ops > 10000000 || !set_memory_4k_addr)
		return -EINVAL;
	mutex_lock(&run_lock);
	ret = churn_run(ops);
	mutex_unlock(&run_lock);
	return ret;
}

static const struct kernel_param_ops run_ops = {
	.set = run_set,
};
module_param_cb(run, &run_ops, NULL, 0200);
MODULE_PARM_DESC(run, "Write N: run N transitions");

static int result_get(char *buf, const struct kernel_param *kp)
{
	int len;

	mutex_lock(&run_lock);
	len = sysfs_emit(buf, "%s", result);
	mutex_unlock(&run_lock);
	return len;
}

static const struct kernel_param_ops result_ops = {
	.get = result_get,
};
module_param_cb(result, &result_ops, NULL, 0400);
MODULE_PARM_DESC(result, "The last run's figures");

MODULE_DESCRIPTION("The base arm of the SEV-SNP direct-map benchmark");
MODULE_LICENSE("GPL");
