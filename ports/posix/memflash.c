/*
 * memflash.c - the memory flash: a flash backend for the fleet simulator,
 * where one process runs thousands of devices and a flash directory each
 * would cost thousands of files and gigabytes.
 *
 * It keeps what the flash directory keeps, minus the bytes. An image being
 * written is read as it streams in: its first NF_POSIX_IMAGE_MIN bytes (the
 * ESP header and the metadata) are held, and two MD5s run over it, one of
 * the whole image (the running sketch's MD5 the updater reports) and one of
 * the payload (what the metadata's MD5 must match). At finish the image is
 * judged exactly as the directory's bootloader judges a file
 * (nf_posix_image_verify_file): the headers parse, the length is the size
 * the metadata records, the payload MD5 matches, and the kind fits the slot.
 * Only the verdict and the version, flags, size and MD5 are kept: about 60
 * bytes per image, and nothing at all between writes but the struct.
 *
 * Committing is switching, and only an image that verified is committed (as
 * the directory verifies its .new file): a filesystem replaces the old one
 * at once (the directory renames fs.new over fs.bin), a firmware becomes the
 * trial slot of the next boot (the directory rewrites its state file). The bootloader,
 * nf_posix_memflash_boot, runs the directory's own policy (bootloader.c):
 * the trial slot once, a revert when it did not confirm itself, a fallback
 * to the other slot when the confirmed one is broken, bricked when neither
 * boots. Power cuts are not simulated here; the directory does that.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "common.h"
#include "nofuss/posix.h"

/* An image being written: held from begin to finish or abort. */
struct nf_posix_memwrite {
	enum nf_image image;
	int target; /* firmware: the slot written; -1 for the filesystem */
	uint32_t size, written;
	bool checked_header; /* firmware: byte 3 checked against the chip size */
	uint8_t head[NF_POSIX_IMAGE_MIN];
	uint8_t last4[4];  /* the last bytes written: a signature trailer's length */
	uint32_t recorded; /* the size the header records, once it is in (else UINT32_MAX) */
	EVP_MD_CTX *whole, *payload;
};

const char *nf_posix_mem_strstatus(int status)
{
	static const char *const text[] = {
	    "valid",
	    "never written",
	    "not a NoFUSS simulator image",
	    "length differs from the size the image records (torn write?)",
	    "payload MD5 mismatch (corrupt or mixed image)",
	    "wrong kind of image for this place",
	};
	return status >= 0 && (size_t)status < sizeof text / sizeof text[0] ? text[status] : "?";
}

/* ---- one image streaming in ---- */

static void write_free(struct nf_posix_memwrite *w)
{
	if (w == NULL)
		return;
	EVP_MD_CTX_free(w->whole);
	EVP_MD_CTX_free(w->payload);
	free(w);
}

/* A new write of size bytes, or NULL when out of memory (or OpenSSL fails). */
static struct nf_posix_memwrite *write_new(enum nf_image image, int target, uint32_t size)
{
	struct nf_posix_memwrite *w = calloc(1, sizeof *w);

	if (w == NULL)
		return NULL;
	w->image = image;
	w->target = target;
	w->size = size;
	w->recorded = UINT32_MAX;
	w->whole = EVP_MD_CTX_new();
	w->payload = EVP_MD_CTX_new();
	if (w->whole == NULL || w->payload == NULL ||
	    EVP_DigestInit_ex(w->whole, EVP_md5(), NULL) != 1 ||
	    EVP_DigestInit_ex(w->payload, EVP_md5(), NULL) != 1) {
		write_free(w);
		return NULL;
	}
	return w;
}

/* Keeps the last 4 bytes written, for a signature trailer's length. */
static void keep_last4(struct nf_posix_memwrite *w, const uint8_t *data, size_t len)
{
	if (len >= sizeof w->last4) {
		memcpy(w->last4, data + len - sizeof w->last4, sizeof w->last4);
		return;
	}
	memmove(w->last4, w->last4 + len, sizeof w->last4 - len);
	memcpy(w->last4 + sizeof w->last4 - len, data, len);
}

/* Takes in len more bytes (the caller has checked they fit w->size). The
 * payload MD5 covers [NF_POSIX_IMAGE_MIN, recorded size): a signature
 * trailer after the image is not part of it, as on the directory flash. */
