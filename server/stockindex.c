/*
 * stockindex.c - what the snapshot knows about each rule's images, for the
 * clients that ask with their hardware rather than with a version: the
 * stock ESP8266/ESP32 updaters, Tasmota and ESPHome (stock.c, esphome.c),
 * and the NoFUSS header form when it reports a chip size (check.c).
 *
 * Built by snapshot.c on the builder thread, then read-only:
 *   - per rule and image key (firmware, spiffs, minimal): whether the file
 *     was there, its size, MD5 and header (esp_header.c);
 *   - MD5 -> the first rule whose firmware (or minimal) image has it: a
 *     stock updater that sends no version is running that rule's target;
 *   - MAC -> the first rule that lists it: the device type of a stock
 *     updater pointed at /update with no device in the URL.
 * Both maps are open addressing over strings that live as long as the
 * snapshot (the MD5s here, the MACs in the rules), so lookups allocate
 * nothing.
 *
 * nf_stock_fits is the one test of "never offer what cannot fit" (issue 9
 * item 4), shared by every check form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

const char *const nf_image_keys[NF_KEY_COUNT] = {"firmware", "spiffs", "minimal"};

/* A string -> rule map; keys are borrowed. */
struct smap {
	const char **keys;
	long *vals;
	size_t cap; /* a power of two, at least twice the entries */
};

struct nf_stock_index {
	size_t rules;
	struct nf_image_info *info; /* rules * NF_KEY_COUNT */
	struct smap by_md5, by_mac;
};

struct nf_stock_index *nf_stock_index_new(size_t rules)
{
	struct nf_stock_index *x = calloc(1, sizeof *x);

	if (x == NULL)
		return NULL;
	x->rules = rules;
	x->info = calloc(rules * NF_KEY_COUNT + 1, sizeof *x->info);
	if (x->info == NULL) {
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
	smap_free(&x->by_md5);
	smap_free(&x->by_mac);
	free(x->info);
	free(x);
}

struct nf_image_info *nf_stock_image_slot(struct nf_stock_index *x, size_t rule,
                                          enum nf_image_key k)
{
	return rule < x->rules && (unsigned)k < NF_KEY_COUNT ? &x->info[rule * NF_KEY_COUNT + k]
	                                                     : NULL;
}

const struct nf_image_info *nf_stock_image(const struct nf_stock_index *x, long rule,
                                           enum nf_image_key k)
{
	const struct nf_image_info *i;

	if (x == NULL || rule < 0 || (size_t)rule >= x->rules || (unsigned)k >= NF_KEY_COUNT)
		return NULL;
	i = &x->info[(size_t)rule * NF_KEY_COUNT + k];
	return i->path != NULL ? i : NULL;
}

static int smap_init(struct smap *m, size_t entries)
{
	m->cap = 16;
	while (m->cap < entries * 2)
		m->cap *= 2;
	m->keys = calloc(m->cap, sizeof *m->keys);
	m->vals = calloc(m->cap, sizeof *m->vals);
	return m->keys != NULL && m->vals != NULL ? 0 : -1;
}

/* The slot of key, or the empty slot where it would go. */
static size_t smap_slot(const struct smap *m, const char *key, size_t len)
{
	size_t i = (size_t)nf_hash(key, len) & (m->cap - 1);

	while (m->keys[i] != NULL && (strlen(m->keys[i]) != len || memcmp(m->keys[i], key, len) != 0))
		i = (i + 1) & (m->cap - 1);
	return i;
}

/* Keeps the first rule given for a key: rules are tried in file order. */
static void smap_put_first(struct smap *m, const char *key, long val)
{
	size_t i = smap_slot(m, key, strlen(key));

	if (m->keys[i] == NULL) {
		m->keys[i] = key;
		m->vals[i] = val;
	}
}

static long smap_get(const struct smap *m, const char *key, size_t len)
{
	size_t i;

	if (m->cap == 0)
		return -1;
	i = smap_slot(m, key, len);
	return m->keys[i] != NULL ? m->vals[i] : -1;
}

int nf_stock_index_finish(struct nf_stock_index *x, const struct nf_rules *rules)
{
	size_t macs = 0, n;

	for (size_t r = 0; r < x->rules; r++) {
		nf_rules_macs(rules, r, &n);
		macs += n;
	}
	if (smap_init(&x->by_md5, x->rules * 2) != 0 || smap_init(&x->by_mac, macs) != 0)
		return -1;
	for (size_t r = 0; r < x->rules; r++) {
		const char *const *list = nf_rules_macs(rules, r, &n);
		for (enum nf_image_key k = NF_KEY_FIRMWARE; k < NF_KEY_COUNT; k++) {
			const struct nf_image_info *i = &x->info[r * NF_KEY_COUNT + k];
			if (k != NF_KEY_SPIFFS && i->present && i->md5[0] != '\0')
				smap_put_first(&x->by_md5, i->md5, (long)r);
		}
		for (size_t m = 0; m < n; m++)
			smap_put_first(&x->by_mac, list[m], (long)r);
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

bool nf_stock_fits(const struct nf_image_info *img, enum nf_chip_family family,
                   uint64_t free_space, uint64_t chip_size, bool filesystem, char *reason,
                   size_t cap)
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
		         (unsigned long long)(flash / 1024), (unsigned long long)(chip_size / 1024));
		return false;
	}
	return true;
}
