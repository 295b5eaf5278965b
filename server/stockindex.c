/*
 * stockindex.c - what the snapshot knows about each rule's images, for the
 * clients that ask with their hardware rather than with a version: the
 * stock ESP8266/ESP32 updaters, Tasmota and ESPHome (stock.c, esphome.c),
 * and the NoFUSS header form when it reports a chip size (check.c).
 *
 * Built by snapshot.c on the builder thread, then read-only:
 *   - per distinct image path the rules name: whether the file was there,
 *     its size, MD5 and header (esp_header.c); per rule and image key
 *     (firmware, spiffs, minimal) a 4-byte index into those, so that
 *     100,000 rules naming one image cost 1.2 MB, not one entry each;
 *   - MD5 -> the first rule whose firmware (or minimal) image has it: a
 *     stock updater that sends no version is running that rule's target;
 *   - MAC -> the first rule that lists it: the device type of a stock
 *     updater pointed at /update with no device in the URL.
 * The maps are open addressing over strings that live as long as the
 * snapshot (the paths and MACs in the rules, the MD5s here), so lookups
 * allocate nothing.
 *
 * nf_stock_fits is the one test of "never offer what cannot fit" (issue 9
 * item 4), shared by every check form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

const char *const nf_image_keys[NF_KEY_COUNT] = {"firmware", "spiffs", "minimal"};

/* A string -> number map; keys are borrowed. Grows at half full. */
struct smap {
	const char **keys;
	long *vals;
	size_t cap, count; /* cap: 0, or a power of two */
};

struct nf_stock_index {
	size_t rules;
	uint32_t *slot;             /* rules * NF_KEY_COUNT: 1 + index into info, 0: none */
	struct nf_image_info *info; /* one per distinct path the rules name */
	size_t ninfo, capinfo;
	struct smap by_path, by_md5, by_mac;
};

struct nf_stock_index *nf_stock_index_new(size_t rules)
{
	struct nf_stock_index *x = calloc(1, sizeof *x);

	if (x == NULL)
		return NULL;
	x->rules = rules;
	x->slot = calloc(rules * NF_KEY_COUNT + 1, sizeof *x->slot);
	if (x->slot == NULL) {
		free(x);
		return NULL;
	}
	return x;
}

static void smap_free(struct smap *m)
{
	free(m->keys);
	free(m->vals);
}

void nf_stock_index_free(struct nf_stock_index *x)
{
	if (x == NULL)
		return;
	smap_free(&x->by_path);
	smap_free(&x->by_md5);
	smap_free(&x->by_mac);
	free(x->info);
	free(x->slot);
	free(x);
}

/* The slot of key, or the empty slot where it would go; m->cap > 0. */
static size_t smap_slot(const struct smap *m, const char *key, size_t len)
{
	size_t i = (size_t)nf_hash(key, len) & (m->cap - 1);

	while (m->keys[i] != NULL &&
	       (strlen(m->keys[i]) != len || memcmp(m->keys[i], key, len) != 0))
		i = (i + 1) & (m->cap - 1);
	return i;
}

static int smap_grow(struct smap *m)
{
	struct smap g = {.cap = m->cap ? m->cap * 2 : 16};

	g.keys = calloc(g.cap, sizeof *g.keys);
	g.vals = calloc(g.cap, sizeof *g.vals);
	if (g.keys == NULL || g.vals == NULL) {
		smap_free(&g);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++)
		if (m->keys[i] != NULL) {
			size_t j = smap_slot(&g, m->keys[i], strlen(m->keys[i]));
			g.keys[j] = m->keys[i];
			g.vals[j] = m->vals[i];
		}
	g.count = m->count;
	smap_free(m);
	*m = g;
	return 0;
}

/* The value of key, or -1. */
static long smap_get(const struct smap *m, const char *key, size_t len)
{
	size_t i;

	if (m->cap == 0)
		return -1;
	i = smap_slot(m, key, len);
	return m->keys[i] != NULL ? m->vals[i] : -1;
}

/* Keeps the first value given for a key: rules are tried in file order.
 * Returns 0, or -1 when out of memory. */
static int smap_put_first(struct smap *m, const char *key, long val)
{
	size_t i;

	if ((m->count + 1) * 2 > m->cap && smap_grow(m) != 0)
		return -1;
	i = smap_slot(m, key, strlen(key));
	if (m->keys[i] == NULL) {
		m->keys[i] = key;
		m->vals[i] = val;
		m->count++;
	}
	return 0;
}