static int write_feed(struct nf_posix_memwrite *w, const uint8_t *data, size_t len)
{
	struct nf_posix_image info;
	size_t head = 0, payload;

	if (w->written < NF_POSIX_IMAGE_MIN) {
		head = NF_POSIX_IMAGE_MIN - w->written;
		if (head > len)
			head = len;
		memcpy(w->head + w->written, data, head);
		if (w->written + head == NF_POSIX_IMAGE_MIN &&
		    nf_posix_image_parse(w->head, NF_POSIX_IMAGE_MIN, &info, NULL, 0) == 0)
			w->recorded = info.size;
	}
	payload = len - head;
	if (w->written + len > w->recorded)
		payload = w->written + head >= w->recorded ? 0 : w->recorded - w->written - head;
	if (EVP_DigestUpdate(w->whole, data, len) != 1 ||
	    (payload > 0 && EVP_DigestUpdate(w->payload, data + head, payload) != 1))
		return -1;
	keep_last4(w, data, len);
	w->written += (uint32_t)len;
	return 0;
}

/* Judges a whole write as the directory's bootloader judges a file, and
 * describes it in *out. */
static void write_result(struct nf_posix_memwrite *w, struct nf_posix_memimage *out)
{
	struct nf_posix_image info;
	uint8_t digest[16];
	unsigned int len = 0;

	memset(out, 0, sizeof *out);
	out->size = w->written;
	out->kind = (uint8_t)w->image;
	if (EVP_DigestFinal_ex(w->whole, out->md5, &len) != 1 || len != 16)
		memset(out->md5, 0xFF, sizeof out->md5);
	if (w->written < NF_POSIX_IMAGE_MIN ||
	    nf_posix_image_parse(w->head, NF_POSIX_IMAGE_MIN, &info, NULL, 0) != 0) {
		out->status = NF_POSIX_MEM_HEADER;
		return;
	}
	memcpy(out->version, info.version, sizeof out->version);
	out->flags = info.flags;
	out->kind = (uint8_t)info.kind;
	len = 0;
	if (info.size != w->written && !nf_posix_signed_tail_bytes(w->last4, info.size, w->written))
		out->status = NF_POSIX_MEM_SIZE;
	else if (EVP_DigestFinal_ex(w->payload, digest, &len) != 1 || len != 16 ||
	         memcmp(digest, info.payload_md5, 16) != 0)
		out->status = NF_POSIX_MEM_MD5;
	else if (info.kind != w->image)
		out->status = NF_POSIX_MEM_KIND;
	else
		out->status = NF_POSIX_MEM_VALID;
}

/* Runs a whole image through a write: provisioning. */
static int load(enum nf_image image, const uint8_t *data, size_t len, uint32_t room,
                struct nf_posix_memimage *out, char *err, size_t errcap)
{
	const char *what = image == NF_IMAGE_FIRMWARE ? "firmware" : "filesystem";
	struct nf_posix_memwrite *w;
	int rc = -1;

	if (len == 0 || len > room) {
		nf_errf(err, errcap, "%s image of %zu bytes does not fit %u bytes", what, len, room);
		return -1;
	}
	w = write_new(image, image == NF_IMAGE_FIRMWARE ? 0 : -1, (uint32_t)len);
	if (w == NULL) {
		nf_errf(err, errcap, "out of memory");
		return -1;
	}
	if (write_feed(w, data, len) != 0) {
		nf_errf(err, errcap, "MD5 failed (OpenSSL)");
		goto done;
	}
	write_result(w, out);
	if (out->status != NF_POSIX_MEM_VALID) {
		nf_errf(err, errcap, "%s image: %s", what, nf_posix_mem_strstatus(out->status));
		goto done;
	}
	rc = 0;
done:
	write_free(w);
	return rc;
}

/* ---- provisioning, booting ---- */

