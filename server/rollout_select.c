/*
 * rollout_select.c - which devices a rollout offers its release to (issue
 * 10 item 2), as pure functions the check path calls on the loop thread
 * (plan.c): no I/O, no allocation, no lock, a few hundred nanoseconds.
 *
 * Selection: a device's bucket in a rollout is a hash of the rollout's id
 * and the device's identity (its MAC, or "device@ip" for path-form checks),
 * reduced to 0..NF_ROLLOUT_BUCKETS-1; the device is in the phase at p% when
 * its bucket is below p x 100. So a device picked at 1% stays picked at
 * 10% (raising the percentage only adds devices), the same device lands in
 * unrelated buckets in two rollouts (the first percent is not always the
 * same devices), and every node, and every restart, picks the same
 * devices. The hash is FNV-1a (64-bit) over "ID:KEY" with SplitMix64's
 * finaliser to spread FNV's low bits: fixed for good, since changing it
 * would move devices between phases of a running rollout.
 *
 * Eligibility: the release's device type, the version range (PHP's
 * version_compare, as everywhere in nofuss), the MACs and tags a rollout
 * may be narrowed to, and not already running the release's version.
 */
#include <stdio.h>
#include <string.h>

#include "nofussd.h"

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME  0x100000001b3ULL

static uint64_t fnv(uint64_t h, const char *s, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= FNV_PRIME;
	}
	return h;
}

unsigned nf_rollout_bucket(int64_t rollout_id, const char *key)
{
	/* "ID:" in decimal, as printf's %lld would write it, without printf:
	 * this runs on every check a rollout could answer. */
	char id[24];
	size_t n = sizeof id;
	uint64_t v = rollout_id < 0 ? -(uint64_t)rollout_id : (uint64_t)rollout_id;

	id[--n] = ':';
	do {
		id[--n] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	if (rollout_id < 0)
		id[--n] = '-';
	uint64_t h = fnv(fnv(FNV_OFFSET, id + n, sizeof id - n), key, strlen(key));

	h ^= h >> 30;
	h *= 0xbf58476d1ce4e5b9ULL;
	h ^= h >> 27;
	h *= 0x94d049bb133111ebULL;
	h ^= h >> 31;
	return (unsigned)(h % NF_ROLLOUT_BUCKETS);
}

bool nf_rollout_selected(int64_t rollout_id, const char *key, unsigned percent)
{
	return nf_rollout_bucket(rollout_id, key) < percent * (NF_ROLLOUT_BUCKETS / 100);
}

/* Whether item is one of list's comma-separated entries. */
static bool listed(const char *list, const char *item)
{
	size_t n = strlen(item);

	while (*list != '\0') {
		size_t k = strcspn(list, ",");
		if (k == n && memcmp(list, item, n) == 0)
			return true;
		list += k + (list[k] == ',');
	}
	return false;
}

/* Whether the comma-separated lists a and b share an entry. */
static bool share(const char *a, const char *b)
{
	char item[NF_STORE_MAX_TAG];

	while (*a != '\0') {
		size_t k = strcspn(a, ",");
		if (k < sizeof item) {
			memcpy(item, a, k);
			item[k] = '\0';
			if (listed(b, item))
				return true;
		}
		a += k + (a[k] == ',');
	}
	return false;
}

enum nf_rollout_fit nf_rollout_eligible(const struct nf_rollout *ro, const char *release_version,
                                        const struct nf_rollout_device *d)
{
	if (strcmp(d->device, ro->device) != 0)
		return NF_FIT_OTHER_TYPE;
	if (strcmp(d->version, release_version) == 0)
		return NF_FIT_CURRENT;
	if (ro->min_version[0] != '\0' && nf_vercmp(d->version, ro->min_version) < 0)
		return NF_FIT_BELOW_MIN;
	if (ro->max_version[0] != '\0' && nf_vercmp(d->version, ro->max_version) > 0)
		return NF_FIT_ABOVE_MAX;
	if (ro->macs[0] != '\0' && (d->mac == NULL || !listed(ro->macs, d->mac)))
		return NF_FIT_NOT_LISTED;
	if (ro->tags[0] != '\0' && (d->tags == NULL || !share(ro->tags, d->tags)))
		return NF_FIT_NO_TAG;
	return NF_FIT_YES;
}

const char *nf_rollout_fit_name(enum nf_rollout_fit fit)
{
	static const char *const names[NF_FIT_COUNT] = {
	    "eligible",        "another device type",        "already on the release's version",
	    "below min_version", "above max_version", "not among the rollout's MACs",
	    "none of the rollout's tags",
	};
	return (unsigned)fit < NF_FIT_COUNT ? names[fit] : "?";
}
