/*
 * test_sign.c - signed images (common/sign*.c) against the real openssl
 * command: keys made by `openssl genpkey`, reference signatures by
 * `openssl dgst -sha256 -sign`, real files in a temporary folder.
 *
 * The core of it: nf_sign_image's output equals image || openssl's
 * signature || le32(length) byte for byte for 2048- and 3072-bit keys, and
 * every altered, truncated or foreign image is rejected with the error the
 * contract in common.h names. The tampering test counts its cases and prints
 * the count.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common.h"
#include "testutil.h"

/* The folder and the keys every test shares, made once by group_setup. */
static char *dir;
static char key2048[512], pub2048[512], other2048[512], key3072[512], pub3072[512];
static char key1024[512], pub1024[512], key_ec[512];

/* Paths handed out by path_in, freed by group_teardown. */
static char **paths;
static size_t n_paths;

/* dir/name, valid until the group ends (so tests may hold any number). */
static char *path_in(const char *name)
{
	size_t size = strlen(dir) + strlen(name) + 2;
	char **grown = realloc(paths, (n_paths + 1) * sizeof *paths);
	char *p = malloc(size);

	assert_non_null(grown);
	assert_non_null(p);
	paths = grown;
	paths[n_paths++] = p;
	snprintf(p, size, "%s/%s", dir, name);
	return p;
}

/* Runs a shell command made from fmt; fails the test unless it exits 0. */
static void run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int rc;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof cmd, fmt, ap);
	va_end(ap);
	rc = system(cmd);
	if (rc != 0)
		fail_msg("`%s` exited with %d", cmd, rc);
}

/* The whole file at path, malloc'd; its size in *len. Fails the test on error. */
static unsigned char *read_bin(const char *path, size_t *len)
{
	char *text = nf_test_read_file(path);
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	*len = (size_t)st.st_size;
	return (unsigned char *)text;
}

static void le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

/* A len-byte image: an app image header (0xE9, byte 2 the flash mode) when
 * mode >= 0, then bytes whose every 4 in a row read as a little-endian number
 * far above any signature length (each has its top bit set), so that a cut
 * inside the payload never looks like a trailer. */
static unsigned char *make_image(size_t len, int mode)
{
	unsigned char *img = malloc(len);

	assert_non_null(img);
	for (size_t i = 0; i < len; i++)
		img[i] = (unsigned char)(0x80u | ((i * 37u + i / 251u) & 0x7fu));
	if (mode >= 0 && len >= 4) {
		img[0] = 0xe9;
		img[1] = 0x03; /* segment count */
		img[2] = (unsigned char)mode;
		img[3] = 0x40; /* 4 MB, 40 MHz */
	}
	return img;
}

/* in || `openssl dgst -sha256 -sign key in` || le32(length), malloc'd, its
 * size in *len: the core's signing tool's construction. */
static unsigned char *openssl_signed(const char *key, const char *in, size_t *len)
{
	size_t img_len, sig_len;
	unsigned char *img = read_bin(in, &img_len), *sig, *out;
	char *sig_path = path_in("ref.sig");

	run("openssl dgst -sha256 -sign '%s' -out '%s' '%s'", key, sig_path, in);
	sig = read_bin(sig_path, &sig_len);
	*len = img_len + sig_len + 4;
	out = malloc(*len);
	assert_non_null(out);
	memcpy(out, img, img_len);
	memcpy(out + img_len, sig, sig_len);
	le32(out + img_len + sig_len, (uint32_t)sig_len);
	free(img);
	free(sig);
	return out;
}

static struct nf_sign_key *load(const char *path, int need_private, unsigned min_bits)
{
	struct nf_sign_key *key = NULL;
	char err[256] = "";

	if (nf_sign_key_load(path, need_private, min_bits, &key, err, sizeof err) != NF_SIGN_OK)
		fail_msg("loading %s: %s", path, err);
	return key;
}

static void genpkey(char *priv, char *pub, const char *name, unsigned bits)
{
	snprintf(priv, 512, "%s/%s.pem", dir, name);
	snprintf(pub, 512, "%s/%s.pub.pem", dir, name);
	run("openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:%u -out '%s'", bits,
	    priv);
	run("openssl pkey -in '%s' -pubout -out '%s'", priv, pub);
}

static int group_setup(void **state)
{
	char unused[512];

	(void)state;
	dir = nf_test_mkdtemp("sign");
	if (dir == NULL)
		return -1;
	genpkey(key2048, pub2048, "a2048", 2048);
	genpkey(other2048, unused, "b2048", 2048);
	genpkey(key3072, pub3072, "c3072", 3072);
	genpkey(key1024, pub1024, "d1024", 1024);
	snprintf(key_ec, sizeof key_ec, "%s/ec.pem", dir);
	run("openssl genpkey -quiet -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out '%s'",
	    key_ec);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	nf_test_rmtree(dir);
	free(dir);
	for (size_t i = 0; i < n_paths; i++)
		free(paths[i]);
	free(paths);
	return 0;
}

/* Signs in with key (opts may be NULL) and fails the test unless it works. */
static struct nf_sign_result sign_ok(const struct nf_sign_key *key, const char *in, const char *out,
                                     const struct nf_sign_opts *opts)
{
	struct nf_sign_result res;
	char err[512] = "";

	if (nf_sign_image(key, in, out, opts, &res, err, sizeof err) != NF_SIGN_OK)
		fail_msg("signing %s: %s", in, err);
	return res;
}

