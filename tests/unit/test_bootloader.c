/*
 * test_bootloader.c - the POSIX port's boot policy (ports/posix/bootloader.c)
 * through both flash backends it serves: a flash directory in a temporary
 * folder and a memory flash. Each scenario runs the same steps on both,
 * through the port's own calls (nf_posix_boot, nf_posix_confirm, and
 * nf_port_flash_* for an update), and expects the same boots: a new
 * firmware gets one trial boot, reverts when it does not confirm or does
 * not verify, a broken confirmed slot falls back to the other one, and no
 * bootable slot is bricked (errno ENOEXEC).
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

/* Boots and expects slot ("a" or "b"), how and the version booted. */
static void expect_boot(struct rig *r, const char *slot, enum nf_posix_boot_how how,
                        const char *version)
{
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	if (nf_posix_boot(&r->port, &b, err, sizeof err) != 0)
		fail_msg("%s: boot: %s", r->memory ? "memory" : "directory", err);
	assert_string_equal(nf_posix_slot_name(b.slot), slot);
	assert_int_equal(b.how, how);
	assert_string_equal(b.firmware.version, version);
}

static void confirm(struct rig *r)
{
	char err[NF_POSIX_ERR_MAX];

	assert_int_equal(nf_posix_confirm(&r->port, err, sizeof err), 0);
}

/* An update of the running device to version, as the core writes it;
 * corrupt flips one payload byte on the way (the image then fails its
 * payload MD5 at the next boot). */
static void update(struct rig *r, const char *version, bool corrupt)
{
	static uint8_t fw[IMAGE_SIZE];

	build(fw, NF_IMAGE_FIRMWARE, version);
	if (corrupt)
		fw[IMAGE_SIZE - 1] ^= 0xFF;
	assert_int_equal(nf_port_flash_begin(&r->port, NF_IMAGE_FIRMWARE, IMAGE_SIZE), 0);
	assert_int_equal(nf_port_flash_write(&r->port, fw, IMAGE_SIZE), 0);
	assert_int_equal(nf_port_flash_finish(&r->port), 0);
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
	update(r, "2.0", false);
	expect_boot(r, "b", NF_POSIX_BOOT_TRIAL, "2.0");
	confirm(r);
	expect_boot(r, "b", NF_POSIX_BOOT_NORMAL, "2.0");
	expect_boot(r, "b", NF_POSIX_BOOT_NORMAL, "2.0");
}

/* Boots and expects the revert to slot a (1.0), for the reason given. */
static void expect_revert(struct rig *r, const char *why)
{
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	assert_int_equal(nf_posix_boot(&r->port, &b, err, sizeof err), 0);
	assert_string_equal(nf_posix_slot_name(b.slot), "a");
	assert_int_equal(b.how, NF_POSIX_BOOT_REVERTED);
	assert_string_equal(b.firmware.version, "1.0");
	assert_true(strncmp(b.why, why, strlen(why)) == 0);
}

static void scenario_unconfirmed_trial_reverts(struct rig *r)
{
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	confirm(r);
	update(r, "2.0", false);
	expect_boot(r, "b", NF_POSIX_BOOT_TRIAL, "2.0"); /* and it never confirms */
	expect_revert(r, "slot b did not confirm its trial boot");
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
}

static void scenario_bad_trial_reverts(struct rig *r)
{
	expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	confirm(r);
	update(r, "2.0", true);
	expect_revert(r, "slot b is not bootable: ");
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
	};
#undef TMP_TEST
	return cmocka_run_group_tests(tests, NULL, NULL);
}
