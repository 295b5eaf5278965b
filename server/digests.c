/*
 * digests.c - MD5s of images, keyed by file identity.
 *
 * An entry holds a file's identity (device, inode, size, mtime, ctime) and
 * the MD5 computed for it. Lookups go by (device, inode) and succeed only
 * when the whole identity still matches, so an image rewritten in place or
 * replaced by a rename is never answered with its old MD5. Keying by
 * identity, not path, also lets two names of one file (a symlink) share one
 * entry.
 *
 * An entry may also carry the result of verifying the file's signature
 * (signed.c), so that, like its MD5, it is computed once per file.
 *
 * Two users: each snapshot has an immutable table of the images its rules
 * name (filled by the builder, then only read), and image.c keeps a bounded
 * table of late MD5s on the loop thread. A table does no locking: one
 * writer, or any number of readers once the writer is done.
 *
 * Open addressing with linear probing in a power-of-two array that doubles
 * when half full; there is no removal, only nf_digests_clear.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

#define NF_DIGESTS_START 16 /* slots of a new table */

struct entry {
	bool used;
	struct nf_file_id id;
	char md5[NF_MD5_HEX];  /* "" when not computed (--check) */
	int signature;         /* NF_DIGEST_UNCHECKED or an enum nf_sign_err */
	char *why;             /* NULL, or the reason of a refusal (owned) */
};

struct nf_digests {
	struct entry *slots;
	size_t cap;   /* a power of two */
	size_t count;
};

struct nf_digests *nf_digests_new(void)
{
	struct nf_digests *d = calloc(1, sizeof *d);

	if (d == NULL)
		return NULL;
	d->cap = NF_DIGESTS_START;
	d->slots = calloc(d->cap, sizeof *d->slots);
	if (d->slots == NULL) {
		free(d);
		return NULL;
	}
	return d;
}

static void free_reasons(struct nf_digests *d)
{
	for (size_t i = 0; i < d->cap; i++)
		free(d->slots[i].why);
}

void nf_digests_free(struct nf_digests *d)
{
	if (d == NULL)
		return;
	free_reasons(d);
	free(d->slots);
	free(d);
}

static size_t slot_of(const struct nf_digests *d, dev_t dev, ino_t ino)
{
	uint64_t key[2] = {(uint64_t)dev, (uint64_t)ino};

	return (size_t)nf_hash((const char *)key, sizeof key) & (d->cap - 1);
}

/* The slot holding (dev, ino), or the free slot where it would go. */
static struct entry *find(const struct nf_digests *d, dev_t dev, ino_t ino)
{
	size_t i = slot_of(d, dev, ino);

	while (d->slots[i].used && (d->slots[i].id.dev != dev || d->slots[i].id.ino != ino))
		i = (i + 1) & (d->cap - 1);
	return &d->slots[i];
}

const char *nf_digests_get(const struct nf_digests *d, const struct nf_file_id *id)
{
	const struct entry *e = find(d, id->dev, id->ino);

	return e->used && nf_file_id_equal(&e->id, id) && e->md5[0] != '\0' ? e->md5 : NULL;
}

int nf_digests_signature(const struct nf_digests *d, const struct nf_file_id *id,
                         const char **why)
{
	const struct entry *e = find(d, id->dev, id->ino);

	if (!e->used || !nf_file_id_equal(&e->id, id))
		return NF_DIGEST_UNCHECKED;
	if (why != NULL)
		*why = e->why != NULL ? e->why : "";
	return e->signature;
}

static int grow(struct nf_digests *d)
{
	struct entry *old = d->slots;
	size_t old_cap = d->cap;
	struct entry *slots = calloc(old_cap * 2, sizeof *slots);

	if (slots == NULL)
		return -1;
	d->slots = slots;
	d->cap = old_cap * 2;
	for (size_t i = 0; i < old_cap; i++)
		if (old[i].used)
			*find(d, old[i].id.dev, old[i].id.ino) = old[i];
	free(old);
	return 0;
}

int nf_digests_put(struct nf_digests *d, const struct nf_file_id *id, const char *md5)
{
	return nf_digests_put_checked(d, id, md5, NF_DIGEST_UNCHECKED, NULL);
}

int nf_digests_put_checked(struct nf_digests *d, const struct nf_file_id *id, const char *md5,
                           int signature, const char *why)
{
	char *copy = NULL;
	struct entry *e;

	if (why != NULL && why[0] != '\0' && (copy = strdup(why)) == NULL)
		return -1;
	if ((d->count + 1) * 2 > d->cap && grow(d) != 0) {
		free(copy);
		return -1;
	}
	e = find(d, id->dev, id->ino);
	if (!e->used)
		d->count++;
	free(e->why);
	e->why = copy;
	e->used = true;
	e->id = *id;
	snprintf(e->md5, sizeof e->md5, "%s", md5);
	e->signature = signature;
	return 0;
}

size_t nf_digests_count(const struct nf_digests *d)
{
	return d->count;
}

void nf_digests_clear(struct nf_digests *d)
{
	free_reasons(d);
	memset(d->slots, 0, d->cap * sizeof *d->slots);
	d->count = 0;
}