/* Output of nf_sign_image == the openssl construction, for one key. */
static void check_equals_openssl(const char *priv, const char *pub, size_t img_len, size_t sig_len)
{
	struct nf_sign_key *key = load(priv, 1, 0), *pkey = load(pub, 0, 0);
	unsigned char *img = make_image(img_len, NF_SIGN_FLASH_DIO), *mine, *ref;
	unsigned char sig[NF_SIGN_MAX_SIG];
	size_t mine_len, ref_len, data_sig_len;
	struct nf_sign_trailer t;
	struct nf_sign_result res;

	nf_test_write_data(path_in("eq.bin"), img, img_len);
	res = sign_ok(key, path_in("eq.bin"), path_in("eq.signed"), NULL);
	mine = read_bin(path_in("eq.signed"), &mine_len);
	ref = openssl_signed(priv, path_in("eq.bin"), &ref_len);
	assert_int_equal(mine_len, img_len + sig_len + 4);
	assert_int_equal(ref_len, mine_len);
	assert_memory_equal(mine, ref, ref_len);
	assert_int_equal(res.sig_len, sig_len);
	assert_int_equal(res.payload_len, img_len);
	assert_int_equal(res.kind, NF_SIGN_IMAGE_APP);
	/* nf_sign_data makes the same signature in memory */
	assert_int_equal(nf_sign_data(key, img, img_len, sig, &data_sig_len, NULL, 0), NF_SIGN_OK);
	assert_int_equal(data_sig_len, sig_len);
	assert_memory_equal(sig, mine + img_len, sig_len);
	/* our verifier accepts it, and openssl accepts our signature */
	assert_int_equal(nf_sign_verify_file(pkey, path_in("eq.signed"), &t, NULL, 0), NF_SIGN_OK);
	assert_int_equal(t.payload_len, img_len);
	assert_int_equal(t.sig_len, sig_len);
	nf_test_write_data(path_in("eq.sig"), mine + img_len, sig_len);
	run("openssl dgst -sha256 -verify '%s' -signature '%s' '%s' >/dev/null", pub,
	    path_in("eq.sig"), path_in("eq.bin"));
	free(img);
	free(mine);
	free(ref);
	nf_sign_key_free(key);
	nf_sign_key_free(pkey);
}

static void sign_equals_openssl_2048(void **state)
{
	(void)state;
	check_equals_openssl(key2048, pub2048, 100000, 256);
}

static void sign_equals_openssl_3072(void **state)
{
	(void)state;
	check_equals_openssl(key3072, pub3072, 100000, 384);
}

/* A 17 MB image: signed and verified in bounded chunks, still openssl's bytes. */
static void sign_equals_openssl_17mb(void **state)
{
	(void)state;
	check_equals_openssl(key2048, pub2048, 17u * 1024 * 1024 + 12, 256);
}

/* The error the contract in common.h names for an image whose last 4 bytes
 * read as v, for a 2048-bit key with the default 2048-bit minimum. */
static enum nf_sign_err expected_for_field(uint32_t v, size_t image_len)
{
	if (image_len < 4 || v == 0 || v > NF_SIGN_MAX_SIG)
		return NF_SIGN_ERR_NO_TRAILER;
	if (v * 8 < 2048)
		return NF_SIGN_ERR_KEY_TOO_SMALL;
	if (v != 256)
		return NF_SIGN_ERR_BAD_LENGTH;
	if (image_len - 4 < v)
		return NF_SIGN_ERR_TRUNCATED;
	return NF_SIGN_ERR_BAD_SIGNATURE;
}

static uint32_t field_of(const unsigned char *img, size_t len)
{
	if (len < 4)
		return 0;
	return (uint32_t)img[len - 4] | (uint32_t)img[len - 3] << 8 | (uint32_t)img[len - 2] << 16 |
	       (uint32_t)img[len - 1] << 24;
}

struct tally {
	const struct nf_sign_key *key;
	int cases, rejected_right, accepted;
};

/* Verifies img[len] from memory and from a file; both must fail with want. */
static void expect_rejected(struct tally *t, const unsigned char *img, size_t len,
                            enum nf_sign_err want, const char *what, size_t at)
{
	char err[512] = "";
	enum nf_sign_err mem = nf_sign_verify_mem(t->key, img, len, NULL, err, sizeof err);
	enum nf_sign_err file;

	nf_test_write_data(path_in("t.bin"), img, len);
	file = nf_sign_verify_file(t->key, path_in("t.bin"), NULL, NULL, 0);
	t->cases++;
	t->accepted += mem == NF_SIGN_OK || file == NF_SIGN_OK;
	if (mem != want || file != want)
		fail_msg("%s at %zu: got %d/%d (%s), want %d", what, at, mem, file, err, want);
	assert_true(err[0] != '\0');
	t->rejected_right++;
}

/* Every region of a signed image altered in turn. */
static void alter_each_region(struct tally *t, unsigned char *s, size_t len, size_t payload)
{
	static const unsigned char flips[] = {0x01, 0x80, 0xff};

	for (size_t i = 0; i < payload; i += (i < 8 ? 1 : 997)) { /* the header, then sampled */
		s[i] ^= 0x01;
		expect_rejected(t, s, len, NF_SIGN_ERR_BAD_SIGNATURE, "payload byte", i);
		s[i] ^= 0x01;
	}
	s[payload - 1] ^= 0x01;
	expect_rejected(t, s, len, NF_SIGN_ERR_BAD_SIGNATURE, "last payload byte", payload - 1);
	s[payload - 1] ^= 0x01;
	for (size_t i = payload; i < len - 4; i++) { /* every signature byte */
		s[i] ^= 0x01;
		expect_rejected(t, s, len, NF_SIGN_ERR_BAD_SIGNATURE, "signature byte", i);
		s[i] ^= 0x01;
	}
	for (size_t i = len - 4; i < len; i++) /* every length byte, three ways */
		for (size_t f = 0; f < sizeof flips; f++) {
			s[i] ^= flips[f];
			expect_rejected(t, s, len, expected_for_field(field_of(s, len), len),
			                "length byte", i);
			s[i] ^= flips[f];
		}
}

/* Signed images cut short, and trailers without their beginning. */
static void truncate_each_way(struct tally *t, const unsigned char *s, size_t len, size_t payload)
{
	const size_t cuts[] = {
	    0,       1,           2,           3,       4,           5,
	    1000,    payload / 2, payload - 1, payload, payload + 1, payload + 128,
	    len - 5, len - 4,     len - 3,     len - 2, len - 1};
	unsigned char field_only[4];

	for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++)
		expect_rejected(t, s, cuts[i], expected_for_field(field_of(s, cuts[i]), cuts[i]),
		                "cut to", cuts[i]);
	/* the payload lost: signature and length only (a signature of nothing) */
	expect_rejected(t, s + payload, len - payload, NF_SIGN_ERR_BAD_SIGNATURE, "trailer only",
	                0);
	/* the front lost down into the signature: the trailer outlives it */
	expect_rejected(t, s + payload + 100, len - payload - 100, NF_SIGN_ERR_TRUNCATED,
	                "trailer without its first 100 bytes", 0);
	le32(field_only, 256);
	expect_rejected(t, field_only, 4, NF_SIGN_ERR_TRUNCATED, "length field only", 0);
}