struct nf_image_info *nf_stock_image_add(struct nf_stock_index *x, size_t rule, enum nf_image_key k,
                                         const char *path, bool *fresh)
{
	long i = smap_get(&x->by_path, path, strlen(path));

	*fresh = false;
	if (rule >= x->rules || (unsigned)k >= NF_KEY_COUNT)
		return NULL;
	if (i < 0) {
		if (x->ninfo == x->capinfo) {
			size_t cap = x->capinfo ? x->capinfo * 2 : 16;
			struct nf_image_info *grown = realloc(x->info, cap * sizeof *grown);
			if (grown == NULL)
				return NULL;
			x->info = grown;
			x->capinfo = cap;
		}
		if (smap_put_first(&x->by_path, path, (long)x->ninfo) != 0)
			return NULL;
		i = (long)x->ninfo++;
		x->info[i] = (struct nf_image_info){.path = path};
		nf_record_image_key(path, x->info[i].key);
		*fresh = true;
	}
	x->slot[rule * NF_KEY_COUNT + k] = (uint32_t)i + 1;
	return &x->info[i];
}

const struct nf_image_info *nf_stock_image(const struct nf_stock_index *x, long rule,
                                           enum nf_image_key k)
{
	uint32_t i;

	if (x == NULL || rule < 0 || (size_t)rule >= x->rules || (unsigned)k >= NF_KEY_COUNT)
		return NULL;
	i = x->slot[(size_t)rule * NF_KEY_COUNT + k];
	return i != 0 ? &x->info[i - 1] : NULL;
}

int nf_stock_index_finish(struct nf_stock_index *x, const struct nf_rules *rules)
{
	for (size_t r = 0; r < x->rules; r++) {
		size_t n;
		const char *const *list = nf_rules_macs(rules, r, &n);
		for (enum nf_image_key k = NF_KEY_FIRMWARE; k < NF_KEY_COUNT; k++) {
			const struct nf_image_info *i = nf_stock_image(x, (long)r, k);
			if (k != NF_KEY_SPIFFS && i != NULL && i->present && i->md5[0] != '\0' &&
			    smap_put_first(&x->by_md5, i->md5, (long)r) != 0)
				return -1;
		}
		for (size_t m = 0; m < n; m++)
			if (smap_put_first(&x->by_mac, list[m], (long)r) != 0)
				return -1;
	}
	return 0;
}

long nf_stock_rule_by_md5(const struct nf_stock_index *x, const char *md5)
{
	char lower[NF_MD5_HEX];
	size_t len = md5 != NULL ? strlen(md5) : 0;

	if (x == NULL || len != NF_MD5_HEX - 1)
		return -1;
	for (size_t i = 0; i < len; i++)
		lower[i] = (char)(md5[i] >= 'A' && md5[i] <= 'F' ? md5[i] - 'A' + 'a' : md5[i]);
	lower[len] = '\0';
	return smap_get(&x->by_md5, lower, len);
}

long nf_stock_rule_by_mac(const struct nf_stock_index *x, const char *mac)
{
	return x == NULL || mac == NULL ? -1 : smap_get(&x->by_mac, mac, strlen(mac));
}

/* Rounded up for the image, down for the space: the reason never makes a
 * near miss look like a fit. */
static unsigned long long kib_up(uint64_t n)
{
	return (unsigned long long)((n + 1023) / 1024);
}

bool nf_stock_fits(const struct nf_image_info *img, enum nf_chip_family family, uint64_t free_space,
                   uint64_t chip_size, bool filesystem, char *reason, size_t cap)
{
	uint64_t flash;

	reason[0] = '\0';
	/* In filesystem mode the updaters report the sketch space, not the
	 * filesystem's, and a filesystem image has no ESP header. */
	if (img == NULL || !img->present || filesystem)
		return true;
	if (free_space > 0 && img->size > free_space) {
		snprintf(reason, cap, "image %llu KiB, %llu KiB free", kib_up(img->size),
		         (unsigned long long)(free_space / 1024));
		return false;
	}
	if (img->hdr.format != NF_IMAGE_ESP || chip_size == 0)
		return true;
	if (img->hdr.family != NF_CHIP_UNKNOWN)
		family = img->hdr.family;
	flash = nf_esp_flash_bytes(family, img->hdr.flash_size_code);
	if (flash > chip_size) {
		snprintf(reason, cap, "image built for %llu KiB flash, chip has %llu KiB",
		         (unsigned long long)(flash / 1024),
		         (unsigned long long)(chip_size / 1024));
		return false;
	}
	return true;
}
