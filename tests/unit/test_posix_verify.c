/*
 * test_posix_verify.c - the POSIX port's signature check (ports/posix/
 * verify.c) through the port's own calls, as the core and the ArduinoOTA
 * receiver make them: nf_port_flash_begin / write / verify / finish on a
 * flash directory and on a memory flash, with real keys (made by the
 * engine, nf_sign_keygen) and images signed in memory (nf_sign_data).
 *
 * A device with a key accepts the image its key signed and nothing else
 * (unsigned, cut, altered in any region, signed by another key): each
 * refusal is said on the console, aborts the write and leaves the device
 * booting what it booted before. Without a key every image is accepted. A
 * writer that never asks nf_port_flash_verify is checked at finish. And
 * the image checks accept an image followed by a signature trailer, and
 * only that (nf_posix_signed_tail).
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common.h"
#include "nofuss/posix.h"
#include "testutil.h"

#define IMAGE_SIZE  8192u
#define SIGNED_MAX  (IMAGE_SIZE + NF_SIGN_MAX_SIG + NF_SIGN_LEN_FIELD)
#define CONSOLE_MAX 4096u

/* The keys every test shares, made once by group_setup. */
static char *keydir;
static char key_path[600], pub_path[600], other_path[600];

/* One device under test, on either backend; its console kept in memory. */
struct rig {
	struct nf_posix port;
	struct nf_posix_memflash mem;
	bool memory;
	char dir[600];
	char console[CONSOLE_MAX];
};

static int group_setup(void **state)
{
	char err[512];

	(void)state;
	keydir = nf_test_mkdtemp("verify-keys");
	if (keydir == NULL)
		return -1;
	snprintf(key_path, sizeof key_path, "%s/key.pem", keydir);
	snprintf(pub_path, sizeof pub_path, "%s/key.pub.pem", keydir);
	snprintf(other_path, sizeof other_path, "%s/other.pem", keydir);
	if (nf_sign_keygen(2048, key_path, pub_path, 0, err, sizeof err) != NF_SIGN_OK ||
	    nf_sign_keygen(2048, other_path, NULL, 0, err, sizeof err) != NF_SIGN_OK) {
		fprintf(stderr, "keygen: %s\n", err);
		return -1;
	}
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nf_test_rmtree(keydir);
	free(keydir);
	return 0;
}

static void build(uint8_t *buf, enum nf_image kind, const char *version)
{
	struct nf_posix_image info = {
	    .kind = kind, .size = IMAGE_SIZE, .flash_mode = 2, .flash_size_freq = 0x20};
	char err[NF_POSIX_ERR_MAX];

	snprintf(info.version, sizeof info.version, "%s", version);
	if (nf_posix_image_build(&info, buf, IMAGE_SIZE, err, sizeof err) != 0)
		fail_msg("image: %s", err);
}

/* The firmware `version`, signed by the key in key_file: into out, its
 * length returned. */
static size_t signed_image(uint8_t *out, const char *version, const char *key_file)
{
	struct nf_sign_key *key = NULL;
	size_t sig_len = 0;
	char err[512];

	build(out, NF_IMAGE_FIRMWARE, version);
	if (nf_sign_key_load(key_file, 1, 0, &key, err, sizeof err) != NF_SIGN_OK ||
	    nf_sign_data(key, out, IMAGE_SIZE, out + IMAGE_SIZE, &sig_len, err, sizeof err) !=
	        NF_SIGN_OK)
		fail_msg("signing: %s", err);
	nf_sign_key_free(key);
	for (int i = 0; i < 4; i++)
		out[IMAGE_SIZE + sig_len + i] = (uint8_t)(sig_len >> (8 * i));
	return IMAGE_SIZE + sig_len + NF_SIGN_LEN_FIELD;
}

/* A device provisioned with firmware 1.0 in slot a and booted, on the
 * backend asked; with the public key when keyed. */