/* The same payload signed by other keys, by openssl. */
static void sign_with_others(struct tally *t, size_t payload)
{
	struct {
		const char *key;
		enum nf_sign_err want;
		const char *what;
	} others[] = {
	    {other2048, NF_SIGN_ERR_BAD_SIGNATURE, "another 2048-bit key"},
	    {key3072, NF_SIGN_ERR_BAD_LENGTH, "a 3072-bit key"},
	    {key1024, NF_SIGN_ERR_KEY_TOO_SMALL, "a 1024-bit key"},
	};

	for (size_t i = 0; i < sizeof others / sizeof others[0]; i++) {
		size_t len;
		unsigned char *s = openssl_signed(others[i].key, path_in("tamper.bin"), &len);

		expect_rejected(t, s, len, others[i].want, others[i].what, payload);
		free(s);
	}
	{ /* and the unsigned image itself */
		size_t len;
		unsigned char *img = read_bin(path_in("tamper.bin"), &len);

		expect_rejected(t, img, len, NF_SIGN_ERR_NO_TRAILER, "unsigned image", len);
		free(img);
	}
}

static void altered_images_are_rejected(void **state)
{
	const size_t payload = 50000;
	struct nf_sign_key *key = load(key2048, 1, 0), *pub = load(pub2048, 0, 0);
	unsigned char *img = make_image(payload, NF_SIGN_FLASH_DIO), *s;
	struct tally t = {.key = pub};
	size_t len;

	(void)state;
	nf_test_write_data(path_in("tamper.bin"), img, payload);
	sign_ok(key, path_in("tamper.bin"), path_in("tamper.signed"), NULL);
	s = read_bin(path_in("tamper.signed"), &len);
	assert_int_equal(nf_sign_verify_mem(pub, s, len, NULL, NULL, 0), NF_SIGN_OK); /* control */
	alter_each_region(&t, s, len, payload);
	truncate_each_way(&t, s, len, payload);
	sign_with_others(&t, payload);
	assert_int_equal(nf_sign_verify_mem(pub, s, len, NULL, NULL, 0), NF_SIGN_OK); /* restored */
	printf("test_sign: %d altered, truncated or foreign images: %d rejected with the expected "
	       "error (%d%%), %d accepted\n",
	       t.cases, t.rejected_right, 100 * t.rejected_right / t.cases, t.accepted);
	assert_int_equal(t.rejected_right, t.cases);
	assert_int_equal(t.accepted, 0);
	assert_true(t.cases > 300);
	free(img);
	free(s);
	nf_sign_key_free(key);
	nf_sign_key_free(pub);
}

/* The 1024-bit signer: refused as a key and as a signer under the 2048-bit
 * default minimum, accepted when the minimum is lowered (so the image is a
 * genuine signature and only the size refuses it). */
static void small_signer_refused_by_minimum(void **state)
{
	struct nf_sign_key *key = NULL, *small;
	unsigned char *img = make_image(4096, NF_SIGN_FLASH_DIO), *s;
	size_t len;
	char err[256] = "";

	(void)state;
	nf_test_write_data(path_in("small.bin"), img, 4096);
	s = openssl_signed(key1024, path_in("small.bin"), &len);
	assert_int_equal(nf_sign_key_load(pub1024, 0, 0, &key, err, sizeof err),
	                 NF_SIGN_ERR_KEY_TOO_SMALL);
	assert_null(key);
	assert_non_null(strstr(err, "1024"));
	assert_int_equal(nf_sign_key_load(key1024, 1, 0, &key, NULL, 0), NF_SIGN_ERR_KEY_TOO_SMALL);
	small = load(pub1024, 0, 1024);
	assert_int_equal(nf_sign_key_bits(small), 1024);
	assert_int_equal(nf_sign_verify_mem(small, s, len, NULL, NULL, 0), NF_SIGN_OK);
	nf_sign_key_free(small);
	free(img);
	free(s);
}

static void trailer_parse_contract(void **state)
{
	unsigned char f[4];
	struct nf_sign_trailer t = {0, 0};

	(void)state;
	le32(f, 256);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 256, 0, &t), NF_SIGN_OK);
	assert_int_equal(t.sig_len, 256);
	assert_int_equal(t.payload_len, 1000 - 260);
	assert_int_equal(nf_sign_trailer_parse(f, 260, 256, 0, &t), NF_SIGN_OK);
	assert_int_equal(t.payload_len, 0);
	assert_int_equal(nf_sign_trailer_parse(f, 259, 256, 0, &t), NF_SIGN_ERR_TRUNCATED);
	assert_int_equal(nf_sign_trailer_parse(f, 3, 256, 0, &t), NF_SIGN_ERR_NO_TRAILER);
	assert_int_equal(nf_sign_trailer_parse(f, UINT64_MAX, 256, 0, &t), NF_SIGN_OK);
	assert_true(t.payload_len == UINT64_MAX - 260);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 384, 0, &t), NF_SIGN_ERR_BAD_LENGTH);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 256, 3072, &t), NF_SIGN_ERR_KEY_TOO_SMALL);
	le32(f, 128);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 256, 0, &t), NF_SIGN_ERR_KEY_TOO_SMALL);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 128, 1024, &t), NF_SIGN_OK);
	le32(f, 0);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 256, 0, &t), NF_SIGN_ERR_NO_TRAILER);
	le32(f, NF_SIGN_MAX_SIG + 1);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 256, 0, &t), NF_SIGN_ERR_NO_TRAILER);
	le32(f, UINT32_MAX);
	assert_int_equal(nf_sign_trailer_parse(f, UINT64_MAX, 256, 0, &t), NF_SIGN_ERR_NO_TRAILER);
	le32(f, NF_SIGN_MAX_SIG);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 256, 0, &t), NF_SIGN_ERR_BAD_LENGTH);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, 0, 0, &t), NF_SIGN_ERR_ARG);
	assert_int_equal(nf_sign_trailer_parse(f, 1000, NF_SIGN_MAX_SIG + 1, 0, &t),
	                 NF_SIGN_ERR_ARG);
}

