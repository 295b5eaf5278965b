/*
 * test_ota_proto.c - unit tests for the ArduinoOTA / espota messages
 * (tools/ota/proto.c): the invitation byte for byte, the MD5 challenge's
 * answer and espota's cnonce against vectors computed independently with
 * Python's hashlib, strict parsing of datagrams (anything malformed or
 * oversized refused), and the ack-stream parser (tools/ota/acks.c) fed
 * acks that run together, split at every byte boundary, then the final OK
 * or ERROR: its estimate, and its exact account of every byte acked.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "ota.h"

#define MD5_A "0123456789abcdef0123456789abcdef"
#define MD5_B "fedcba9876543210fedcba9876543210"

static void test_invite_format(void **state)
{
	struct nf_ota_invite inv = {NF_OTA_CMD_FIRMWARE, 45678, 301008, MD5_A};
	char buf[NF_OTA_DATAGRAM_MAX];

	(void)state;
	assert_int_equal(nf_ota_invite_format(&inv, buf, sizeof buf), 48);
	assert_string_equal(buf, "0 45678 301008 " MD5_A "\n");
	inv.command = NF_OTA_CMD_FS;
	assert_true(nf_ota_invite_format(&inv, buf, sizeof buf) > 0);
	assert_string_equal(buf, "100 45678 301008 " MD5_A "\n");
	inv.command = 7;
	assert_int_equal(nf_ota_invite_format(&inv, buf, sizeof buf), -1);
	inv.command = NF_OTA_CMD_FS;
	assert_int_equal(nf_ota_invite_format(&inv, buf, 20), -1); /* does not fit */
}

static void expect_invite_bad(const char *text)
{
	struct nf_ota_invite inv;
	char err[NF_OTA_ERR_MAX] = "";

	if (nf_ota_invite_parse(text, strlen(text), &inv, err, sizeof err) == 0)
		fail_msg("\"%s\" parsed as an invitation", text);
	assert_true(err[0] != '\0');
}

static void test_invite_parse(void **state)
{
	struct nf_ota_invite inv;
	char err[NF_OTA_ERR_MAX], big[NF_OTA_DATAGRAM_MAX + 10];
	const char *upper = "100 1 16777216 0123456789ABCDEF0123456789ABCDEF";

	(void)state;
	assert_int_equal(nf_ota_invite_parse("0 45678 301008 " MD5_A "\n", 47, &inv, err, sizeof err), 0);
	assert_int_equal(inv.command, 0);
	assert_int_equal(inv.port, 45678);
	assert_int_equal(inv.size, 301008);
	assert_string_equal(inv.md5, MD5_A);
	assert_int_equal(nf_ota_invite_parse(upper, strlen(upper), &inv, err, sizeof err), 0);
	assert_int_equal(inv.command, 100);
	assert_int_equal(inv.size, NF_OTA_SIZE_MAX);
	assert_string_equal(inv.md5, MD5_A); /* stored lower-case */

	expect_invite_bad("");
	expect_invite_bad("\n");
	expect_invite_bad("200 45678 301008 " MD5_A "\n"); /* not an invitation command */
	expect_invite_bad("1 45678 301008 " MD5_A "\n");
	expect_invite_bad("0 0 301008 " MD5_A "\n");       /* port 0 */
	expect_invite_bad("0 65536 301008 " MD5_A "\n");
	expect_invite_bad("0 45678 0 " MD5_A "\n");         /* empty image */
	expect_invite_bad("0 45678 16777217 " MD5_A "\n");  /* larger than any flash */
	expect_invite_bad("0 45678 99999999999999999999 " MD5_A "\n");
	expect_invite_bad("0 45678 301008 0123456789abcdef0123456789abcde\n");   /* 31 */
	expect_invite_bad("0 45678 301008 0123456789abcdef0123456789abcdef0\n"); /* 33 */
	expect_invite_bad("0 45678 301008 0123456789abcdef0123456789abcdeg\n");  /* not hex */
	expect_invite_bad("0  45678 301008 " MD5_A "\n");
	expect_invite_bad("-0 45678 301008 " MD5_A "\n");
	expect_invite_bad("0 45678 301008 " MD5_A "\n\n");
	expect_invite_bad("0 45678 301008 " MD5_A " extra");
	assert_int_equal(nf_ota_invite_parse("0 1 1 " MD5_A "\0", 39, &inv, err, sizeof err), -1);
	memset(big, '1', sizeof big);
	assert_int_equal(nf_ota_invite_parse(big, sizeof big, &inv, err, sizeof err), -1);
}