static void rig_open(struct rig *r, bool memory, const char *tmp, bool keyed)
{
	const struct nf_posix_geometry g = {NF_POSIX_SLOT_SIZE_DEFAULT, NF_POSIX_FS_SIZE_DEFAULT,
	                                    NF_POSIX_CHIP_SIZE_DEFAULT};
	static uint8_t fw[IMAGE_SIZE], fs[IMAGE_SIZE];
	struct nf_posix_boot b;
	char err[NF_POSIX_ERR_MAX];

	build(fw, NF_IMAGE_FIRMWARE, "1.0");
	build(fs, NF_IMAGE_FILESYSTEM, "1.0");
	memset(r, 0, sizeof *r);
	nf_posix_init(&r->port);
	r->port.console = fmemopen(r->console, sizeof r->console, "w");
	assert_non_null(r->port.console);
	r->port.flash.console = NULL;
	r->memory = memory;
	if (memory) {
		assert_int_equal(nf_posix_memflash_provision(&r->mem, &g, fw, IMAGE_SIZE, fs,
		                                             IMAGE_SIZE, err, sizeof err),
		                 0);
		nf_posix_use_memflash(&r->port, &r->mem);
	} else {
		snprintf(r->dir, sizeof r->dir, "%s/flash", tmp);
		assert_int_equal(nf_posix_flash_open(&r->port.flash, r->dir, err, sizeof err), 1);
		assert_int_equal(nf_posix_flash_provision(&r->port.flash, &g, fw, IMAGE_SIZE, fs,
		                                          IMAGE_SIZE, err, sizeof err),
		                 0);
	}
	if (keyed && nf_posix_load_pubkey(&r->port, pub_path, err, sizeof err) != 0)
		fail_msg("pubkey: %s", err);
	assert_int_equal(nf_posix_boot(&r->port, &b, err, sizeof err), 0);
	assert_int_equal(nf_posix_confirm(&r->port, err, sizeof err), 0);
}

static void rig_close(struct rig *r)
{
	FILE *console = r->port.console;

	nf_posix_destroy(&r->port);
	fclose(console);
}

/* What the console said so far. */
static const char *console(struct rig *r)
{
	fflush(r->port.console);
	return r->console;
}

/* Writes image[len] as the core does, in pieces of 1000 bytes (as a
 * download arrives), and asks the port's verdict. Returns it; accepted
 * images are committed, refused ones aborted, as the core does. */