/* Fed in chunks of any size, the streaming verifier says what the whole says. */
static void streaming_verifier_any_chunking(void **state)
{
	static const size_t chunks[] = {1, 3, 4, 255, 256, 259, 260, 261, 4096, 100000};
	struct nf_sign_key *key = load(key2048, 1, 0);
	unsigned char *img = make_image(9000, NF_SIGN_FLASH_DIO), *s;
	size_t len;

	(void)state;
	nf_test_write_data(path_in("stream.bin"), img, 9000);
	sign_ok(key, path_in("stream.bin"), path_in("stream.signed"), NULL);
	s = read_bin(path_in("stream.signed"), &len);
	for (int tamper = 0; tamper < 2; tamper++) {
		s[4500] ^= (unsigned char)tamper;
		for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++) {
			struct nf_sign_verifier *v = nf_sign_verifier_new(key);
			struct nf_sign_trailer t = {0, 0};

			assert_non_null(v);
			for (size_t at = 0; at < len; at += chunks[c])
				assert_int_equal(
				    nf_sign_verifier_update(
				        v, s + at, len - at < chunks[c] ? len - at : chunks[c]),
				    NF_SIGN_OK);
			assert_int_equal(nf_sign_verifier_final(v, &t, NULL, 0),
			                 tamper ? NF_SIGN_ERR_BAD_SIGNATURE : NF_SIGN_OK);
			if (!tamper)
				assert_int_equal(t.payload_len, 9000);
			nf_sign_verifier_free(v);
		}
	}
	free(img);
	free(s);
	nf_sign_key_free(key);
}

/* No ".tmp-" file is left in the folder. */
static void assert_no_temp_files(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp-") != NULL)
			fail_msg("temporary file left: %s", e->d_name);
	closedir(d);
}

static unsigned mode_of(const char *path)
{
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	return (unsigned)st.st_mode & 0777u;
}

static void keygen_default_is_2048_and_openssl_reads_it(void **state)
{
	char *priv = path_in("gen.pem"), *pub = path_in("gen.pub.pem"), *pub2 = path_in("gen2.pem");
	struct nf_sign_key *key;
	unsigned char *a, *b;
	size_t a_len, b_len;
	char err[256] = "";

	(void)state;
	if (nf_sign_keygen(0, priv, pub, 0, err, sizeof err) != NF_SIGN_OK)
		fail_msg("keygen: %s", err);
	assert_int_equal(mode_of(priv), 0600);
	assert_int_equal(mode_of(pub), 0644);
	key = load(priv, 1, 0);
	assert_int_equal(nf_sign_key_bits(key), 2048);
	assert_int_equal(nf_sign_key_sig_len(key), 256);
	assert_true(nf_sign_key_is_private(key));
	nf_sign_key_free(key);
	run("openssl pkey -in '%s' -check -noout >/dev/null", priv);
	run("openssl pkey -in '%s' -pubout -out '%s'", priv, pub2);
	a = read_bin(pub, &a_len);
	b = read_bin(pub2, &b_len);
	assert_int_equal(a_len, b_len);
	assert_memory_equal(a, b, a_len); /* the public file is what openssl derives */
	assert_non_null(strstr((char *)a, "-----BEGIN PUBLIC KEY-----"));
	free(a);
	free(b);
	assert_no_temp_files();
}

static void keygen_refuses_sizes_and_existing_files(void **state)
{
	static const unsigned bad[] = {1024, 1536, 2047, 2049, 8192};
	char *priv = path_in("kg.pem"), *pub = path_in("kg.pub.pem");
	char err[256] = "", *before, *after;

	(void)state;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		assert_int_equal(nf_sign_keygen(bad[i], priv, pub, 0, err, sizeof err),
		                 NF_SIGN_ERR_ARG);
		assert_non_null(strstr(err, "2048"));
		assert_int_equal(access(priv, F_OK), -1);
	}
	assert_int_equal(nf_sign_keygen(2048, priv, priv, 0, NULL, 0), NF_SIGN_ERR_ARG);
	assert_int_equal(nf_sign_keygen(2048, NULL, pub, 0, NULL, 0), NF_SIGN_ERR_ARG);
	/* an existing private key is never replaced unless asked */
	nf_test_write_file(priv, "precious\n");
	chmod(priv, 0640);
	assert_int_equal(nf_sign_keygen(2048, priv, pub, 0, err, sizeof err), NF_SIGN_ERR_EXISTS);
	assert_non_null(strstr(err, priv));
	before = nf_test_read_file(priv);
	assert_string_equal(before, "precious\n");
	assert_int_equal(mode_of(priv), 0640);
	assert_int_equal(access(pub, F_OK), -1);
	/* nor an existing public key: and then no private key is written */
	unlink(priv);
	nf_test_write_file(pub, "old public\n");
	assert_int_equal(nf_sign_keygen(2048, priv, pub, 0, NULL, 0), NF_SIGN_ERR_EXISTS);
	assert_int_equal(access(priv, F_OK), -1);
	/* asked to: both replaced, the private key 0600 again */
	nf_test_write_file(priv, "precious\n");
	assert_int_equal(nf_sign_keygen(2048, priv, pub, 1, NULL, 0), NF_SIGN_OK);
	after = nf_test_read_file(priv);
	assert_non_null(strstr(after, "-----BEGIN PRIVATE KEY-----"));
	assert_int_equal(mode_of(priv), 0600);
	free(before);
	free(after);
	assert_no_temp_files();
}

/* The bigger sizes are accepted (slow under valgrind: 3072 only). */
static void keygen_3072(void **state)
{
	char *priv = path_in("kg3.pem");
	struct nf_sign_key *key;

	(void)state;
	assert_int_equal(nf_sign_keygen(3072, priv, NULL, 0, NULL, 0), NF_SIGN_OK);
	key = load(priv, 1, 0);
	assert_int_equal(nf_sign_key_bits(key), 3072);
	assert_int_equal(nf_sign_key_sig_len(key), 384);
	nf_sign_key_free(key);
}