/* Vectors from Python: hashlib.md5(...).hexdigest(). */
static void test_auth(void **state)
{
	char out[NF_OTA_MD5_HEX + 1], buf[NF_OTA_DATAGRAM_MAX], cn[NF_OTA_MD5_HEX + 1],
	    resp[NF_OTA_MD5_HEX + 1], nonce[NF_OTA_MD5_HEX + 1], err[NF_OTA_ERR_MAX];

	(void)state;
	assert_int_equal(nf_ota_md5_hex("", 0, out), 0);
	assert_string_equal(out, "d41d8cd98f00b204e9800998ecf8427e");
	/* md5(md5("secret") + ":" + nonce + ":" + cnonce) */
	assert_int_equal(nf_ota_auth_response("secret", MD5_A, MD5_B, out), 0);
	assert_string_equal(out, "97a3111e1a27299c210fc49a94a97011");
	/* espota's cnonce: md5(filename + size + filemd5 + device ip) */
	assert_int_equal(nf_ota_cnonce("firmware.bin", 1234, MD5_A, "192.168.1.5", out), 0);
	assert_string_equal(out, "5b2811139134d2909d5e50feefbd0602");

	assert_int_equal(nf_ota_auth_format(MD5_B, MD5_A, buf, sizeof buf), 70);
	assert_string_equal(buf, "200 " MD5_B " " MD5_A "\n");
	assert_int_equal(nf_ota_auth_parse(buf, strlen(buf), cn, resp, err, sizeof err), 0);
	assert_string_equal(cn, MD5_B);
	assert_string_equal(resp, MD5_A);
	assert_int_equal(nf_ota_auth_parse("201 " MD5_B " " MD5_A, 69, cn, resp, err, sizeof err), -1);
	assert_int_equal(nf_ota_auth_parse("200 " MD5_B, 36, cn, resp, err, sizeof err), -1);

	assert_int_equal(nf_ota_challenge_parse("AUTH " MD5_A, 37, nonce, err, sizeof err), 0);
	assert_string_equal(nonce, MD5_A);
	assert_int_equal(nf_ota_challenge_parse("AUTH " MD5_A "0", 38, nonce, err, sizeof err), -1);
	assert_int_equal(nf_ota_challenge_parse("AUTH", 4, nonce, err, sizeof err), -1);
	assert_int_equal(nf_ota_challenge_parse("OK", 2, nonce, err, sizeof err), -1);
}

static void test_errors(void **state)
{
	char buf[NF_OTA_TEXT_MAX];

	(void)state;
	assert_int_equal(nf_ota_format_error(NF_OTA_UPDATE_SPACE, buf, sizeof buf), 27);
	assert_string_equal(buf, "ERROR[4]: Not Enough Space\n");
	assert_int_equal(nf_ota_format_error(NF_OTA_UPDATE_MD5, buf, 5), -1);
}

/* Feeds the stream in pieces cut at `cut` (0: whole), after telling the
 * parser the chunks sent. */
static struct nf_ota_acks feed(const char *stream, const uint32_t *chunks, size_t nchunks,
                               size_t cut)
{
	struct nf_ota_acks a;
	size_t len = strlen(stream);

	nf_ota_acks_init(&a, NF_OTA_CHUNK);
	for (size_t i = 0; i < nchunks; i++)
		nf_ota_acks_sent(&a, chunks[i]);
	if (cut == 0 || cut >= len) {
		nf_ota_acks_feed(&a, (const uint8_t *)stream, len);
	} else {
		nf_ota_acks_feed(&a, (const uint8_t *)stream, cut);
		nf_ota_acks_feed(&a, (const uint8_t *)stream + cut, len - cut);
	}
	return a;
}

