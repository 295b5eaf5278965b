/*
 * flash.c - the flash directory: an ESP8266's flash modelled as files, with
 * two firmware slots and one filesystem, plus the bootloader that chooses
 * which slot runs (its policy is bootloader.c's, shared with the memory
 * flash; this file verifies the slot files and keeps the choice in the state
 * file). It is the POSIX port's default flash backend
 * (nf_posix_flash_dir_ops: what nf_port_flash_begin/write/finish/abort do
 * for a handle that uses it; port.c dispatches).
 *
 *   DIR/state       the bootloader's state (text, see below)
 *   DIR/slot-a.bin  firmware slot a
 *   DIR/slot-b.bin  firmware slot b (absent until the first update)
 *   DIR/fs.bin      the filesystem
 *   DIR/<name>.new  a write in progress (slot-a.new, fs.new, state.new...);
 *                   never read, removed at boot
 *
 * Never brick: an image is written to a .new file beside the slot that is
 * not running (or beside fs.bin), in whole sectors as the ESP's Updater
 * does, and published only by nf_port_flash_finish(): verify it whole as
 * the bootloader would (its metadata's payload MD5 included, so a corrupt
 * image is refused even when the server sent no x-MD5), fsync the data,
 * rename it over the slot, fsync the directory. A new firmware is then
 * recorded in the state as "trial": the next boot runs it once; if it does
 * not confirm itself (it crashed, the power went), the boot after reverts to
 * the confirmed slot. The state file is replaced the same way (state.new,
 * fsync, rename, fsync of the directory), so every power cut leaves either
 * the old or the new file - powercut.c counts every one of these operations
 * and can cut the power before any of them.
 *
 * State file (on flash: do not change), exactly these lines in this order:
 *
 *   nofuss-flash 1
 *   active a          the confirmed slot (a or b)
 *   trial -           the slot to try at the next boot (a, b, or - for none)
 *   attempts 0        trial boots made so far
 *   slot-size 1048576 geometry, fixed when the directory is provisioned
 *   fs-size 1048576
 *   chip-size 4194304
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "nofuss/posix.h"

#define STATE_FILE         "state"
#define STATE_TMP          "state.new"
#define FS_FILE            "fs.bin"
#define FS_TMP             "fs.new"
#define STATE_VERSION      "1"
#define TRIAL_ATTEMPTS_MAX 1u /* a trial slot gets one boot to confirm itself */

static const char *const slot_file[NF_POSIX_SLOTS] = {"slot-a.bin", "slot-b.bin"};
static const char *const slot_tmp[NF_POSIX_SLOTS] = {"slot-a.new", "slot-b.new"};

const char *nf_posix_slot_name(int slot)
{
	return slot == 1 ? "b" : "a";
}

/* Every flash-affecting operation goes through here first. */
static void op(struct nf_posix_flash *f, const char *what, const char *name)
{
	nf_posix_powercut_tick(&f->cut, f->console, what, name);
}

static int write_all(int fd, const uint8_t *data, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, data, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		data += n;
		len -= (size_t)n;
	}
	return 0;
}

static int sync_dir(struct nf_posix_flash *f)
{
	op(f, "fsync", ".");
	return fsync(f->dirfd);
}