static void key_loading_says_what_is_wrong(void **state)
{
	struct {
		const char *path;
		int need_private;
		unsigned min_bits;
		enum nf_sign_err want;
		const char *says;
	} cases[] = {
	    {path_in("absent.pem"), 0, 0, NF_SIGN_ERR_IO, "No such file"},
	    {path_in("garbage.pem"), 0, 0, NF_SIGN_ERR_KEY, "not a PEM key"},
	    {path_in("big.pem"), 0, 0, NF_SIGN_ERR_KEY, "longer than"},
	    {path_in("enc.pem"), 1, 0, NF_SIGN_ERR_KEY, "encrypted"},
	    {key_ec, 0, 0, NF_SIGN_ERR_KEY_TYPE, "EC"},
	    {pub2048, 1, 0, NF_SIGN_ERR_KEY_NOT_PRIVATE, "public key"},
	    {pub1024, 0, 0, NF_SIGN_ERR_KEY_TOO_SMALL, "1024"},
	    {pub2048, 0, 3072, NF_SIGN_ERR_KEY_TOO_SMALL, "3072"},
	    {pub2048, 0, 8192, NF_SIGN_ERR_ARG, "minimum"},
	};
	char *big = calloc(1, NF_MAX_SIGN_PEM + 2);

	(void)state;
	nf_test_write_file(path_in("garbage.pem"), "-----BEGIN PUBLIC KEY-----\nnope\n");
	memset(big, 'A', NF_MAX_SIGN_PEM + 1);
	nf_test_write_file(path_in("big.pem"), big);
	free(big);
	run("openssl genpkey -quiet -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes256 "
	    "-pass pass:secret -out '%s' </dev/null",
	    path_in("enc.pem"));
	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		struct nf_sign_key *key = (struct nf_sign_key *)&cases; /* must become NULL */
		char err[512] = "";

		assert_int_equal(nf_sign_key_load(cases[i].path, cases[i].need_private,
		                                  cases[i].min_bits, &key, err, sizeof err),
		                 cases[i].want);
		assert_null(key);
		if (strstr(err, cases[i].says) == NULL)
			fail_msg("case %zu: \"%s\" does not say \"%s\"", i, err, cases[i].says);
	}
}

static void key_loading_accepts_every_rsa_form(void **state)
{
	const char *forms[] = {"pkcs1pub.pem", "trad.pem"};
	struct nf_sign_key *key;

	(void)state;
	run("openssl pkey -in '%s' -pubout -out /dev/stdout | openssl rsa -pubin "
	    "-RSAPublicKey_out -out '%s' 2>/dev/null",
	    key2048, path_in("pkcs1pub.pem"));
	run("openssl rsa -in '%s' -traditional -out '%s' 2>/dev/null", key2048,
	    path_in("trad.pem"));
	for (size_t i = 0; i < 2; i++) {
		key = load(path_in(forms[i]), i, 0);
		assert_int_equal(nf_sign_key_bits(key), 2048);
		assert_int_equal(nf_sign_key_is_private(key), (int)i);
		nf_sign_key_free(key);
	}
	key = load(key2048, 0, 0); /* a private key file where a public one will do */
	assert_true(nf_sign_key_is_private(key));
	nf_sign_key_free(key);
}

/* The header the ESP8266 core's build writes from public.key, made here
 * from the public key file's bytes. */
static char *core_header_of(const char *pub_path)
{
	size_t len;
	unsigned char *pem = read_bin(pub_path, &len);
	size_t cap = 200 + len * 7;
	char *h = malloc(cap);
	size_t n;

	assert_non_null(h);
	n = (size_t)snprintf(h, cap,
	                     "#include <pgmspace.h>\n#define ARDUINO_SIGNING 1\n"
	                     "static const char signing_pubkey[] PROGMEM = {\n");
	for (size_t i = 0; i < len; i++)
		n += (size_t)snprintf(h + n, cap - n, "0x%02x, \n", pem[i]);
	snprintf(h + n - 3, cap - n + 3, "\n};\n"); /* the last ", \n" becomes "\n};\n" */
	free(pem);
	return h;
}

static void pubkey_header_is_the_core_form(void **state)
{
	const char *sources[] = {key2048, pub2048};
	char *want = core_header_of(pub2048), *got;

	(void)state;
	for (size_t i = 0; i < 2; i++) {
		struct nf_sign_key *key = load(sources[i], 0, 0);
		FILE *f = fopen(path_in("Updater_Signing.h"), "w");

		assert_non_null(f);
		assert_int_equal(nf_sign_pubkey_header(key, f, NULL, 0), NF_SIGN_OK);
		fclose(f);
		got = nf_test_read_file(path_in("Updater_Signing.h"));
		assert_string_equal(got, want);
		free(got);
		f = fopen(path_in("again.pub.pem"), "w");
		assert_non_null(f);
		assert_int_equal(nf_sign_pubkey_pem(key, f, NULL, 0), NF_SIGN_OK);
		fclose(f);
		run("cmp -s '%s' '%s'", path_in("again.pub.pem"), pub2048);
		nf_sign_key_free(key);
	}
	/* and a C compiler reads it as the PEM's bytes (pgmspace.h stubbed) */
	mkdir(path_in("stub"), 0700);
	nf_test_write_file(path_in("stub/pgmspace.h"), "#define PROGMEM\n");
	nf_test_write_file(path_in("h.c"),
	                   "#include <stdio.h>\n#include <string.h>\n"
	                   "#include \"Updater_Signing.h\"\n"
	                   "int main(int argc, char **argv)\n{\n\tchar pem[8192];\n"
	                   "\tFILE *f = fopen(argv[argc - 1], \"rb\");\n"
	                   "\tsize_t n = f ? fread(pem, 1, sizeof pem, f) : 0;\n"
	                   "\treturn !(ARDUINO_SIGNING == 1 && n == sizeof signing_pubkey &&\n"
	                   "\t         memcmp(pem, signing_pubkey, n) == 0);\n}\n");
	run("cc -I'%s' -I'%s/stub' -o '%s/h' '%s' && '%s/h' '%s'", dir, dir, dir, path_in("h.c"),
	    dir, pub2048);
	free(want);
}

/* Signs in with opts and returns the result; the output is out. */
static struct nf_sign_result sign_with(const char *in, const char *out, unsigned flags, int mode)
{
	struct nf_sign_opts opts = {flags, mode};
	struct nf_sign_key *key = load(key2048, 1, 0);
	struct nf_sign_result res = sign_ok(key, in, out, &opts);

	nf_sign_key_free(key);
	return res;
}

