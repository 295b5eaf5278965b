/*
 * test_bootloader.c - the POSIX port's boot policy (ports/posix/bootloader.c)
 * through both flash backends it serves: a flash directory in a temporary
 * folder and a memory flash. Each scenario runs the same steps on both,
 * through the port's own calls (nf_posix_boot, nf_posix_confirm, and
 * nf_port_flash_* for an update), and expects the same boots: a new
 * firmware gets one trial boot, reverts when it does not confirm or does
 * not verify, a broken confirmed slot falls back to the other one, and no
 * bootable slot is bricked (errno ENOEXEC). An update that does not verify
 * whole (a flipped byte, which the server's missing x-MD5 would not catch)
 * is refused by the flash's finish on both backends, and nothing changes.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nofuss/posix.h"
#include "testutil.h"

#define IMAGE_SIZE 8192u

/* One device under test, on either backend. */
struct rig {
	struct nf_posix port;
	struct nf_posix_memflash mem;
	bool memory;
	char dir[512];
	struct nf_posix_boot last; /* what the last expect_boot booted */
};

static void build(uint8_t *buf, enum nf_image kind, const char *version)
{
	struct nf_posix_image info = {
	    .kind = kind, .size = IMAGE_SIZE, .flash_mode = 2, .flash_size_freq = 0x20};
	char err[NF_POSIX_ERR_MAX];

	snprintf(info.version, sizeof info.version, "%s", version);
	if (nf_posix_image_build(&info, buf, IMAGE_SIZE, err, sizeof err) != 0)
		fail_msg("image: %s", err);
}

/* A device provisioned with firmware 1.0 in slot a, on the backend asked. */
static void rig_open(struct rig *r, bool memory, const char *tmp)
{
	const struct nf_posix_geometry g = {NF_POSIX_SLOT_SIZE_DEFAULT, NF_POSIX_FS_SIZE_DEFAULT,
	                                    NF_POSIX_CHIP_SIZE_DEFAULT};
	static uint8_t fw[IMAGE_SIZE], fs[IMAGE_SIZE];
	char err[NF_POSIX_ERR_MAX];

	build(fw, NF_IMAGE_FIRMWARE, "1.0");
	build(fs, NF_IMAGE_FILESYSTEM, "1.0");
	memset(r, 0, sizeof *r);
	nf_posix_init(&r->port);
	r->port.console = NULL;
	r->port.flash.console = NULL;
	r->memory = memory;
	if (memory) {
		assert_int_equal(nf_posix_memflash_provision(&r->mem, &g, fw, IMAGE_SIZE, fs,
		                                             IMAGE_SIZE, err, sizeof err),
		                 0);
		nf_posix_use_memflash(&r->port, &r->mem);
		return;
	}
	snprintf(r->dir, sizeof r->dir, "%s/flash", tmp);
	assert_int_equal(nf_posix_flash_open(&r->port.flash, r->dir, err, sizeof err), 1);
	assert_int_equal(nf_posix_flash_provision(&r->port.flash, &g, fw, IMAGE_SIZE, fs,
	                                          IMAGE_SIZE, err, sizeof err),
	                 0);
}

static void rig_close(struct rig *r)
{
	nf_posix_destroy(&r->port);
}

/* Boots and expects slot ("a" or "b"), how and the version booted; the
 * boot is left in r->last. */
static void expect_boot(struct rig *r, const char *slot, enum nf_posix_boot_how how,
                        const char *version)
{
	struct nf_posix_boot *b = &r->last;
	char err[NF_POSIX_ERR_MAX];

	if (nf_posix_boot(&r->port, b, err, sizeof err) != 0)
		fail_msg("%s: boot: %s", r->memory ? "memory" : "directory", err);
	assert_string_equal(nf_posix_slot_name(b->slot), slot);
	assert_int_equal(b->how, how);
	assert_string_equal(b->firmware.version, version);
}

static void confirm(struct rig *r)
{
	char err[NF_POSIX_ERR_MAX];

	assert_int_equal(nf_posix_confirm(&r->port, err, sizeof err), 0);
}

/* Writes an image of kind `kind` to version through the port's flash
 * calls, as the core writes it, and returns what finish answers; flip (a
 * byte offset, or -1) is flipped on the way; as_kind is where it goes. */
static int write_image(struct rig *r, enum nf_image kind, enum nf_image as_kind,
                       const char *version, long flip)
{
	static uint8_t img[IMAGE_SIZE];

	build(img, kind, version);
	if (flip >= 0)
		img[flip] ^= 0xFF;
	assert_int_equal(nf_port_flash_begin(&r->port, as_kind, IMAGE_SIZE), 0);
	assert_int_equal(nf_port_flash_write(&r->port, img, IMAGE_SIZE), 0);
	return nf_port_flash_finish(&r->port);
}

/* A good firmware update of the running device to version. */
static void update(struct rig *r, const char *version)
{
	assert_int_equal(write_image(r, NF_IMAGE_FIRMWARE, NF_IMAGE_FIRMWARE, version, -1), 0);
}

/* Breaks the image in slot (0 a, 1 b) behind the bootloader's back. */
static void break_slot(struct rig *r, int slot)
{
	char path[600];
	int fd;

	if (r->memory) {
		r->mem.slot[slot].status = NF_POSIX_MEM_MD5;
		return;
	}
	snprintf(path, sizeof path, "%s/slot-%s.bin", r->dir, nf_posix_slot_name(slot));
	fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "\xFF", 1, IMAGE_SIZE - 1), 1);
	close(fd);
}