static int update(struct rig *r, const uint8_t *image, size_t len)
{
	int verdict;

	assert_int_equal(nf_port_flash_begin(&r->port, NF_IMAGE_FIRMWARE, (uint32_t)len), 0);
	for (size_t off = 0; off < len; off += 1000)
		assert_int_equal(
		    nf_port_flash_write(&r->port, image + off, len - off < 1000 ? len - off : 1000),
		    0);
	verdict = nf_port_flash_verify(&r->port);
	if (verdict == 0)
		assert_int_equal(nf_port_flash_finish(&r->port), 0);
	else
		nf_port_flash_abort(&r->port);
	return verdict;
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

/* ---- a device with a key ---- */

struct variant {
	const char *name;
	size_t len;
	int flip;        /* byte to invert, -1: none */
	const char *key; /* signer, NULL: key_path */
	const char *why; /* in the console's refusal */
};

static void refuse_all(struct rig *r)
{
	static uint8_t img[SIGNED_MAX];
	const size_t sig = IMAGE_SIZE + 256, whole = sig + NF_SIGN_LEN_FIELD;
	const struct variant v[] = {
	    {"unsigned", IMAGE_SIZE, -1, NULL, "no signature trailer"},
	    {"cut by one byte", whole - 1, -1, NULL, "refused: "},
	    {"cut in the signature", sig - 10, -1, NULL, "refused: "},
	    {"payload byte", whole, IMAGE_SIZE / 2, NULL, "does not verify"},
	    {"first byte", whole, 0, NULL, "does not verify"},
	    {"signature byte", whole, (int)sig - 1, NULL, "does not verify"},
	    {"length field", whole, (int)whole - 2, NULL, "no signature trailer"},
	    {"another key", whole, -1, other_path, "does not verify"},
	};
	size_t refused = 0;

	for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
		size_t len = signed_image(img, "2.0", v[i].key != NULL ? v[i].key : key_path);
		assert_int_equal(len, whole);
		if (v[i].flip >= 0)
			img[v[i].flip] ^= 0x01;
		r->console[0] = '\0';
		rewind(r->port.console);
		if (update(r, img, v[i].len) != 0)
			refused++;
		else
			fail_msg("%s: accepted", v[i].name);
		if (strstr(console(r), "[nofuss] signature: refused: ") == NULL ||
		    strstr(console(r), v[i].why) == NULL)
			fail_msg("%s: the console says: %s", v[i].name, console(r));
		/* Nothing committed: the old firmware boots as before. */
		expect_boot(r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	}
	printf("%s: %zu of %zu refused, 0 commits\n", r->memory ? "memory" : "directory", refused,
	       sizeof v / sizeof v[0]);
	/* The right image still goes through, and boots. */
	r->console[0] = '\0';
	rewind(r->port.console);
	assert_int_equal(update(r, img, signed_image(img, "2.0", key_path)), 0);
	assert_non_null(strstr(console(r), "[nofuss] signature: verified (RSA-2048, 8192 bytes"));
}

static void test_key_refuses_all_but_signed(void **state)
{
	struct rig r;

	rig_open(&r, false, *state, true);
	refuse_all(&r);
	expect_boot(&r, "b", NF_POSIX_BOOT_TRIAL, "2.0"); /* the trailer stays, tolerated */
	rig_close(&r);
	/* The memory flash refuses the same way (port.c feeds both). */
	rig_open(&r, true, *state, true);
	refuse_all(&r);
	rig_close(&r);
}

static void test_no_key_accepts_any(void **state)
{
	static uint8_t img[SIGNED_MAX];
	struct rig r;

	rig_open(&r, false, *state, false);
	build(img, NF_IMAGE_FIRMWARE, "2.0");
	assert_int_equal(update(&r, img, IMAGE_SIZE), 0);
	expect_boot(&r, "b", NF_POSIX_BOOT_TRIAL, "2.0");
	/* A signed image: its trailer is ignored, as firmware without a key does. */
	assert_int_equal(update(&r, img, signed_image(img, "3.0", other_path)), 0);
	expect_boot(&r, "a", NF_POSIX_BOOT_TRIAL, "3.0");
	assert_null(strstr(console(&r), "signature"));
	rig_close(&r);
}

static void test_finish_checks_writers_that_do_not_ask(void **state)
{
	static uint8_t img[SIGNED_MAX];
	size_t len;
	struct rig r;

	/* The ArduinoOTA receiver writes and finishes without asking first. */
	rig_open(&r, false, *state, true);
	build(img, NF_IMAGE_FIRMWARE, "2.0");
	assert_int_equal(nf_port_flash_begin(&r.port, NF_IMAGE_FIRMWARE, IMAGE_SIZE), 0);
	assert_int_equal(nf_port_flash_write(&r.port, img, IMAGE_SIZE), 0);
	assert_int_equal(nf_port_flash_finish(&r.port), -1);
	assert_non_null(strstr(console(&r), "signature: refused: no signature trailer"));
	expect_boot(&r, "a", NF_POSIX_BOOT_NORMAL, "1.0");
	len = signed_image(img, "2.0", key_path);
	assert_int_equal(nf_port_flash_begin(&r.port, NF_IMAGE_FIRMWARE, (uint32_t)len), 0);
	assert_int_equal(nf_port_flash_write(&r.port, img, len), 0);
	assert_int_equal(nf_port_flash_finish(&r.port), 0);
	expect_boot(&r, "b", NF_POSIX_BOOT_TRIAL, "2.0");
	rig_close(&r);
}

static void test_load_pubkey(void **state)
{
	struct nf_posix p;
	char err[NF_POSIX_ERR_MAX] = "", path[600];

	nf_posix_init(&p);
	snprintf(path, sizeof path, "%s/none.pem", (const char *)*state);
	assert_int_equal(nf_posix_load_pubkey(&p, path, err, sizeof err), -1);
	assert_non_null(strstr(err, "none.pem"));
	assert_null(p.sign_key);
	nf_test_write_file(path, "not a key\n");
	assert_int_equal(nf_posix_load_pubkey(&p, path, err, sizeof err), -1);
	assert_null(p.sign_key);
	/* A private key file will do, and a second key replaces the first. */
	assert_int_equal(nf_posix_load_pubkey(&p, key_path, err, sizeof err), 0);
	assert_int_equal(nf_posix_load_pubkey(&p, pub_path, err, sizeof err), 0);
	assert_non_null(p.sign_key);
	nf_posix_destroy(&p);
	assert_null(p.sign_key);
}

/* ---- the image checks and a trailer ---- */

/* Writes image[len] to dir/name and returns what nf_posix_image_verify_file says. */
static int check_file(const char *dir, const uint8_t *image, size_t len, char *err)
{
	struct nf_posix_image info;
	char path[600];

	snprintf(path, sizeof path, "%s/img.bin", dir);
	nf_test_write_data(path, image, len);
	return nf_posix_image_verify_file(AT_FDCWD, path, NF_POSIX_FLASH_SIZE_MAX, &info, NULL, err,
	                                  NF_POSIX_ERR_MAX);
}

static void test_image_checks_accept_a_trailer_only(void **state)
{
	static uint8_t img[IMAGE_SIZE + 1024];
	char err[NF_POSIX_ERR_MAX];
	size_t len = signed_image(img, "2.0", key_path);

	assert_int_equal(check_file(*state, img, IMAGE_SIZE, err), 0);
	assert_int_equal(check_file(*state, img, len, err), 0);
	/* Anything else after the image is a torn or mixed file. */
	img[len - 4] = 0xFF; /* the length field no longer matches what follows */
	assert_int_equal(check_file(*state, img, len, err), -1);
	assert_non_null(strstr(err, "torn write?"));
	img[len - 4] = 0;
	img[len - 3] = 0; /* length 0: no signature */
	assert_int_equal(check_file(*state, img, len, err), -1);
	memset(img + IMAGE_SIZE, 0, 8); /* 4 bytes more: only a length field */
	img[IMAGE_SIZE] = 0;
	assert_int_equal(check_file(*state, img, IMAGE_SIZE + 4, err), -1);
	/* A 600-byte "signature": longer than any key's. */
	memset(img + IMAGE_SIZE, 0xAB, 600);
	img[IMAGE_SIZE + 600] = 600 & 0xFF;
	img[IMAGE_SIZE + 601] = 600 >> 8;
	img[IMAGE_SIZE + 602] = img[IMAGE_SIZE + 603] = 0;
	assert_true(IMAGE_SIZE + 604 <= sizeof img);
	assert_int_equal(check_file(*state, img, IMAGE_SIZE + 604, err), -1);
	assert_int_equal(check_file(*state, img, IMAGE_SIZE - 1, err), -1); /* cut */
}

int main(void)
{
#define T(t)                                                                                       \
	cmocka_unit_test_prestate_setup_teardown(t, nf_test_tmpdir_setup, nf_test_tmpdir_teardown, \
	                                         (void *)"verify")
	const struct CMUnitTest tests[] = {
	    T(test_key_refuses_all_but_signed),
	    T(test_no_key_accepts_any),
	    T(test_finish_checks_writers_that_do_not_ask),
	    T(test_load_pubkey),
	    T(test_image_checks_accept_a_trailer_only),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