static void assert_verifies(const char *path)
{
	struct nf_sign_key *pub = load(pub2048, 0, 0);
	char err[512] = "";

	if (nf_sign_verify_file(pub, path, NULL, err, sizeof err) != NF_SIGN_OK)
		fail_msg("%s", err);
	nf_sign_key_free(pub);
}

static void assert_warning_names(const struct nf_sign_result *res, unsigned bit, const char *word)
{
	char text[512];

	assert_true(res->warnings & bit);
	nf_sign_warning_text(res, bit, text, sizeof text);
	if (strstr(text, word) == NULL)
		fail_msg("\"%s\" does not say \"%s\"", text, word);
}

/* Trap (a): the core rewrites byte 2 of an app image to the device's flash
 * mode before it hashes it. */
static void flash_mode_byte_is_checked_or_set(void **state)
{
	unsigned char *img = make_image(4096, NF_SIGN_FLASH_DIO), *out, *ref;
	char *in = path_in("fm.bin"), *o = path_in("fm.signed");
	struct nf_sign_result r;
	size_t out_len, ref_len;

	(void)state;
	nf_test_write_data(in, img, 4096);
	r = sign_with(in, o, 0, NF_SIGN_FLASH_UNKNOWN); /* devices' mode not given: a reminder */
	assert_int_equal(r.warnings, NF_SIGN_WARN_FLASH_MODE_UNCHECKED);
	assert_int_equal(r.flash_mode_in, NF_SIGN_FLASH_DIO);
	assert_warning_names(&r, NF_SIGN_WARN_FLASH_MODE_UNCHECKED, "dio");
	r = sign_with(in, o, 0, NF_SIGN_FLASH_DIO); /* the devices' mode: nothing to say */
	assert_int_equal(r.warnings, 0);
	r = sign_with(in, o, 0, NF_SIGN_FLASH_QIO); /* another mode: a mismatch, byte kept */
	assert_int_equal(r.warnings, NF_SIGN_WARN_FLASH_MODE_MISMATCH);
	assert_warning_names(&r, NF_SIGN_WARN_FLASH_MODE_MISMATCH, "qio");
	out = read_bin(o, &out_len);
	assert_int_equal(out[2], NF_SIGN_FLASH_DIO);
	free(out);
	/* set: byte 2 becomes the devices' mode, and the signature covers the
	 * image as a QIO device has it in flash after rewriting that byte */
	r = sign_with(in, o, NF_SIGN_SET_FLASH_MODE, NF_SIGN_FLASH_QIO);
	assert_int_equal(r.warnings, NF_SIGN_WARN_FLASH_MODE_SET);
	assert_int_equal(r.flash_mode, NF_SIGN_FLASH_QIO);
	assert_warning_names(&r, NF_SIGN_WARN_FLASH_MODE_SET, "to qio");
	img[2] = NF_SIGN_FLASH_QIO;
	nf_test_write_data(path_in("fm.qio.bin"), img, 4096);
	out = read_bin(o, &out_len);
	ref = openssl_signed(key2048, path_in("fm.qio.bin"), &ref_len);
	assert_int_equal(out_len, ref_len);
	assert_memory_equal(out, ref, ref_len);
	assert_verifies(o);
	free(out);
	free(ref);
	/* a byte that is no mode at all */
	img[2] = 0x07;
	nf_test_write_data(in, img, 4096);
	r = sign_with(in, o, 0, NF_SIGN_FLASH_DIO);
	assert_int_equal(r.warnings, NF_SIGN_WARN_FLASH_MODE_INVALID);
	assert_warning_names(&r, NF_SIGN_WARN_FLASH_MODE_INVALID, "0x07");
	r = sign_with(in, o, NF_SIGN_SET_FLASH_MODE, NF_SIGN_FLASH_DOUT);
	assert_int_equal(r.warnings, NF_SIGN_WARN_FLASH_MODE_SET);
	free(img);
}

static void flash_mode_arguments_and_names(void **state)
{
	struct nf_sign_key *key = load(key2048, 1, 0);
	struct nf_sign_opts set_unknown = {NF_SIGN_SET_FLASH_MODE, NF_SIGN_FLASH_UNKNOWN};
	struct nf_sign_opts bad_mode = {0, 4};
	unsigned char *img = make_image(64, NF_SIGN_FLASH_DIO);

	(void)state;
	nf_test_write_data(path_in("fa.bin"), img, 64);
	assert_int_equal(
	    nf_sign_image(key, path_in("fa.bin"), path_in("fa.out"), &set_unknown, NULL, NULL, 0),
	    NF_SIGN_ERR_ARG);
	assert_int_equal(
	    nf_sign_image(key, path_in("fa.bin"), path_in("fa.out"), &bad_mode, NULL, NULL, 0),
	    NF_SIGN_ERR_ARG);
	assert_int_equal(access(path_in("fa.out"), F_OK), -1);
	assert_int_equal(nf_sign_flash_mode_parse("QIO"), NF_SIGN_FLASH_QIO);
	assert_int_equal(nf_sign_flash_mode_parse("qout"), NF_SIGN_FLASH_QOUT);
	assert_int_equal(nf_sign_flash_mode_parse("dio"), NF_SIGN_FLASH_DIO);
	assert_int_equal(nf_sign_flash_mode_parse("Dout"), NF_SIGN_FLASH_DOUT);
	assert_int_equal(nf_sign_flash_mode_parse("fast"), NF_SIGN_FLASH_UNKNOWN);
	assert_int_equal(nf_sign_flash_mode_parse(NULL), NF_SIGN_FLASH_UNKNOWN);
	assert_string_equal(nf_sign_flash_mode_name(NF_SIGN_FLASH_DOUT), "dout");
	assert_string_equal(nf_sign_flash_mode_name(9), "unknown");
	free(img);
	nf_sign_key_free(key);
}