static void scenario_trial_then_confirmed(struct rig *r)
{
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	confirm(r);
	update(r, "2.0");
	expect_boot(r, "b", NF_POSIX_BOOT_TRIAL, "2.0");
	confirm(r);
	expect_boot(r, "b", NF_POSIX_BOOT_NORMAL, "2.0");
	expect_boot(r, "b", NF_POSIX_BOOT_NORMAL, "2.0");
}

/* Boots and expects the revert to slot a (1.0), for the reason given. */
static void expect_revert(struct rig *r, const char *why)
{
	expect_boot(r, "a", NF_POSIX_BOOT_REVERTED, "1.0");
	assert_true(strncmp(r->last.why, why, strlen(why)) == 0);
}

static void scenario_unconfirmed_trial_reverts(struct rig *r)
{
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	confirm(r);
	update(r, "2.0");
	expect_boot(r, "b", NF_POSIX_BOOT_TRIAL, "2.0"); /* and it never confirms */
	expect_revert(r, "slot b did not confirm its trial boot");
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
}

static void scenario_bad_trial_reverts(struct rig *r)
{
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	confirm(r);
	update(r, "2.0");
	break_slot(r, 1); /* broken after the commit, before the trial boot */
	expect_revert(r, "slot b is not bootable: ");
}

/* Boots and expects slot a (1.0) and the filesystem 1.0, as provisioned. */
static void expect_untouched(struct rig *r)
{
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	assert_true(r->last.fs_valid);
	assert_string_equal(r->last.fs.version, "1.0");
}

static void scenario_corrupt_update_not_committed(struct rig *r)
{
	/* Offsets: the last payload byte; the firmware's metadata (its version,
	 * under the ESP checksum); the filesystem's recorded payload MD5. */
	const long payload = IMAGE_SIZE - 1, header = 33, meta_md5 = 85;

	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	confirm(r);
	assert_int_equal(write_image(r, NF_IMAGE_FIRMWARE, NF_IMAGE_FIRMWARE, "2.0", payload), -1);
	assert_int_equal(write_image(r, NF_IMAGE_FIRMWARE, NF_IMAGE_FIRMWARE, "2.0", header), -1);
	assert_int_equal(write_image(r, NF_IMAGE_FILESYSTEM, NF_IMAGE_FILESYSTEM, "2.0", payload),
	                 -1);
	assert_int_equal(write_image(r, NF_IMAGE_FILESYSTEM, NF_IMAGE_FILESYSTEM, "2.0", meta_md5),
	                 -1);
	/* A whole image of the other kind. */
	assert_int_equal(write_image(r, NF_IMAGE_FIRMWARE, NF_IMAGE_FILESYSTEM, "2.0", -1), -1);
	expect_untouched(r);
	/* The same images whole go in. */
	assert_int_equal(write_image(r, NF_IMAGE_FILESYSTEM, NF_IMAGE_FILESYSTEM, "2.0", -1), 0);
	update(r, "2.0");
	expect_boot(r, "b", NF_POSIX_BOOT_TRIAL, "2.0");
}

static void scenario_fallback_then_bricked(struct rig *r)
{
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	scenario_trial_then_confirmed(r); /* b confirmed, a still holds 1.0 */
	break_slot(r, 1);
	assert_int_equal(nf_posix_boot(&r->port, &b, err, sizeof err), 0);
	assert_string_equal(nf_posix_slot_name(b.slot), "a");
	assert_int_equal(b.how, NF_POSIX_BOOT_FALLBACK);
	assert_non_null(strstr(b.why, "slot b is not bootable: "));
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0"); /* a is the confirmed one now */
	break_slot(r, 0);
	errno = 0;
	assert_int_equal(nf_posix_boot(&r->port, &b, err, sizeof err), -1);
	assert_int_equal(errno, ENOEXEC);
	assert_non_null(strstr(err, "no bootable firmware: slot a: "));
}

/* Runs a scenario on the memory flash, then on a flash directory. */
static void on_both(void **state, void (*scenario)(struct rig *r))
{
	struct rig r;

	rig_open(&r, true, NULL);
	scenario(&r);
	rig_close(&r);
	rig_open(&r, false, *state);
	scenario(&r);
	rig_close(&r);
}

static void trial_then_confirmed(void **state)
{
	on_both(state, scenario_trial_then_confirmed);
}

static void unconfirmed_trial_reverts(void **state)
{
	on_both(state, scenario_unconfirmed_trial_reverts);
}

static void bad_trial_reverts(void **state)
{
	on_both(state, scenario_bad_trial_reverts);
}

static void fallback_then_bricked(void **state)
{
	on_both(state, scenario_fallback_then_bricked);
}

static void corrupt_update_not_committed(void **state)
{
	on_both(state, scenario_corrupt_update_not_committed);
}

int main(void)
{
#define TMP_TEST(t)                                                                                \
	cmocka_unit_test_prestate_setup_teardown(t, nf_test_tmpdir_setup, nf_test_tmpdir_teardown, \
	                                         (void *)"bootloader")
	const struct CMUnitTest tests[] = {
	    TMP_TEST(trial_then_confirmed),
	    TMP_TEST(unconfirmed_trial_reverts),
	    TMP_TEST(bad_trial_reverts),
	    TMP_TEST(fallback_then_bricked),
	    TMP_TEST(corrupt_update_not_committed),
	};
#undef TMP_TEST
	return cmocka_run_group_tests(tests, NULL, NULL);
}