static void test_acks_together(void **state)
{
	static const uint32_t chunks[] = {1460, 1460, 1460, 500};
	const char *ok = "146014601460500OK", *err = "14601460ERROR[7]: MD5 Failed\nrest";

	(void)state;
	for (size_t cut = 0; cut <= strlen(ok); cut++) {
		struct nf_ota_acks a = feed(ok, chunks, 4, cut);
		assert_int_equal(a.state, NF_OTA_ACKS_OK);
		assert_int_equal(a.acked, 4880);
		assert_string_equal(a.text, "OK");
	}
	for (size_t cut = 0; cut <= strlen(err); cut++) {
		struct nf_ota_acks a = feed(err, chunks, 4, cut);
		assert_int_equal(a.state, NF_OTA_ACKS_ERROR);
		assert_int_equal(a.acked, 2920);
		assert_true(a.final_done);
		assert_string_equal(a.text, "ERROR[7]: MD5 Failed");
	}
}

static void test_acks_uneven_reads(void **state)
{
	struct nf_ota_acks a;
	static const uint32_t one[] = {1460};
	const char *reads = "1000460"; /* the device read 1000, then 460 */

	(void)state;
	for (size_t cut = 0; cut <= strlen(reads); cut++) {
		a = feed(reads, one, 1, cut);
		assert_int_equal(a.state, NF_OTA_ACKS_RUNNING);
		assert_int_equal(a.acked, 1460);
	}
	/* A full ack is complete at once; a shorter one waits for the next digit
	 * or the end. */
	nf_ota_acks_init(&a, NF_OTA_CHUNK);
	nf_ota_acks_sent(&a, 1460);
	nf_ota_acks_feed(&a, (const uint8_t *)"1460", 4);
	assert_int_equal(a.acked, 1460);
	nf_ota_acks_sent(&a, 1460);
	nf_ota_acks_feed(&a, (const uint8_t *)"14", 2);
	assert_int_equal(a.acked, 1460);
	nf_ota_acks_end(&a);
	assert_int_equal(a.acked, 1474);
}

/* Reads that split so that the digits mislead the estimate: the outcome
 * still comes from the final answer, and the estimate never exceeds what
 * was sent. */
static void test_acks_unlucky_split(void **state)
{
	static const uint32_t chunks[] = {1460, 1460};
	const char *stream = "1214481460OK"; /* reads of 12, 1448, 1460 */

	(void)state;
	for (size_t cut = 0; cut <= strlen(stream); cut++) {
		struct nf_ota_acks a = feed(stream, chunks, 2, cut);
		assert_int_equal(a.state, NF_OTA_ACKS_OK);
		assert_true(a.acked <= 2920);
	}
}

/* The exact account: whether some reading acks every byte sent, and how
 * far behind the device is at least. */
static void test_acks_every_byte(void **state)
{
	static const uint32_t two[] = {1460, 1460}, four[] = {1460, 1460, 1460, 1460};
	struct nf_ota_acks a;

	(void)state;
	for (size_t cut = 0; cut <= 12; cut++) {
		/* Reads of 12, 1448 and 1460: the estimate is low, the account exact. */
		a = feed("1214481460OK", two, 2, cut);
		assert_int_equal(a.state, NF_OTA_ACKS_OK);
		assert_true(nf_ota_acks_all(&a));
		assert_int_equal(nf_ota_acks_behind(&a), 0);
		/* One byte acked per chunk, then OK: no reading acks the image
		 * (the closest one is a single ack of 1111 bytes). */
		a = feed("1111OK", four, 4, cut);
		assert_int_equal(a.state, NF_OTA_ACKS_OK);
		assert_false(nf_ota_acks_all(&a));
		assert_int_equal(nf_ota_acks_behind(&a), 4 * 1460 - 1111);
	}
	/* OK after the first chunk of many: all of it acked, not of what follows. */
	a = feed("1460OK", two, 1, 0);
	assert_true(nf_ota_acks_all(&a));
	nf_ota_acks_sent(&a, 1460);
	assert_false(nf_ota_acks_all(&a));
	assert_int_equal(a.state, NF_OTA_ACKS_OK);
	/* A pending ack counts as complete; more digits may follow. */
	a = feed("146014", two, 2, 0);
	assert_false(nf_ota_acks_all(&a));
	assert_int_equal(nf_ota_acks_behind(&a), 2920 - 1474);
	nf_ota_acks_feed(&a, (const uint8_t *)"60", 2);
	assert_true(nf_ota_acks_all(&a));
	/* Nothing acked yet: behind by everything sent. */
	a = feed("", two, 2, 0);
	assert_int_equal(nf_ota_acks_behind(&a), 2920);
}