/* Images that are no app image: no flash mode business, a warning. */
static void other_images_are_signed_as_they_are(void **state)
{
	unsigned char *img = make_image(4098, -1), *out, *ref;
	struct nf_sign_result r;
	size_t out_len, ref_len;

	(void)state;
	nf_test_write_data(path_in("fs.bin"), img, 4098);
	r = sign_with(path_in("fs.bin"), path_in("fs.signed"), NF_SIGN_SET_FLASH_MODE,
	              NF_SIGN_FLASH_QIO);
	assert_int_equal(r.kind, NF_SIGN_IMAGE_OTHER);
	assert_int_equal(r.warnings, NF_SIGN_WARN_NOT_APP_IMAGE | NF_SIGN_WARN_UNALIGNED);
	assert_int_equal(r.flash_mode_in, NF_SIGN_FLASH_UNKNOWN);
	assert_warning_names(&r, NF_SIGN_WARN_UNALIGNED, "4098");
	out = read_bin(path_in("fs.signed"), &out_len);
	ref = openssl_signed(key2048, path_in("fs.bin"), &ref_len);
	assert_int_equal(out_len, ref_len);
	assert_memory_equal(out, ref, ref_len); /* byte 2 untouched */
	free(out);
	free(ref);
	free(img);
}

/* A gzip file of the pattern whose length is 1, 2 or 3 past a multiple of 4
 * (residue), made by the real gzip; the original in orig, the .gz in gz. */
static void make_gzip(int residue, int with_name, const char *orig, const char *gz)
{
	struct stat st;

	for (int n = 1; n < 400; n++) {
		unsigned char *img = make_image((size_t)n * 53, -1);

		nf_test_write_data(orig, img, (size_t)n * 53);
		free(img);
		run("gzip -9 -c %s '%s' >'%s'", with_name ? "" : "-n", orig, gz);
		assert_int_equal(stat(gz, &st), 0);
		if (st.st_size % 4 == residue)
			return;
	}
	fail_msg("no gzip file of length 4k+%d", residue);
}

/* Extracts the payload of the signed image at path into payload_path. */
static void extract_payload(const char *path, const char *payload_path)
{
	size_t len;
	unsigned char *s = read_bin(path, &len);

	assert_true(len > 260);
	nf_test_write_data(payload_path, s, len - 260);
	free(s);
}

/* Trap (b): released cores verify a signed .bin.gz only when its length is a
 * multiple of 4; padding grows the gzip header, and gzip still reads it. */
static void gzip_length_is_warned_and_padded(void **state)
{
	char *orig = path_in("z.bin"), *gz = path_in("z.bin.gz"), *o = path_in("z.signed");
	struct nf_sign_result r;
	struct stat st;

	(void)state;
	for (int residue = 1; residue < 4; residue++)
		for (int with_name = 0; with_name < 2; with_name++) {
			make_gzip(residue, with_name, orig, gz);
			assert_int_equal(stat(gz, &st), 0);
			r = sign_with(gz, o, 0, NF_SIGN_FLASH_UNKNOWN);
			assert_int_equal(r.kind, NF_SIGN_IMAGE_GZIP);
			assert_int_equal(r.warnings, NF_SIGN_WARN_UNALIGNED |
			                                 NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES);
			assert_warning_names(&r, NF_SIGN_WARN_UNALIGNED, "pad the gzip");
			r = sign_with(gz, o, NF_SIGN_PAD_GZIP, NF_SIGN_FLASH_UNKNOWN);
			assert_int_equal(r.warnings, NF_SIGN_WARN_GZIP_PADDED |
			                                 NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES);
			assert_warning_names(&r, NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES, "bootloader");
			assert_int_equal(r.pad_len, 4 - residue);
			assert_int_equal(r.payload_len, (uint64_t)st.st_size + 4 - residue);
			assert_int_equal(r.payload_len % 4, 0);
			assert_verifies(o);
			extract_payload(o, path_in("p.gz"));
			run("gzip -t '%s' && gzip -dc '%s' | cmp -s - '%s'", path_in("p.gz"),
			    path_in("p.gz"), orig);
		}
}

/* A gzip file with a header comment already: the comment grows. One with a
 * header CRC: refused, as the CRC would have to be recomputed. */
static void gzip_comment_grows_and_crc_refuses(void **state)
{
	char *orig = path_in("c.bin"), *gz = path_in("c.bin.gz"), *o = path_in("c.signed");
	unsigned char *z, *with;
	size_t len;
	struct nf_sign_result r;
	char err[512] = "";
	struct nf_sign_key *key = load(key2048, 1, 0);
	struct nf_sign_opts pad = {NF_SIGN_PAD_GZIP, NF_SIGN_FLASH_UNKNOWN};

	(void)state;
	make_gzip(2, 0, orig, gz); /* + "hi\0" = 4k+1 */
	z = read_bin(gz, &len);
	with = malloc(len + 3);
	assert_non_null(with);
	memcpy(with, z, 10);
	with[3] = 0x10; /* FCOMMENT */
	memcpy(with + 10, "hi", 3);
	memcpy(with + 13, z + 10, len - 10);
	nf_test_write_data(gz, with, len + 3);
	r = sign_with(gz, o, NF_SIGN_PAD_GZIP, NF_SIGN_FLASH_UNKNOWN);
	assert_int_equal(r.pad_len, 3);
	assert_verifies(o);
	extract_payload(o, path_in("cp.gz"));
	run("gzip -dc '%s' | cmp -s - '%s'", path_in("cp.gz"), orig);
	with[3] = 0x02; /* FHCRC, then two bytes where the comment was */
	memmove(with + 12, with + 13, len - 10);
	nf_test_write_data(gz, with, len + 2); /* 4k+0: nothing to pad, fine */
	assert_int_equal(nf_sign_image(key, gz, o, &pad, &r, NULL, 0), NF_SIGN_OK);
	assert_int_equal(r.warnings, NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES);
	nf_test_write_data(gz, with, len + 1); /* 4k+3: would need padding */
	assert_int_equal(nf_sign_image(key, gz, o, &pad, &r, err, sizeof err), NF_SIGN_ERR_PAD);
	assert_non_null(strstr(err, "FHCRC"));
	nf_test_write_data(gz, "\x1f\x8b\x08", 3); /* no whole header */
	assert_int_equal(nf_sign_image(key, gz, o, &pad, &r, err, sizeof err), NF_SIGN_ERR_PAD);
	free(z);
	free(with);
	nf_sign_key_free(key);
}