/* Writes data to tmp in sectors, fsyncs it and renames it over name. */
static int write_file_atomic(struct nf_posix_flash *f, const char *tmp, const char *name,
                             const uint8_t *data, size_t len, char *err, size_t errcap)
{
	int fd, rc = -1;

	op(f, "create", tmp);
	fd = openat(f->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		nf_errf(err, errcap, "%s/%s: %s", f->dir, tmp, strerror(errno));
		return -1;
	}
	for (size_t off = 0; off < len; off += NF_POSIX_SECTOR_SIZE) {
		size_t n = len - off < NF_POSIX_SECTOR_SIZE ? len - off : NF_POSIX_SECTOR_SIZE;
		op(f, "write", tmp);
		if (write_all(fd, data + off, n) != 0) {
			nf_errf(err, errcap, "%s/%s: write: %s", f->dir, tmp, strerror(errno));
			goto done;
		}
	}
	op(f, "fsync", tmp);
	if (fsync(fd) != 0) {
		nf_errf(err, errcap, "%s/%s: fsync: %s", f->dir, tmp, strerror(errno));
		goto done;
	}
	op(f, "rename", tmp);
	if (renameat(f->dirfd, tmp, f->dirfd, name) != 0) {
		nf_errf(err, errcap, "%s/%s: rename: %s", f->dir, tmp, strerror(errno));
		goto done;
	}
	if (sync_dir(f) != 0) {
		nf_errf(err, errcap, "%s: fsync: %s", f->dir, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	close(fd);
	if (rc != 0) {
		op(f, "unlink", tmp);
		unlinkat(f->dirfd, tmp, 0);
	}
	return rc;
}

/* ---- the state file ---- */

static int parse_u32(const char *s, uint32_t max, uint32_t *out)
{
	char *end;
	unsigned long v;

	if (s[0] < '0' || s[0] > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v > max)
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int parse_slot(const char *s, bool may_be_none, int *out)
{
	if (strcmp(s, "a") == 0 || strcmp(s, "b") == 0) {
		*out = s[0] - 'a';
		return 0;
	}
	if (may_be_none && strcmp(s, "-") == 0) {
		*out = -1;
		return 0;
	}
	return -1;
}

/* Parses text (NUL-terminated) into *s; -1 when it is not a state file. */
static int parse_state(char *text, struct nf_posix_state *s)
{
	static const char *const keys[] = {"nofuss-flash", "active",  "trial",    "attempts",
	                                   "slot-size",    "fs-size", "chip-size"};
	char *line = text;
	uint32_t attempts = 0;

	for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
		size_t klen = strlen(keys[i]);
		char *nl = strchr(line, '\n');
		char *value = line + klen + 1;
		int bad;

		if (nl == NULL || strncmp(line, keys[i], klen) != 0 || line[klen] != ' ')
			return -1;
		*nl = '\0';
		switch (i) {
		case 0: bad = strcmp(value, STATE_VERSION) != 0; break;
		case 1: bad = parse_slot(value, false, &s->slots.active); break;
		case 2: bad = parse_slot(value, true, &s->slots.trial); break;
		case 3: bad = parse_u32(value, TRIAL_ATTEMPTS_MAX, &attempts); break;
		case 4:
			bad = parse_u32(value, NF_POSIX_FLASH_SIZE_MAX, &s->geometry.slot_size);
			break;
		case 5:
			bad = parse_u32(value, NF_POSIX_FLASH_SIZE_MAX, &s->geometry.fs_size);
			break;
		default:
			bad = parse_u32(value, NF_POSIX_FLASH_SIZE_MAX, &s->geometry.chip_size);
			break;
		}
		if (bad)
			return -1;
		line = nl + 1;
	}
	s->slots.attempts = attempts;
	return *line == '\0' && nf_posix_geometry_ok(&s->geometry) ? 0 : -1;
}

/* Reads DIR/state: 0, 1 when there is none, -1 on error. */
static int read_state(struct nf_posix_flash *f, char *err, size_t errcap)
{
	char text[NF_POSIX_STATE_MAX + 1];
	size_t got = 0;
	int fd, rc = -1;

	fd = openat(f->dirfd, STATE_FILE, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0) {
		if (errno == ENOENT)
			return 1;
		nf_errf(err, errcap, "%s/%s: %s", f->dir, STATE_FILE, strerror(errno));
		return -1;
	}
	for (;;) {
		ssize_t n = read(fd, text + got, sizeof text - 1 - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			nf_errf(err, errcap, "%s/%s: %s", f->dir, STATE_FILE, strerror(errno));
			goto done;
		}
		if (n == 0)
			break;
		got += (size_t)n;
		if (got == sizeof text - 1) {
			nf_errf(err, errcap, "%s/%s: longer than %u bytes", f->dir, STATE_FILE,
			     NF_POSIX_STATE_MAX);
			goto done;
		}
	}
	text[got] = '\0';
	if (strlen(text) != got || parse_state(text, &f->state) != 0) {
		nf_errf(err, errcap, "%s/%s: not a valid flash state file", f->dir, STATE_FILE);
		goto done;
	}
	rc = 0;
done:
	close(fd);
	return rc;
}

/* Replaces DIR/state with next; f->state follows only on success. */
static int write_state(struct nf_posix_flash *f, const struct nf_posix_state *next, char *err,
                       size_t errcap)
{
	char text[NF_POSIX_STATE_MAX];
	int n;

	n = snprintf(text, sizeof text,
	             "nofuss-flash " STATE_VERSION "\nactive %s\ntrial %s\nattempts %u\n"
	             "slot-size %u\nfs-size %u\nchip-size %u\n",
	             nf_posix_slot_name(next->slots.active),
	             next->slots.trial < 0 ? "-" : nf_posix_slot_name(next->slots.trial),
	             next->slots.attempts,
	             next->geometry.slot_size, next->geometry.fs_size, next->geometry.chip_size);
	if (n < 0 || (size_t)n >= sizeof text) {
		nf_errf(err, errcap, "state does not fit %u bytes", NF_POSIX_STATE_MAX);
		return -1;
	}
	if (write_file_atomic(f, STATE_TMP, STATE_FILE, (const uint8_t *)text, (size_t)n, err,
	                      errcap) != 0)
		return -1;
	f->state = *next;
	return 0;
}

/* ---- opening, provisioning, booting ---- */

int nf_posix_flash_open(struct nf_posix_flash *f, const char *dir, char *err, size_t errcap)
{
	struct stat st;
	size_t len = strlen(dir);

	f->dirfd = -1;
	f->fd = -1;
	f->running = -1;
	f->running_size = 0;
	f->running_md5[0] = '\0';
	free(f->dir);
	free(f->sector);
	f->dir = NULL;
	f->sector = NULL;
	if (len == 0 || len >= NF_POSIX_PATH_MAX) {
		nf_errf(err, errcap, "flash directory path must be 1 to %u bytes",
		     NF_POSIX_PATH_MAX - 1);
		return -1;
	}
	f->dir = strdup(dir);
	f->sector = malloc(NF_POSIX_SECTOR_SIZE);
	if (f->dir == NULL || f->sector == NULL) {
		nf_errf(err, errcap, "%s: out of memory", dir);
		return -1;
	}
	if (stat(dir, &st) != 0) {
		if (errno != ENOENT) {
			nf_errf(err, errcap, "%s: %s", dir, strerror(errno));
			return -1;
		}
		op(f, "mkdir", dir);
		if (mkdir(dir, 0755) != 0) {
			nf_errf(err, errcap, "cannot create %s: %s", dir, strerror(errno));
			return -1;
		}
	}
	f->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (f->dirfd < 0) {
		nf_errf(err, errcap, "%s: %s", dir, strerror(errno));
		return -1;
	}
	return read_state(f, err, errcap);
}

int nf_posix_flash_provision(struct nf_posix_flash *f, const struct nf_posix_geometry *g,
                             const uint8_t *fw, size_t fwlen, const uint8_t *fs, size_t fslen,
                             char *err, size_t errcap)
{
	struct nf_posix_state s = {.slots = {.active = 0, .trial = -1, .attempts = 0},
	                           .geometry = *g};

	if (f->dirfd < 0) {
		nf_errf(err, errcap, "flash directory is not open");
		return -1;
	}
	if (!nf_posix_geometry_ok(g)) {
		nf_errf(err, errcap, "flash geometry out of range (each size %u to %u bytes)",
		     NF_POSIX_IMAGE_MIN, NF_POSIX_FLASH_SIZE_MAX);
		return -1;
	}
	if (fwlen > g->slot_size || (fs != NULL && fslen > g->fs_size)) {
		nf_errf(err, errcap,
		     "image too big: firmware %zu bytes for a %u-byte slot, "
		     "filesystem %zu bytes for %u",
		     fwlen, g->slot_size, fs ? fslen : 0, g->fs_size);
		return -1;
	}
	if (write_file_atomic(f, slot_tmp[0], slot_file[0], fw, fwlen, err, errcap) != 0)
		return -1;
	if (fs != NULL && write_file_atomic(f, FS_TMP, FS_FILE, fs, fslen, err, errcap) != 0)
		return -1;
	return write_state(f, &s, err, errcap);
}

/* The bootloader's view of the directory while it boots. */
struct dir_boot {
	struct nf_posix_flash *f;
	uint8_t md5[16]; /* of the slot verified last: the one booted */
};

/* Verifies slot's image; 0, or -1 with the reason in why. */
static int verify_slot(void *ctx, int slot, struct nf_posix_image *info, char *why, size_t cap)
{
	struct dir_boot *db = ctx;
	struct nf_posix_flash *f = db->f;

	if (nf_posix_image_verify_file(f->dirfd, slot_file[slot], f->state.geometry.slot_size, info,
	                               db->md5, why, cap) != 0)
		return -1;
	if (info->kind != NF_IMAGE_FIRMWARE) {
		nf_errf(why, cap, "%s holds a filesystem image", slot_file[slot]);
		return -1;
	}
	return 0;
}

/* Writes the bootloader's next choice into the state file. */
static int save_slots(void *ctx, const struct nf_posix_slots *next, char *err, size_t errcap)
{
	struct dir_boot *db = ctx;
	struct nf_posix_state s = db->f->state;

	s.slots = *next;
	return write_state(db->f, &s, err, errcap);
}

/* Removes the .new files a cut write left behind. */
static void remove_leftovers(struct nf_posix_flash *f)
{
	static const char *const names[] = {"slot-a.new", "slot-b.new", FS_TMP, STATE_TMP};
	struct stat st;

	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		if (fstatat(f->dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		op(f, "unlink", names[i]);
		unlinkat(f->dirfd, names[i], 0);
	}
}

int nf_posix_flash_boot(struct nf_posix_flash *f, struct nf_posix_boot *b, char *err, size_t errcap)
{
	struct dir_boot db = {.f = f};
	const struct nf_posix_bootloader bl = {&db, verify_slot, save_slots};
	struct nf_posix_slots slots = f->state.slots;

	memset(b, 0, sizeof *b);
	if (f->dirfd < 0) {
		nf_errf(err, errcap, "flash directory is not open");
		return -1;
	}
	remove_leftovers(f);
	if (nf_posix_bootloader_run(&bl, &slots, b, err, errcap) != 0)
		return -1;
	f->running = b->slot;
	f->running_size = b->firmware.size;
	nf_hex_encode(db.md5, sizeof db.md5, f->running_md5);

	if (nf_posix_image_verify_file(f->dirfd, FS_FILE, f->state.geometry.fs_size, &b->fs, NULL,
	                               b->fs_error, sizeof b->fs_error) == 0) {
		b->fs_valid = b->fs.kind == NF_IMAGE_FILESYSTEM;
		if (!b->fs_valid)
			nf_errf(b->fs_error, sizeof b->fs_error, "%s holds a firmware image", FS_FILE);
	}
	return 0;
}

int nf_posix_flash_confirm(struct nf_posix_flash *f, char *err, size_t errcap)
{
	struct nf_posix_state next = f->state;

	if (f->running < 0) {
		nf_errf(err, errcap, "nothing booted");
		return -1;
	}
	if (!nf_posix_slots_confirm(&f->state.slots, f->running, &next.slots))
		return 0;
	return write_state(f, &next, err, errcap);
}

/* Closes and removes the image being written, if any. */
static void abort_write(struct nf_posix_flash *f)
{
	const char *tmp;

	if (f->fd < 0)
		return;
	tmp = f->image == NF_IMAGE_FIRMWARE ? slot_tmp[f->target] : FS_TMP;
	close(f->fd);
	f->fd = -1;
	op(f, "unlink", tmp);
	unlinkat(f->dirfd, tmp, 0);
}

void nf_posix_flash_close(struct nf_posix_flash *f)
{
	if (f->dirfd >= 0) {
		abort_write(f);
		close(f->dirfd);
	}
	f->dirfd = -1;
	f->fd = -1;
	f->running = -1;
	free(f->dir);
	free(f->sector);
	f->dir = NULL;
	f->sector = NULL;
}

/* ---- the backend: the port contract's flash calls on the directory ---- */

static int dir_begin(struct nf_posix *p, enum nf_image image, uint32_t size)
{
	struct nf_posix_flash *f = &p->flash;
	bool fw = image == NF_IMAGE_FIRMWARE;
	uint32_t room;
	const char *tmp;

	abort_write(f); /* a begin without finish or abort before it */
	if (f->dirfd < 0 || f->running < 0) {
		nf_posix_logf(p, NULL, "flash: not booted");
		return -1;
	}
	room = fw ? f->state.geometry.slot_size : f->state.geometry.fs_size;
	if (size == 0 || size > room) {
		nf_posix_logf(p, NULL, "flash: a %u-byte %s does not fit the %u bytes of %s", size,
		              fw ? "firmware" : "filesystem", room,
		              fw ? slot_file[1 - f->running] : FS_FILE);
		return -1;
	}
	f->image = image;
	f->target = fw ? 1 - f->running : -1;
	tmp = fw ? slot_tmp[f->target] : FS_TMP;
	op(f, "create", tmp);
	f->fd = openat(f->dirfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (f->fd < 0) {
		nf_posix_logf(p, NULL, "flash: %s/%s: %s", f->dir, tmp, strerror(errno));
		return -1;
	}
	f->size = size;
	f->written = 0;
	f->fill = 0;
	f->checked_header = false;
	return 0;
}

static int flush_sector(struct nf_posix *p)
{
	struct nf_posix_flash *f = &p->flash;
	const char *tmp = f->image == NF_IMAGE_FIRMWARE ? slot_tmp[f->target] : FS_TMP;

	if (f->fill == 0)
		return 0;
	op(f, "write", tmp);
	if (write_all(f->fd, f->sector, f->fill) != 0) {
		nf_posix_logf(p, NULL, "flash: %s/%s: write: %s", f->dir, tmp, strerror(errno));
		return -1;
	}
	f->fill = 0;
	return 0;
}

static int dir_write(struct nf_posix *p, const uint8_t *data, size_t len)
{
	struct nf_posix_flash *f = &p->flash;

	if (f->fd < 0)
		return -1;
	if (len > f->size - f->written) {
		nf_posix_logf(p, NULL, "flash: more than the %u bytes announced", f->size);
		return -1;
	}
	while (len > 0) {
		size_t n = NF_POSIX_SECTOR_SIZE - f->fill;
		if (n > len)
			n = len;
		memcpy(f->sector + f->fill, data, n);
		f->fill += (uint32_t)n;
		f->written += (uint32_t)n;
		data += n;
		len -= n;
		/* The ESP updater's check (docs/PEERS.md section 5), once. */
		if (f->image == NF_IMAGE_FIRMWARE && !f->checked_header && f->written >= 4) {
			f->checked_header = true;
			if (nf_posix_check_chip(p, f->sector, f->state.geometry.chip_size) != 0)
				return -1;
		}
		if (f->fill == NF_POSIX_SECTOR_SIZE && flush_sector(p) != 0)
			return -1;
	}
	return 0;
}

/* The image written to tmp, before it is committed: whole, as the
 * bootloader verifies a slot (headers, recorded size, ESP checksum, the
 * payload MD5 its metadata carries) and of the kind being written. This
 * does not need the server's x-MD5, and guards the filesystem, which has no
 * second copy to fall back on. 0, or -1 after logging why. */
static int verify_new(struct nf_posix *p, const char *tmp)
{
	struct nf_posix_flash *f = &p->flash;
	struct nf_posix_image info;
	char why[NF_POSIX_ERR_MAX];

	if (nf_posix_image_verify_file(f->dirfd, tmp, f->size, &info, NULL, why, sizeof why) != 0) {
		nf_posix_logf(p, NULL, "flash: not committed: %s", why);
		return -1;
	}
	if (info.kind != f->image) {
		nf_posix_logf(p, NULL, "flash: not committed: %s holds a %s image", tmp,
		              info.kind == NF_IMAGE_FIRMWARE ? "firmware" : "filesystem");
		return -1;
	}
	return 0;
}

static int dir_finish(struct nf_posix *p)
{
	struct nf_posix_flash *f = &p->flash;
	bool fw = f->image == NF_IMAGE_FIRMWARE;
	const char *tmp, *name;
	char err[NF_POSIX_ERR_MAX];
	int fd = f->fd;

	if (fd < 0)
		return -1;
	tmp = fw ? slot_tmp[f->target] : FS_TMP;
	name = fw ? slot_file[f->target] : FS_FILE;
	if (f->written != f->size) {
		nf_posix_logf(p, NULL, "flash: %u of %u bytes written", f->written, f->size);
		goto fail;
	}
	if (flush_sector(p) != 0 || verify_new(p, tmp) != 0)
		goto fail;
	op(f, "fsync", tmp);
	if (fsync(fd) != 0) {
		nf_posix_logf(p, NULL, "flash: %s/%s: fsync: %s", f->dir, tmp, strerror(errno));
		goto fail;
	}
	f->fd = -1;
	close(fd);
	op(f, "rename", tmp);
	if (renameat(f->dirfd, tmp, f->dirfd, name) != 0) {
		nf_posix_logf(p, NULL, "flash: %s/%s: rename: %s", f->dir, tmp, strerror(errno));
		op(f, "unlink", tmp);
		unlinkat(f->dirfd, tmp, 0);
		return -1;
	}
	/* The rename is the commit: from here on, returning -1 would tell the
	 * core "nothing committed" about a filesystem that is. */
	if (sync_dir(f) != 0)
		nf_posix_logf(p, NULL, "flash: %s: fsync: %s (committed, maybe not durable)",
		              f->dir, strerror(errno));
	if (fw) {
		struct nf_posix_state next = f->state;
		/* A firmware is committed by the state: until then the slot is a spare. */
		nf_posix_slots_try(&f->state.slots, f->target, &next.slots);
		if (write_state(f, &next, err, sizeof err) != 0) {
			nf_posix_logf(p, NULL, "flash: %s", err);
			return -1;
		}
	}
	return 0;
fail:
	abort_write(f);
	return -1;
}

static void dir_abort(struct nf_posix *p)
{
	abort_write(&p->flash);
}

static void dir_info(const struct nf_posix *p, struct nf_posix_flash_info *out)
{
	const struct nf_posix_flash *f = &p->flash;

	out->slot_size = f->state.geometry.slot_size;
	out->chip_size = f->state.geometry.chip_size;
	out->sketch_size = f->running_size;
	memcpy(out->sketch_md5, f->running_md5, sizeof out->sketch_md5);
}

static int dir_boot(struct nf_posix *p, struct nf_posix_boot *b, char *err, size_t errcap)
{
	return nf_posix_flash_boot(&p->flash, b, err, errcap);
}

static int dir_confirm(struct nf_posix *p, char *err, size_t errcap)
{
	return nf_posix_flash_confirm(&p->flash, err, errcap);
}

static void dir_close(struct nf_posix *p)
{
	nf_posix_flash_close(&p->flash);
}

const struct nf_posix_flash_ops nf_posix_flash_dir_ops = {
    .name = "directory",
    .begin = dir_begin,
    .write = dir_write,
    .finish = dir_finish,
    .abort = dir_abort,
    .info = dir_info,
    .boot = dir_boot,
    .confirm = dir_confirm,
    .close = dir_close,
};