int nf_posix_memflash_provision(struct nf_posix_memflash *m, const struct nf_posix_geometry *g,
                                const uint8_t *fw, size_t fwlen, const uint8_t *fs, size_t fslen,
                                char *err, size_t errcap)
{
	memset(m, 0, sizeof *m);
	m->trial = -1;
	m->running = -1;
	m->slot[0].status = m->slot[1].status = m->fs.status = NF_POSIX_MEM_EMPTY;
	m->slot[1].kind = NF_IMAGE_FIRMWARE;
	m->fs.kind = NF_IMAGE_FILESYSTEM;
	if (!nf_posix_geometry_ok(g)) {
		nf_errf(err, errcap, "flash geometry out of range (each size %u to %u bytes)",
		     NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX);
		return -1;
	}
	m->geometry = *g;
	if (load(NF_IMAGE_FIRMWARE, fw, fwlen, g->slot_size, &m->slot[0], err, errcap) != 0)
		return -1;
	if (fs != NULL &&
	    load(NF_IMAGE_FILESYSTEM, fs, fslen, g->fs_size, &m->fs, err, errcap) != 0)
		return -1;
	return 0;
}

static void describe(const struct nf_posix_memimage *s, struct nf_posix_image *out)
{
	memset(out, 0, sizeof *out);
	out->kind = (enum nf_image)s->kind;
	memcpy(out->version, s->version, sizeof out->version);
	out->flags = s->flags;
	out->size = s->size;
}

/* Whether slot holds a bootable firmware: 0 with *fw, or -1 with why. */
static int verify_slot(void *ctx, int slot, struct nf_posix_image *fw, char *why, size_t cap)
{
	const struct nf_posix_memimage *s = &((struct nf_posix_memflash *)ctx)->slot[slot];

	if (s->status == NF_POSIX_MEM_VALID) {
		describe(s, fw);
		return 0;
	}
	nf_errf(why, cap, "%s",
	              s->status == NF_POSIX_MEM_KIND ? "it holds a filesystem image"
	                                             : nf_posix_mem_strstatus(s->status));
	return -1;
}

static void set_slots(struct nf_posix_memflash *m, const struct nf_posix_slots *s)
{
	m->active = (int8_t)s->active;
	m->trial = (int8_t)s->trial;
	m->attempts = (uint8_t)s->attempts;
}

static struct nf_posix_slots get_slots(const struct nf_posix_memflash *m)
{
	return (struct nf_posix_slots){m->active, m->trial, m->attempts};
}

/* Keeps the bootloader's next choice: memory does not fail. */
static int save_slots(void *ctx, const struct nf_posix_slots *next, char *err, size_t errcap)
{
	(void)err;
	(void)errcap;
	set_slots(ctx, next);
	return 0;
}

int nf_posix_memflash_boot(struct nf_posix_memflash *m, struct nf_posix_boot *b, char *err,
                           size_t errcap)
{
	const struct nf_posix_bootloader bl = {m, verify_slot, save_slots};
	struct nf_posix_slots slots = get_slots(m);

	memset(b, 0, sizeof *b);
	nf_posix_memflash_close(m); /* a write the reset cut short is gone */
	m->running = -1;
	if (nf_posix_bootloader_run(&bl, &slots, b, err, errcap) != 0)
		return -1;
	m->running = (int8_t)b->slot;
	describe(&m->slot[b->slot], &b->firmware);
	describe(&m->fs, &b->fs);
	b->fs_valid = m->fs.status == NF_POSIX_MEM_VALID;
	if (!b->fs_valid)
		nf_errf(b->fs_error, sizeof b->fs_error, "%s",
		              m->fs.status == NF_POSIX_MEM_KIND
		                  ? "the filesystem holds a firmware image"
		                  : nf_posix_mem_strstatus(m->fs.status));
	return 0;
}

int nf_posix_memflash_confirm(struct nf_posix_memflash *m)
{
	struct nf_posix_slots now = get_slots(m), next;

	if (m->running < 0)
		return -1;
	if (nf_posix_slots_confirm(&now, m->running, &next))
		set_slots(m, &next);
	return 0;
}

void nf_posix_memflash_close(struct nf_posix_memflash *m)
{
	write_free(m->w);
	m->w = NULL;
}

/* ---- the backend: the port contract's flash calls on memory ---- */

static struct nf_posix_memflash *mem_of(const struct nf_posix *p)
{
	return p->flash_ctx;
}