static void expect_bad(const char *stream, uint32_t sent)
{
	struct nf_ota_acks a;

	nf_ota_acks_init(&a, NF_OTA_CHUNK);
	nf_ota_acks_sent(&a, sent);
	if (nf_ota_acks_feed(&a, (const uint8_t *)stream, strlen(stream)) != NF_OTA_ACKS_BAD)
		fail_msg("\"%s\" after %u bytes: not refused", stream, sent);
	assert_true(a.text[0] != '\0');
	/* BAD stays BAD. */
	assert_int_equal(nf_ota_acks_feed(&a, (const uint8_t *)"OK", 2), NF_OTA_ACKS_BAD);
}

static void test_acks_bad(void **state)
{
	char garbage[NF_OTA_TEXT_MAX + 20];

	(void)state;
	expect_bad("12345", 4);        /* more digits than bytes sent */
	expect_bad("1", 0);            /* nothing sent */
	expect_bad("0", 1460);         /* leading zero */
	expect_bad("01460", 1460);
	expect_bad("1460X", 1460);     /* neither O nor E */
	expect_bad("HTTP/1.1 200", 1460);
	expect_bad("ERROR\x01", 1460);
	memset(garbage, 'E', sizeof garbage - 1);
	garbage[sizeof garbage - 1] = '\0';
	expect_bad(garbage, 1460);     /* final answer too long */
	expect_bad("1000000", 1460);   /* no reading cuts it into acks of at most 1460 */
	expect_bad("99", 10);          /* every reading acks bytes not yet sent */
}

/* The default deadline of a push: espota's waits that happen once (90 s)
 * plus 1 s per 4 KiB, rounded up. */
static void test_send_deadline(void **state)
{
	(void)state;
	assert_int_equal(NF_OTA_DEADLINE_BASE_MS, 90000);
	assert_int_equal(nf_ota_send_deadline_ms(1), 91000);
	assert_int_equal(nf_ota_send_deadline_ms(4096), 91000);
	assert_int_equal(nf_ota_send_deadline_ms(4097), 92000);
	assert_int_equal(nf_ota_send_deadline_ms(1024 * 1024), 346000);
	assert_int_equal(nf_ota_send_deadline_ms(NF_OTA_SIZE_MAX), 4186000);
}

/* A device silent while more than the window was sent: no reading left. */
static void test_acks_window(void **state)
{
	struct nf_ota_acks a;

	(void)state;
	nf_ota_acks_init(&a, NF_OTA_CHUNK);
	for (unsigned i = 0; i < NF_OTA_ACK_WINDOW / 1460; i++)
		nf_ota_acks_sent(&a, 1460);
	assert_int_equal(a.state, NF_OTA_ACKS_RUNNING);
	nf_ota_acks_feed(&a, (const uint8_t *)"1460", 4);
	assert_int_equal(a.state, NF_OTA_ACKS_RUNNING);
	nf_ota_acks_sent(&a, 1460 * 2);
	assert_int_equal(a.state, NF_OTA_ACKS_BAD);
	assert_non_null(strstr(a.text, "behind"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_invite_format),
		cmocka_unit_test(test_invite_parse),
		cmocka_unit_test(test_auth),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_acks_together),
		cmocka_unit_test(test_acks_uneven_reads),
		cmocka_unit_test(test_acks_unlucky_split),
		cmocka_unit_test(test_acks_bad),
		cmocka_unit_test(test_acks_every_byte),
		cmocka_unit_test(test_acks_window),
		cmocka_unit_test(test_send_deadline),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