static void signed_input_refused_unless_forced(void **state)
{
	struct nf_sign_key *key = load(key2048, 1, 0), *k3 = load(key3072, 1, 0);
	struct nf_sign_opts force = {NF_SIGN_FORCE, NF_SIGN_FLASH_DIO};
	unsigned char *img = make_image(2048, NF_SIGN_FLASH_DIO);
	struct nf_sign_result r;
	struct nf_sign_trailer t;
	char err[512] = "";

	(void)state;
	nf_test_write_data(path_in("re.bin"), img, 2048);
	sign_ok(key, path_in("re.bin"), path_in("re.signed"), NULL);
	assert_int_equal(nf_sign_image(key, path_in("re.signed"), path_in("re.twice"), NULL, &r,
	                               err, sizeof err),
	                 NF_SIGN_ERR_ALREADY_SIGNED);
	assert_non_null(strstr(err, "already ends with a 256-byte signature"));
	assert_int_equal(access(path_in("re.twice"), F_OK), -1);
	r = sign_ok(key, path_in("re.signed"), path_in("re.twice"), &force);
	assert_int_equal(r.warnings, NF_SIGN_WARN_RESIGNED);
	assert_int_equal(r.payload_len, 2048 + 260);
	assert_verifies(path_in("re.twice"));
	/* a 3072-bit trailer is not one for this key's size: signed as is */
	sign_ok(k3, path_in("re.bin"), path_in("re.3072"), NULL);
	r = sign_ok(key, path_in("re.3072"), path_in("re.mixed"), NULL);
	assert_false(r.warnings & NF_SIGN_WARN_RESIGNED);
	assert_int_equal(nf_sign_verify_file(key, path_in("re.mixed"), &t, NULL, 0), NF_SIGN_OK);
	assert_int_equal(t.payload_len, 2048 + 388);
	free(img);
	nf_sign_key_free(key);
	nf_sign_key_free(k3);
}

static void sign_files_and_keys_refused_cleanly(void **state)
{
	struct nf_sign_key *key = load(key2048, 1, 0), *pub = load(pub2048, 0, 0);
	struct nf_sign_opts keep = {NF_SIGN_NO_OVERWRITE, NF_SIGN_FLASH_DIO};
	unsigned char *img = make_image(1000, NF_SIGN_FLASH_DIO), sig[NF_SIGN_MAX_SIG];
	char err[512] = "", *text;
	size_t sig_len;

	(void)state;
	nf_test_write_data(path_in("f.bin"), img, 1000);
	nf_test_write_file(path_in("f.out"), "keep me");
	assert_int_equal(
	    nf_sign_image(key, path_in("f.bin"), path_in("f.out"), &keep, NULL, err, sizeof err),
	    NF_SIGN_ERR_EXISTS);
	text = nf_test_read_file(path_in("f.out"));
	assert_string_equal(text, "keep me");
	free(text);
	assert_int_equal(
	    nf_sign_image(pub, path_in("f.bin"), path_in("f.out"), NULL, NULL, NULL, 0),
	    NF_SIGN_ERR_KEY_NOT_PRIVATE);
	assert_int_equal(nf_sign_data(pub, img, 1000, sig, &sig_len, NULL, 0),
	                 NF_SIGN_ERR_KEY_NOT_PRIVATE);
	assert_int_equal(
	    nf_sign_image(key, path_in("none.bin"), path_in("f.out"), NULL, NULL, err, sizeof err),
	    NF_SIGN_ERR_IO);
	assert_non_null(strstr(err, "none.bin"));
	assert_int_equal(nf_sign_image(key, dir, path_in("f.out"), NULL, NULL, err, sizeof err),
	                 NF_SIGN_ERR_IO);
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(
	    nf_sign_image(key, path_in("f.bin"), path_in("no/such/dir.out"), NULL, NULL, NULL, 0),
	    NF_SIGN_ERR_IO);
	/* in place: the input becomes the signed image */
	sign_ok(key, path_in("f.bin"), path_in("f.bin"), NULL);
	assert_verifies(path_in("f.bin"));
	assert_no_temp_files();
	free(img);
	nf_sign_key_free(key);
	nf_sign_key_free(pub);
}

static void every_code_and_warning_has_a_text(void **state)
{
	struct nf_sign_result r = {0};
	char text[512];

	(void)state;
	for (int i = NF_SIGN_OK; i <= NF_SIGN_ERR_BAD_SIGNATURE; i++) {
		assert_true(strlen(nf_sign_strerror((enum nf_sign_err)i)) > 5);
		for (int j = 0; j < i; j++)
			assert_string_not_equal(nf_sign_strerror((enum nf_sign_err)i),
			                        nf_sign_strerror((enum nf_sign_err)j));
	}
	assert_string_equal(nf_sign_strerror((enum nf_sign_err)99), "unknown error");
	for (unsigned bit = 1; bit <= NF_SIGN_WARN_GZIP_UNSIGNED_DEVICES; bit <<= 1)
		assert_true(strlen(nf_sign_warning_text(&r, bit, text, sizeof text)) > 20);
	assert_string_equal(nf_sign_warning_text(&r, 0x200, text, sizeof text), "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(sign_equals_openssl_2048),
	    cmocka_unit_test(sign_equals_openssl_3072),
	    cmocka_unit_test(sign_equals_openssl_17mb),
	    cmocka_unit_test(altered_images_are_rejected),
	    cmocka_unit_test(small_signer_refused_by_minimum),
	    cmocka_unit_test(trailer_parse_contract),
	    cmocka_unit_test(streaming_verifier_any_chunking),
	    cmocka_unit_test(keygen_default_is_2048_and_openssl_reads_it),
	    cmocka_unit_test(keygen_refuses_sizes_and_existing_files),
	    cmocka_unit_test(keygen_3072),
	    cmocka_unit_test(key_loading_says_what_is_wrong),
	    cmocka_unit_test(key_loading_accepts_every_rsa_form),
	    cmocka_unit_test(pubkey_header_is_the_core_form),
	    cmocka_unit_test(flash_mode_byte_is_checked_or_set),
	    cmocka_unit_test(flash_mode_arguments_and_names),
	    cmocka_unit_test(other_images_are_signed_as_they_are),
	    cmocka_unit_test(gzip_length_is_warned_and_padded),
	    cmocka_unit_test(gzip_comment_grows_and_crc_refuses),
	    cmocka_unit_test(signed_input_refused_unless_forced),
	    cmocka_unit_test(sign_files_and_keys_refused_cleanly),
	    cmocka_unit_test(every_code_and_warning_has_a_text),
	};

	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