static int mem_begin(struct nf_posix *p, enum nf_image image, uint32_t size)
{
	struct nf_posix_memflash *m = mem_of(p);
	bool fw = image == NF_IMAGE_FIRMWARE;
	uint32_t room;

	nf_posix_memflash_close(m); /* a begin without finish or abort before it */
	if (m->running < 0) {
		nf_posix_logf(p, NULL, "flash: not booted");
		return -1;
	}
	room = fw ? m->geometry.slot_size : m->geometry.fs_size;
	if (size == 0 || size > room) {
		nf_posix_logf(p, NULL, "flash: a %u-byte %s does not fit the %u bytes of %s", size,
		              fw ? "firmware" : "filesystem", room,
		              fw ? (m->running == 0 ? "slot b" : "slot a") : "the filesystem");
		return -1;
	}
	m->w = write_new(image, fw ? 1 - m->running : -1, size);
	if (m->w == NULL) {
		nf_posix_logf(p, NULL, "flash: out of memory");
		return -1;
	}
	return 0;
}

static int mem_write(struct nf_posix *p, const uint8_t *data, size_t len)
{
	struct nf_posix_memwrite *w = mem_of(p)->w;

	if (w == NULL)
		return -1;
	if (len > w->size - w->written) {
		nf_posix_logf(p, NULL, "flash: more than the %u bytes announced", w->size);
		return -1;
	}
	if (write_feed(w, data, len) != 0) {
		nf_posix_logf(p, NULL, "flash: MD5 failed (OpenSSL)");
		return -1;
	}
	/* The ESP updater's check (docs/PEERS.md section 5), once, as flash.c. */
	if (w->image == NF_IMAGE_FIRMWARE && !w->checked_header && w->written >= 4) {
		w->checked_header = true;
		if (nf_posix_check_chip(p, w->head, mem_of(p)->geometry.chip_size) != 0)
			return -1;
	}
	return 0;
}

static int mem_finish(struct nf_posix *p)
{
	struct nf_posix_memflash *m = mem_of(p);
	struct nf_posix_memwrite *w = m->w;
	struct nf_posix_memimage img;
	int rc = -1;

	if (w == NULL)
		return -1;
	if (w->written != w->size) {
		nf_posix_logf(p, NULL, "flash: %u of %u bytes written", w->written, w->size);
		goto done;
	}
	/* Committed only when it verifies whole, as the directory verifies
	 * the file it wrote: its metadata's payload MD5 is checked even when
	 * the server sent no x-MD5. */
	write_result(w, &img);
	if (img.status != NF_POSIX_MEM_VALID) {
		nf_posix_logf(p, NULL, "flash: not committed: %s",
		              nf_posix_mem_strstatus(img.status));
		goto done;
	}
	if (w->image == NF_IMAGE_FIRMWARE) {
		struct nf_posix_slots next, now = get_slots(m);

		m->slot[w->target] = img;
		nf_posix_slots_try(&now, w->target, &next);
		set_slots(m, &next);
	} else {
		m->fs = img;
	}
	rc = 0;
done:
	nf_posix_memflash_close(m);
	return rc;
}

static void mem_abort(struct nf_posix *p)
{
	nf_posix_memflash_close(mem_of(p));
}

static void mem_info(const struct nf_posix *p, struct nf_posix_flash_info *out)
{
	const struct nf_posix_memflash *m = mem_of(p);

	out->slot_size = m->geometry.slot_size;
	out->chip_size = m->geometry.chip_size;
	out->sketch_size = 0;
	out->sketch_md5[0] = '\0';
	if (m->running < 0)
		return;
	out->sketch_size = m->slot[m->running].size;
	nf_hex_encode(m->slot[m->running].md5, sizeof m->slot[m->running].md5, out->sketch_md5);
}

static int mem_boot(struct nf_posix *p, struct nf_posix_boot *b, char *err, size_t errcap)
{
	return nf_posix_memflash_boot(mem_of(p), b, err, errcap);
}

static int mem_confirm(struct nf_posix *p, char *err, size_t errcap)
{
	if (nf_posix_memflash_confirm(mem_of(p)) != 0) {
		nf_errf(err, errcap, "nothing booted");
		return -1;
	}
	return 0;
}

static void mem_close(struct nf_posix *p)
{
	nf_posix_memflash_close(mem_of(p));
}

static const struct nf_posix_flash_ops memflash_ops = {
    .name = "memory",
    .begin = mem_begin,
    .write = mem_write,
    .finish = mem_finish,
    .abort = mem_abort,
    .info = mem_info,
    .boot = mem_boot,
    .confirm = mem_confirm,
    .close = mem_close,
};

void nf_posix_use_memflash(struct nf_posix *p, struct nf_posix_memflash *m)
{
	p->flash_ops = &memflash_ops;
	p->flash_ctx = m;
}
