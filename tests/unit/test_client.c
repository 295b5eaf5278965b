/*
 * test_client.c - unit tests for the device core (core/client.c, with
 * answer.c and strerror.c), driven through the fake port (fake_port.c).
 *
 * Each flow asserts the exact sequence of messages the callback receives
 * (the values of docs/PEERS.md section 6), the requests made (URL and
 * headers), the flash operations (begin / write / finish / abort, in order)
 * and what ends up committed. The never-brick rule is checked everywhere:
 * a failed image leaves the committed image as it was, and the fake port
 * counts any call that breaks the port contract (tests expect none).
 * Resumed downloads are checked the same way: the Range and If-Range the
 * core sends, one flash session across the pieces, the number of bytes
 * fetched, and the verdict over the whole image.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fake_port.h"
#include "nofuss/client.h"
#include "nofuss/port.h"

#define SERVER  "http://srv"
#define DEVICE  "DEV"
#define VERSION "1.0"
#define BUILD   "1559606400"
#define MAC     "5C:CF:7F:8B:6B:26"

#define FW_URL "http://srv//fw.bin" /* server + "/" + "/fw.bin", as the original */
#define FS_URL "http://srv//fs.bin"

#define ANSWER_FW   "{\"version\":\"1.1\",\"firmware\":\"/fw.bin\",\"spiffs\":\"\"}"
#define ANSWER_FS   "{\"version\":\"1.1\",\"firmware\":\"\",\"spiffs\":\"/fs.bin\"}"
#define ANSWER_BOTH "{\"version\":\"1.1\",\"firmware\":\"/fw.bin\",\"spiffs\":\"/fs.bin\"}"

#define FW_LEN   3000
#define FS_LEN   2000
#define MAX_MSGS 32

enum {
	START = NF_MSG_START,
	UPTODATE = NF_MSG_UPTODATE,
	UPDATING = NF_MSG_UPDATING,
	FS_UPDATED = NF_MSG_FILESYSTEM_UPDATED,
	FW_UPDATED = NF_MSG_FIRMWARE_UPDATED,
	RESET = NF_MSG_RESET,
	END = NF_MSG_END,
	NO_RESPONSE = NF_MSG_NO_RESPONSE_ERROR,
	PARSE = NF_MSG_PARSE_ERROR,
	FS_ERROR = NF_MSG_FILESYSTEM_UPDATE_ERROR,
	FW_ERROR = NF_MSG_FIRMWARE_UPDATE_ERROR
};

static uint8_t fw_img[FW_LEN], fs_img[FS_LEN];
static uint8_t fw_alt[FW_LEN]; /* another firmware: fw_img's first half, then other bytes */
static char fw_md5[33], fs_md5[33], alt_md5[33];
static const uint8_t old_fw[] = {0xE9, 'o', 'l', 'd', ' ', 'f', 'w'};
static const uint8_t old_fs[] = {'o', 'l', 'd', ' ', 'f', 's'};

struct fx {
	struct fake_port port;
	struct nf_client client;
	int msgs[MAX_MSGS];
	enum nf_error errors[MAX_MSGS]; /* nf_client_last_error() when each arrived */
	size_t nmsgs;
	unsigned reboots_at_reset;
	bool wrong_client; /* the callback got another pointer */
};

static void on_message(void *ctx, const struct nf_client *c, enum nf_message msg)
{
	struct fx *f = ctx;

	if (c != &f->client)
		f->wrong_client = true;
	if (msg == NF_MSG_RESET)
		f->reboots_at_reset = f->port.reboots;
	if (f->nmsgs < MAX_MSGS) {
		f->errors[f->nmsgs] = nf_client_last_error(c);
		f->msgs[f->nmsgs] = (int)msg;
	}
	f->nmsgs++;
}

static int group_setup(void **state)
{
	(void)state;
	for (size_t i = 0; i < FW_LEN; i++)
		fw_img[i] = (uint8_t)(i * 7 + 3);
	fw_img[0] = 0xE9;
	for (size_t i = 0; i < FS_LEN; i++)
		fs_img[i] = (uint8_t)(i * 13 + 1);
	fs_img[0] = 0x00; /* a filesystem image may start with anything */
	fake_md5_hex(fw_img, FW_LEN, fw_md5);
	fake_md5_hex(fs_img, FS_LEN, fs_md5);
	memcpy(fw_alt, fw_img, FW_LEN);
	for (size_t i = FW_LEN / 2; i < FW_LEN; i++)
		fw_alt[i] = (uint8_t)~fw_img[i];
	fake_md5_hex(fw_alt, FW_LEN, alt_md5);
	return 0;
}

static void fx_settings(struct fx *f)
{
	assert_int_equal(nf_client_set_server(&f->client, SERVER), 0);
	assert_int_equal(nf_client_set_device(&f->client, DEVICE), 0);
	assert_int_equal(nf_client_set_version(&f->client, VERSION), 0);
	assert_int_equal(nf_client_set_build(&f->client, BUILD), 0);
	assert_int_equal(nf_client_set_mac(&f->client, MAC), 0);
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof *f);

	assert_non_null(f);
	fake_port_init(&f->port);
	fake_port_set_committed(&f->port, NF_IMAGE_FIRMWARE, old_fw, sizeof old_fw);
	fake_port_set_committed(&f->port, NF_IMAGE_FILESYSTEM, old_fs, sizeof old_fs);
	nf_client_init(&f->client, &f->port);
	fx_settings(f);
	nf_client_on_message(&f->client, on_message, f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fx *f = *state;

	/* Whatever a test did, the core kept the port contract. */
	if (f->port.violations != 0)
		fail_msg("port contract violated %u times, last: %s", f->port.violations,
		         f->port.last_violation);
	assert_false(f->wrong_client);
	assert_false(f->port.open); /* no flash session left open */
	free(f);
	return 0;
}

static void reset_record(struct fx *f)
{
	f->nmsgs = 0;
}

/* ---- assertion helpers ---------------------------------------------------- */

static void check_msgs(const struct fx *f, const int *want, size_t n, const char *where)
{
	bool same = f->nmsgs == n;

	for (size_t i = 0; same && i < n; i++)
		same = f->msgs[i] == want[i];
	if (same)
		return;
	fprintf(stderr, "%s: messages differ\n  want:", where);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " %d", want[i]);
	fprintf(stderr, "\n  got: ");
	for (size_t i = 0; i < f->nmsgs && i < MAX_MSGS; i++)
		fprintf(stderr, " %d", f->msgs[i]);
	fprintf(stderr, "\n");
	fail();
}

#define STR_(x) #x
#define STR(x)  STR_(x)
#define ASSERT_MSGS(f, ...)                                                                        \
	do {                                                                                       \
		static const int want_[] = {__VA_ARGS__};                                          \
		check_msgs((f), want_, sizeof want_ / sizeof want_[0],                             \
		           __FILE__ ":" STR(__LINE__));                                            \
	} while (0)

static void check_urls(const struct fx *f, const char *const *want, size_t n)
{
	assert_int_equal(f->port.nrequests, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(f->port.requests[i].url, want[i]);
}

#define ASSERT_URLS(f, ...)                                                                        \
	do {                                                                                       \
		static const char *const want_[] = {__VA_ARGS__};                                  \
		check_urls((f), want_, sizeof want_ / sizeof want_[0]);                            \
	} while (0)

#define OP(kind, image, size, result)                                                              \
	{                                                                                          \
		FAKE_OP_##kind, NF_IMAGE_##image, (size), (result)                                 \
	}

static void check_ops(const struct fx *f, const struct fake_op *want, size_t n, const char *where)
{
	bool same = f->port.nops == n;

	for (size_t i = 0; same && i < n; i++)
		same =
		    f->port.ops[i].kind == want[i].kind && f->port.ops[i].image == want[i].image &&
		    f->port.ops[i].size == want[i].size && f->port.ops[i].result == want[i].result;
	if (same)
		return;
	fprintf(stderr, "%s: flash operations differ (kind image size result)\n  want:", where);
	for (size_t i = 0; i < n; i++)
		fprintf(stderr, " [%d %d %u %d]", want[i].kind, want[i].image, want[i].size,
		        want[i].result);
	fprintf(stderr, "\n  got: ");
	for (size_t i = 0; i < f->port.nops; i++)
		fprintf(stderr, " [%d %d %u %d]", f->port.ops[i].kind, f->port.ops[i].image,
		        f->port.ops[i].size, f->port.ops[i].result);
	fprintf(stderr, "\n");
	fail();
}

#define ASSERT_OPS(f, ...)                                                                         \
	do {                                                                                       \
		static const struct fake_op want_[] = {__VA_ARGS__};                               \
		check_ops((f), want_, sizeof want_ / sizeof want_[0], __FILE__ ":" STR(__LINE__)); \
	} while (0)
#define ASSERT_NO_OPS(f) assert_int_equal((f)->port.nops, 0)

static void assert_committed(const struct fx *f, enum nf_image image, const void *data, size_t len)
{
	const struct fake_image *img = &f->port.committed[image];

	assert_int_equal(img->len, len);
	assert_memory_equal(img->data, data, len);
}

/* Nothing was committed: both images are the old ones. */
static void assert_untouched(const struct fx *f)
{
	assert_committed(f, NF_IMAGE_FIRMWARE, old_fw, sizeof old_fw);
	assert_committed(f, NF_IMAGE_FILESYSTEM, old_fs, sizeof old_fs);
	assert_int_equal(f->port.committed[0].commits + f->port.committed[1].commits, 0);
	assert_int_equal(f->port.reboots, 0);
}

static void assert_error(const struct fx *f, enum nf_error err)
{
	const char *text = nf_strerror(err);

	assert_int_equal(nf_client_last_error(&f->client), err);
	assert_non_null(text);
	assert_true(text[0] != '\0');
	/* The error was already set when the error message was delivered. */
	for (size_t i = 0; i < f->nmsgs && i < MAX_MSGS; i++)
		if (f->msgs[i] >= NF_MSG_NO_RESPONSE_ERROR)
			assert_int_equal(f->errors[i], err);
}

/* ---- scripting helpers ---------------------------------------------------- */

static struct fake_response *serve_answer(struct fx *f, const char *json)
{
	return fake_port_serve_str(&f->port, SERVER, 200, json);
}

static struct fake_response *serve_fw(struct fx *f, const char *url)
{
	struct fake_response *r = fake_port_serve(&f->port, url, 200, fw_img, FW_LEN);
	r->md5 = fw_md5;
	return r;
}

static struct fake_response *serve_fs(struct fx *f, const char *url)
{
	struct fake_response *r = fake_port_serve(&f->port, url, 200, fs_img, FS_LEN);
	r->md5 = fs_md5;
	return r;
}

/* The answer offers the firmware only, which is served as given. */
static struct fake_response *firmware_update(struct fx *f)
{
	serve_answer(f, ANSWER_FW);
	return serve_fw(f, FW_URL);
}

/* A firmware update that must fail with err: nothing committed, no reboot. */
static void expect_fw_failure(struct fx *f, enum nf_error err)
{
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	ASSERT_URLS(f, SERVER, FW_URL);
	assert_error(f, err);
	assert_untouched(f);
}

/* ---- the flows ------------------------------------------------------------- */

static void test_up_to_date(void **state)
{
	struct fx *f = *state;

	serve_answer(f, "{}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPTODATE, END);
	ASSERT_URLS(f, SERVER);
	ASSERT_NO_OPS(f);
	assert_error(f, NF_OK);
	assert_untouched(f);
	assert_string_equal(nf_client_offered_version(&f->client), "");
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_IDLE);
	assert_int_equal(f->port.nlog, 0);
}

static void test_filesystem_only(void **state)
{
	struct fx *f = *state;

	serve_answer(f, ANSWER_FS);
	serve_fs(f, FS_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, RESET);
	ASSERT_URLS(f, SERVER, FS_URL);
	ASSERT_OPS(f, OP(BEGIN, FILESYSTEM, FS_LEN, 0), OP(WRITE, FILESYSTEM, FS_LEN, 0),
	           OP(FINISH, FILESYSTEM, FS_LEN, 0));
	assert_committed(f, NF_IMAGE_FILESYSTEM, fs_img, FS_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, old_fw, sizeof old_fw);
	assert_int_equal(f->port.reboots, 1);
	assert_int_equal(f->reboots_at_reset, 0); /* RESET comes before the reboot */
	assert_error(f, NF_OK);
	assert_string_equal(nf_client_offered_version(&f->client), "1.1");
	/* The image request says which image it wants, as ESP8266httpUpdate does. */
	assert_true(f->port.requests[1].image);
	assert_int_equal(f->port.requests[1].nheaders, 1);
	assert_string_equal(fake_request_header(&f->port.requests[1], "x-ESP8266-mode"), "spiffs");
}

static void test_firmware_only(void **state)
{
	struct fx *f = *state;

	firmware_update(f);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	ASSERT_URLS(f, SERVER, FW_URL);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(FINISH, FIRMWARE, FW_LEN, 0));
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_committed(f, NF_IMAGE_FILESYSTEM, old_fs, sizeof old_fs);
	assert_int_equal(f->port.reboots, 1);
	assert_int_equal(f->reboots_at_reset, 0);
	assert_error(f, NF_OK);
	assert_int_equal(f->port.md5_inits, 1);
	assert_int_equal(f->port.md5_finals, 1);
	assert_true(f->port.requests[1].image);
	assert_int_equal(f->port.requests[1].nheaders, 2);
	assert_string_equal(fake_request_header(&f->port.requests[1], "x-ESP8266-mode"), "sketch");
	assert_string_equal(fake_request_header(&f->port.requests[1], "x-ESP8266-version"),
	                    VERSION);
	/* handle() rebooted, so the state machine is idle again. */
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_IDLE);
}

static void test_both(void **state)
{
	struct fx *f = *state;

	serve_answer(f, ANSWER_BOTH);
	serve_fs(f, FS_URL);
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	/* Filesystem first, then firmware, RESET, one reboot; END never. */
	ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, FW_UPDATED, RESET);
	ASSERT_URLS(f, SERVER, FS_URL, FW_URL);
	ASSERT_OPS(f, OP(BEGIN, FILESYSTEM, FS_LEN, 0), OP(WRITE, FILESYSTEM, FS_LEN, 0),
	           OP(FINISH, FILESYSTEM, FS_LEN, 0), OP(BEGIN, FIRMWARE, FW_LEN, 0),
	           OP(WRITE, FIRMWARE, FW_LEN, 0), OP(FINISH, FIRMWARE, FW_LEN, 0));
	assert_committed(f, NF_IMAGE_FILESYSTEM, fs_img, FS_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_int_equal(f->port.reboots, 1);
	assert_int_equal(f->reboots_at_reset, 0);
	assert_error(f, NF_OK);
}

static void test_filesystem_fails_no_firmware_request(void **state)
{
	struct fx *f = *state;

	serve_answer(f, ANSWER_BOTH);
	serve_fs(f, FS_URL)->md5 = fw_md5; /* the wrong MD5 */
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_ERROR, END);
	ASSERT_URLS(f, SERVER, FS_URL); /* the firmware is not even asked for */
	ASSERT_OPS(f, OP(BEGIN, FILESYSTEM, FS_LEN, 0), OP(WRITE, FILESYSTEM, FS_LEN, 0),
	           OP(ABORT, FILESYSTEM, FS_LEN, 0));
	assert_error(f, NF_ERR_MD5);
	assert_untouched(f);
}

static void test_firmware_fails_after_filesystem(void **state)
{
	struct fx *f = *state;

	serve_answer(f, ANSWER_BOTH);
	serve_fs(f, FS_URL);
	fake_port_serve_str(&f->port, FW_URL, 404, "not found");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, FW_ERROR, END); /* no RESET */
	ASSERT_URLS(f, SERVER, FS_URL, FW_URL);
	ASSERT_OPS(f, OP(BEGIN, FILESYSTEM, FS_LEN, 0), OP(WRITE, FILESYSTEM, FS_LEN, 0),
	           OP(FINISH, FILESYSTEM, FS_LEN, 0));
	assert_error(f, NF_ERR_HTTP_STATUS);
	/* The filesystem stays committed, as with the original client; no reboot. */
	assert_committed(f, NF_IMAGE_FILESYSTEM, fs_img, FS_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, old_fw, sizeof old_fw);
	assert_int_equal(f->port.reboots, 0);
}

static void test_nothing_to_download(void **state)
{
	struct fx *f = *state;

	/* An answer with members but no image: UPDATING, nothing done, END. */
	serve_answer(f, "{\"version\":\"1.1\",\"firmware\":\"\",\"spiffs\":\"\"}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, END);
	ASSERT_URLS(f, SERVER);
	ASSERT_NO_OPS(f);
	assert_error(f, NF_OK);
	assert_untouched(f);

	reset_record(f);
	f->port.nrequests = 0;
	serve_answer(f, "{\"size\":12}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, END);
	ASSERT_URLS(f, SERVER);
	assert_string_equal(nf_client_offered_version(&f->client), "");
}

/* ---- the check's failures -------------------------------------------------- */

static void test_empty_answer(void **state)
{
	struct fx *f = *state;

	serve_answer(f, "");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	ASSERT_URLS(f, SERVER);
	ASSERT_NO_OPS(f);
	assert_error(f, NF_ERR_EMPTY_ANSWER);
	assert_untouched(f);
}

static void test_not_an_object(void **state)
{
	struct fx *f = *state;
	static const char *const bodies[] = {
	    "[]", "hello", "{", "{\"version\":1}", "{\"firmware\":null}", "\"{}\"", "{}}", "}",
	};

	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		reset_record(f);
		serve_answer(f, bodies[i]);
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, PARSE, END);
		assert_error(f, NF_ERR_PARSE);
	}
	assert_int_equal(f->port.nrequests, sizeof bodies / sizeof bodies[0]);
	ASSERT_NO_OPS(f);
	assert_untouched(f);
}

/* A valid answer of exactly len bytes: {"version":"xxx...x"}. */
static char *long_answer(size_t len)
{
	char *s = malloc(len + 1);

	assert_non_null(s);
	assert_true(len > 14);
	memcpy(s, "{\"version\":\"", 12);
	memset(s + 12, 'x', len - 14);
	memcpy(s + len - 2, "\"}", 3);
	assert_int_equal(strlen(s), len);
	return s;
}

static void test_answer_size_limit(void **state)
{
	struct fx *f = *state;
	char *fits = long_answer(NF_CLIENT_ANSWER_MAX);
	char *over = long_answer(NF_CLIENT_ANSWER_MAX + 1);
	static const size_t chunks[] = {0, 1, 100, NF_CLIENT_ANSWER_MAX};

	for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		reset_record(f);
		serve_answer(f, fits)->chunk = chunks[i];
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, UPDATING, END);
		assert_error(f, NF_OK);
		assert_int_equal(strlen(nf_client_offered_version(&f->client)),
		                 NF_CLIENT_ANSWER_MAX - 14);

		reset_record(f);
		serve_answer(f, over)->chunk = chunks[i];
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, PARSE, END);
		assert_error(f, NF_ERR_ANSWER_TOO_BIG);
		assert_string_equal(nf_client_offered_version(&f->client), "");
	}
	free(fits);
	free(over);
	ASSERT_NO_OPS(f);
}

static void test_check_http_status(void **state)
{
	struct fx *f = *state;
	static const int statuses[] = {404, 500, 304, 301, 204};

	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		reset_record(f);
		/* A body that would parse must still not be used. */
		fake_port_serve_str(&f->port, SERVER, statuses[i], ANSWER_FW);
		serve_fw(f, FW_URL);
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, NO_RESPONSE, END);
		assert_error(f, NF_ERR_HTTP_STATUS);
	}
	assert_int_equal(f->port.nrequests, sizeof statuses / sizeof statuses[0]);
	ASSERT_NO_OPS(f);
	assert_untouched(f);
}

static void test_check_transport_error(void **state)
{
	struct fx *f = *state;

	serve_answer(f, "{}")->transport_error = true;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	ASSERT_URLS(f, SERVER);
	assert_error(f, NF_ERR_TRANSPORT);

	/* Cut in the middle of the answer. */
	reset_record(f);
	serve_answer(f, ANSWER_FW)->cut_after = 10;
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_error(f, NF_ERR_TRANSPORT);
	assert_int_equal(f->port.nrequests, 2);
	ASSERT_NO_OPS(f);
	assert_untouched(f);
}

/* ---- URLs and requests ----------------------------------------------------- */

static void test_image_paths(void **state)
{
	struct fx *f = *state;
	static const struct {
		const char *path, *url;
	} cases[] = {
	    /* server + "/" + path, "//" kept (docs/PEERS.md section 6) */
	    {"/f.bin", "http://srv//f.bin"},
	    {"f.bin", "http://srv/f.bin"},
	    {"firmware/a-1.2.bin", "http://srv/firmware/a-1.2.bin"},
	    {"http://other/x.bin", "http://other/x.bin"}, /* used as is */
	    {"https://other:8443/x.bin", "https://other:8443/x.bin"},
	};
	char answer[128];

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		reset_record(f);
		f->port.nrequests = 0;
		snprintf(answer, sizeof answer, "{\"version\":\"2\",\"firmware\":\"%s\"}",
		         cases[i].path);
		serve_answer(f, answer);
		fake_port_serve_str(&f->port, cases[i].url, 404, "");
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
		assert_int_equal(f->port.nrequests, 2);
		assert_string_equal(f->port.requests[1].url, cases[i].url);
	}
}

static void test_header_form_request(void **state)
{
	struct fx *f = *state;
	const struct fake_request *r = &f->port.requests[0];
	static const char *const names[] = {"User-Agent", "X-ESP8266-MAC", "X-ESP8266-DEVICE",
	                                    "X-ESP8266-VERSION", "X-ESP8266-BUILD"};
	static const char *const values[] = {"NoFussClient", MAC, DEVICE, VERSION, BUILD};

	serve_answer(f, "{}");
	nf_client_handle(&f->client);
	ASSERT_URLS(f, SERVER); /* GET <server> as given (docs/PEERS.md section 2) */
	assert_false(r->image);
	assert_int_equal(r->nheaders, 5);
	for (size_t i = 0; i < 5; i++) {
		assert_string_equal(r->headers[i].name, names[i]);
		assert_string_equal(r->headers[i].value, values[i]);
	}

	/* An empty build is still sent, empty (docs/PEERS.md section 2: sent even
	 * when the firmware set none). */
	assert_int_equal(nf_client_set_build(&f->client, ""), 0);
	nf_client_handle(&f->client);
	assert_int_equal(f->port.nrequests, 2);
	assert_int_equal(f->port.requests[1].nheaders, 5);
	assert_string_equal(fake_request_header(&f->port.requests[1], "X-ESP8266-BUILD"), "");
}

static void test_path_form_request(void **state)
{
	struct fx *f = *state;

	nf_client_set_path_form(&f->client, true);
	fake_port_serve_str(&f->port, SERVER "/" DEVICE "/" VERSION, 200, ANSWER_FW);
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	ASSERT_URLS(f, "http://srv/DEV/1.0", FW_URL);
	assert_int_equal(f->port.requests[0].nheaders, 0);
	assert_false(f->port.requests[0].image);
	/* Image requests are the same in both forms. */
	assert_string_equal(fake_request_header(&f->port.requests[1], "x-ESP8266-mode"), "sketch");

	/* And back to the header form. */
	reset_record(f);
	nf_client_set_path_form(&f->client, false);
	serve_answer(f, "{}");
	nf_client_handle(&f->client);
	assert_int_equal(f->port.nrequests, 3);
	assert_string_equal(f->port.requests[2].url, SERVER);
	assert_int_equal(f->port.requests[2].nheaders, 5);
}

static void test_url_too_long(void **state)
{
	struct fx *f = *state;
	char server[NF_CLIENT_URL_MAX], answer[NF_CLIENT_URL_MAX + 64], url[NF_CLIENT_URL_MAX + 8];

	/* The check itself: a 150-byte server plus "/DEV/1.0" fits (158); a
	 * longer version does not. */
	memset(server, 's', 150);
	server[150] = '\0';
	assert_int_equal(nf_client_set_server(&f->client, server), 0);
	nf_client_set_path_form(&f->client, true);
	snprintf(url, sizeof url, "%s/%s/%s", server, DEVICE, VERSION);
	fake_port_serve_str(&f->port, url, 200, "{}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPTODATE, END);
	assert_int_equal(f->port.nrequests, 1);

	reset_record(f);
	assert_int_equal(nf_client_set_version(&f->client, "1.0.0"), 0); /* 160 > 159 */
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_error(f, NF_ERR_URL_TOO_LONG);
	assert_int_equal(f->port.nrequests, 1); /* no request */

	/* An image URL that does not fit: an image error, no request. */
	reset_record(f);
	nf_client_set_path_form(&f->client, false);
	fake_port_serve_str(&f->port, server, 200, "{\"firmware\":\"/0123456789\"}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	assert_error(f, NF_ERR_URL_TOO_LONG);
	assert_int_equal(f->port.nrequests, 2);

	reset_record(f);
	fake_port_serve_str(&f->port, server, 200, "{\"spiffs\":\"/0123456789\"}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_ERROR, END);
	assert_error(f, NF_ERR_URL_TOO_LONG);
	assert_int_equal(f->port.nrequests, 3);

	/* An absolute URL of exactly NF_CLIENT_URL_MAX - 1 bytes fits; one more
	 * does not. */
	memcpy(url, "http://", 7);
	memset(url + 7, 'u', NF_CLIENT_URL_MAX - 1 - 7);
	url[NF_CLIENT_URL_MAX - 1] = '\0';
	reset_record(f);
	snprintf(answer, sizeof answer, "{\"firmware\":\"%s\"}", url);
	fake_port_serve_str(&f->port, server, 200, answer);
	serve_fw(f, url);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_string_equal(f->port.requests[4].url, url);

	reset_record(f);
	snprintf(answer, sizeof answer, "{\"firmware\":\"%su\"}", url);
	fake_port_serve_str(&f->port, server, 200, answer);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	assert_error(f, NF_ERR_URL_TOO_LONG);
	assert_int_equal(f->port.nrequests, 6);
}

/* ---- integrity of an image -------------------------------------------------- */

static void test_wrong_md5(void **state)
{
	struct fx *f = *state;

	firmware_update(f)->md5 = fs_md5;
	expect_fw_failure(f, NF_ERR_MD5);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(ABORT, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.finishes, 0);
}

static void test_bad_md5_header(void **state)
{
	struct fx *f = *state;
	static char bad[8][40];
	size_t n = 0;

	snprintf(bad[n++], 40, "%.31s", fw_md5);      /* 31 characters */
	snprintf(bad[n++], 40, "%s0", fw_md5);        /* 33 */
	snprintf(bad[n++], 40, "g%.31s", fw_md5 + 1); /* not hex */
	snprintf(bad[n++], 40, "%.31sz", fw_md5);
	snprintf(bad[n++], 40, "%.16s %.15s", fw_md5, fw_md5 + 17);
	snprintf(bad[n++], 40, "%s", "");
	snprintf(bad[n++], 40, "0x%.30s", fw_md5);
	snprintf(bad[n++], 40, " %s", fw_md5);

	for (size_t i = 0; i < n; i++) {
		reset_record(f);
		f->port.nrequests = 0;
		firmware_update(f)->md5 = bad[i];
		expect_fw_failure(f, NF_ERR_BAD_MD5_HEADER);
	}
	ASSERT_NO_OPS(f); /* refused before the flash was touched */
}

static void test_md5_upper_case(void **state)
{
	struct fx *f = *state;
	char upper[33];

	for (int i = 0; i < 33; i++)
		upper[i] =
		    (char)(fw_md5[i] >= 'a' && fw_md5[i] <= 'f' ? fw_md5[i] - 32 : fw_md5[i]);
	firmware_update(f)->md5 = upper;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_error(f, NF_OK);
}

static void test_no_md5_accepted_on_length(void **state)
{
	struct fx *f = *state;

	firmware_update(f)->md5 = NULL;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_int_equal(f->port.reboots, 1);
	assert_error(f, NF_OK);
}

static void test_truncated_body(void **state)
{
	struct fx *f = *state;

	/* The connection is cut after 1000 of 3000 bytes. */
	firmware_update(f)->cut_after = 1000;
	expect_fw_failure(f, NF_ERR_TRANSPORT);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, 1000, 0),
	           OP(ABORT, FIRMWARE, 1000, 0));

	/* The connection closes cleanly but early: fewer bytes than announced. */
	reset_record(f);
	f->port.nrequests = 0;
	f->port.nops = 0;
	firmware_update(f)->content_length = FW_LEN + 1;
	expect_fw_failure(f, NF_ERR_SHORT);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN + 1, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(ABORT, FIRMWARE, FW_LEN, 0));
}

static void test_more_than_content_length(void **state)
{
	struct fx *f = *state;

	/* One piece longer than announced: never written. */
	firmware_update(f)->content_length = FW_LEN - 1;
	expect_fw_failure(f, NF_ERR_SHORT);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN - 1, 0), OP(ABORT, FIRMWARE, 0, 0));

	/* In pieces: what fits is written, then the overflow aborts. */
	reset_record(f);
	f->port.nrequests = 0;
	f->port.nops = 0;
	struct fake_response *r = firmware_update(f);
	r->content_length = 2500;
	r->chunk = 1000;
	expect_fw_failure(f, NF_ERR_SHORT);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, 2500, 0), OP(WRITE, FIRMWARE, 2000, 0),
	           OP(ABORT, FIRMWARE, 2000, 0));
}

static void test_no_content_length(void **state)
{
	struct fx *f = *state;
	static const long lengths[] = {
		-1,
		0,
#if LONG_MAX > INT32_MAX
		(long)INT32_MAX + 1,
#endif
	};

	for (size_t i = 0; i < sizeof lengths / sizeof lengths[0]; i++) {
		reset_record(f);
		f->port.nrequests = 0;
		firmware_update(f)->content_length = lengths[i];
		expect_fw_failure(f, NF_ERR_NO_LENGTH);
	}
	ASSERT_NO_OPS(f);
}

static void test_firmware_magic(void **state)
{
	struct fx *f = *state;
	static uint8_t img[64];
	static const uint8_t bad[] = {0x00, 0xFF, 0xEA, 0x1E, 0x7B};
	static const size_t chunks[] = {0, 1};

	for (size_t c = 0; c < 2; c++) {
		for (size_t i = 0; i < sizeof bad; i++) {
			reset_record(f);
			f->port.nrequests = 0;
			f->port.nops = 0;
			memset(img, 0xE9, sizeof img);
			img[0] = bad[i];
			serve_answer(f, ANSWER_FW);
			fake_port_serve(&f->port, FW_URL, 200, img, sizeof img)->chunk = chunks[c];
			expect_fw_failure(f, NF_ERR_MAGIC);
			ASSERT_OPS(f, OP(BEGIN, FIRMWARE, sizeof img, 0),
			           OP(ABORT, FIRMWARE, 0, 0));
		}
	}

	/* 0x1F (gzip) is accepted. */
	reset_record(f);
	img[0] = 0x1F;
	fake_port_serve(&f->port, FW_URL, 200, img, sizeof img);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_committed(f, NF_IMAGE_FIRMWARE, img, sizeof img);
}

static void test_filesystem_any_first_byte(void **state)
{
	struct fx *f = *state;
	static uint8_t img[16];
	static const uint8_t first[] = {0x00, 0xFF, 0x7B, 0xE9, 0x1F};

	for (size_t i = 0; i < sizeof first; i++) {
		reset_record(f);
		memset(img, (int)i, sizeof img);
		img[0] = first[i];
		serve_answer(f, ANSWER_FS);
		fake_port_serve(&f->port, FS_URL, 200, img, sizeof img)->chunk = 1;
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, RESET);
		assert_committed(f, NF_IMAGE_FILESYSTEM, img, sizeof img);
	}
	assert_int_equal(f->port.reboots, sizeof first);
}

static void test_flash_refuses_size(void **state)
{
	struct fx *f = *state;

	f->port.max_size = FW_LEN - 1;
	firmware_update(f);
	expect_fw_failure(f, NF_ERR_TOO_BIG);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, -1)); /* nothing open, nothing to abort */
}

static void test_flash_write_fails(void **state)
{
	struct fx *f = *state;

	f->port.fail_write = 3;
	firmware_update(f)->chunk = 500;
	expect_fw_failure(f, NF_ERR_FLASH);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, 1000, 0),
	           OP(WRITE, FIRMWARE, 500, -1), OP(ABORT, FIRMWARE, 1000, 0));
	assert_int_equal(f->port.writes, 3); /* nothing written after the failure */
}

static void test_flash_finish_fails(void **state)
{
	struct fx *f = *state;

	f->port.fail_finish = true;
	firmware_update(f);
	expect_fw_failure(f, NF_ERR_FLASH);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(FINISH, FIRMWARE, FW_LEN, -1));
}

/* ---- the port's last word: nf_port_flash_verify --------------------------- */

static void test_verify_refuses_firmware(void **state)
{
	struct fx *f = *state;

	f->port.refuse_verify = true;
	firmware_update(f)->chunk = 700;
	expect_fw_failure(f, NF_ERR_SIGNATURE);
	/* Asked once, about the whole image; then aborted, never finished. */
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(ABORT, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.verifies, 1);
	assert_int_equal(f->port.verified_len, FW_LEN);
	assert_int_equal(f->port.finishes, 0);
	assert_string_equal(nf_strerror(NF_ERR_SIGNATURE),
	                    "image refused by the device's signature check");
}

static void test_verify_refuses_filesystem(void **state)
{
	struct fx *f = *state;

	/* A refused filesystem fails the update like any bad image: the
	 * firmware is not even asked for. */
	f->port.refuse_verify = true;
	serve_answer(f, ANSWER_BOTH);
	serve_fs(f, FS_URL);
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_ERROR, END);
	ASSERT_URLS(f, SERVER, FS_URL);
	ASSERT_OPS(f, OP(BEGIN, FILESYSTEM, FS_LEN, 0), OP(WRITE, FILESYSTEM, FS_LEN, 0),
	           OP(ABORT, FILESYSTEM, FS_LEN, 0));
	assert_error(f, NF_ERR_SIGNATURE);
	assert_int_equal(f->port.verifies, 1);
	assert_untouched(f);
}

static void test_verify_asked_once_per_whole_image(void **state)
{
	struct fx *f = *state;
	struct fake_response *r;

	/* Each image that passed length and MD5 is verified once, before its
	 * finish (the fake counts a finish without it as a violation). */
	serve_answer(f, ANSWER_BOTH);
	serve_fs(f, FS_URL);
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, FW_UPDATED, RESET);
	assert_int_equal(f->port.verifies, 2);
	assert_int_equal(f->port.verified_len, FW_LEN);

	/* An image that failed before (wrong MD5, cut, too long) is never
	 * handed to the port's verdict. */
	f->port.verifies = 0;
	reset_record(f);
	r = firmware_update(f);
	r->md5 = fs_md5;
	nf_client_handle(&f->client);
	assert_error(f, NF_ERR_MD5);
	reset_record(f);
	r = firmware_update(f);
	r->cut_after = 100;
	nf_client_handle(&f->client);
	assert_error(f, NF_ERR_TRANSPORT);
	reset_record(f);
	r = firmware_update(f);
	r->content_length = FW_LEN - 1;
	r->md5 = NULL;
	nf_client_handle(&f->client);
	assert_error(f, NF_ERR_SHORT);
	assert_int_equal(f->port.verifies, 0);
}

static void test_verify_refused_then_accepted(void **state)
{
	struct fx *f = *state;

	f->port.refuse_verify = true;
	firmware_update(f);
	expect_fw_failure(f, NF_ERR_SIGNATURE);

	/* The next check (a correctly signed image) commits it. */
	reset_record(f);
	f->port.refuse_verify = false;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_error(f, NF_OK);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_int_equal(f->port.verifies, 2);
	assert_int_equal(f->port.reboots, 1);
}

static void test_image_http_and_transport_errors(void **state)
{
	struct fx *f = *state;
	static const int statuses[] = {404, 500, 304, 302, 206};

	for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
		reset_record(f);
		f->port.nrequests = 0;
		firmware_update(f)->status = statuses[i];
		expect_fw_failure(f, NF_ERR_HTTP_STATUS);
	}
	reset_record(f);
	f->port.nrequests = 0;
	firmware_update(f)->transport_error = true;
	expect_fw_failure(f, NF_ERR_TRANSPORT);
	ASSERT_NO_OPS(f);
}

static void test_chunked_delivery(void **state)
{
	struct fx *f = *state;
	static const size_t chunks[] = {1, 7, 64, 1000, FW_LEN};

	for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
		reset_record(f);
		f->port.nops = 0;
		serve_answer(f, ANSWER_BOTH)->chunk = chunks[i];
		serve_fs(f, FS_URL)->chunk = chunks[i];
		serve_fw(f, FW_URL)->chunk = chunks[i];
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, FW_UPDATED, RESET);
		ASSERT_OPS(f, OP(BEGIN, FILESYSTEM, FS_LEN, 0), OP(WRITE, FILESYSTEM, FS_LEN, 0),
		           OP(FINISH, FILESYSTEM, FS_LEN, 0), OP(BEGIN, FIRMWARE, FW_LEN, 0),
		           OP(WRITE, FIRMWARE, FW_LEN, 0), OP(FINISH, FIRMWARE, FW_LEN, 0));
		assert_committed(f, NF_IMAGE_FILESYSTEM, fs_img, FS_LEN);
		assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	}
}

/* ---- resumed downloads ------------------------------------------------------- */

#define ETAG "\"5f3c-0bb8\""

/* The firmware update, served by a server that answers Range with 206 and
 * names the image with a strong ETag; the first `cuts` transfers are cut
 * after `cut` bytes each. */
static struct fake_response *resumable_update(struct fx *f, long cut, unsigned cuts)
{
	struct fake_response *r = firmware_update(f);

	r->etag = ETAG;
	r->range_status = 206;
	r->cut_after = cut;
	r->cuts = cuts;
	return r;
}

/* A file on a server that answers Range with 206: body[0..len), its x-MD5
 * and ETag (what replaced_by points to). */
#define RANGED_FILE(body_, len_, md5_, etag_)                                                      \
	{                                                                                          \
		.status = 200, .content_length = (len_), .body = (body_), .body_len = (len_),      \
		.md5 = (md5_), .etag = (etag_), .range_status = 206, .cut_after = -1               \
	}

/* Request i was a resumed firmware request with this Range value. */
static void assert_resumed_request(const struct fx *f, size_t i, const char *range)
{
	const struct fake_request *r = &f->port.requests[i];

	assert_string_equal(r->url, FW_URL);
	assert_true(r->image);
	assert_int_equal(r->nheaders, 4);
	assert_string_equal(fake_request_header(r, "x-ESP8266-mode"), "sketch");
	assert_string_equal(fake_request_header(r, "x-ESP8266-version"), VERSION);
	assert_string_equal(fake_request_header(r, "Range"), range);
	assert_string_equal(fake_request_header(r, "If-Range"), ETAG);
}

static void test_resume_206(void **state)
{
	struct fx *f = *state;

	/* Cut after 1000 of 3000 bytes, in pieces of 300: one resume. */
	resumable_update(f, 1000, 1)->chunk = 300;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_error(f, NF_OK);
	ASSERT_URLS(f, SERVER, FW_URL, FW_URL);
	assert_int_equal(f->port.requests[1].nheaders, 2); /* the first asks for all of it */
	assert_null(fake_request_header(&f->port.requests[1], "Range"));
	assert_resumed_request(f, 2, "bytes=1000-");
	/* One flash session, one MD5 over the whole image, no byte fetched twice. */
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(FINISH, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.md5_inits, 1);
	assert_int_equal(f->port.md5_finals, 1);
	assert_int_equal(f->port.body_bytes, FW_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_int_equal(f->port.reboots, 1);
}

static void test_resume_then_verify(void **state)
{
	struct fx *f = *state;

	/* A resumed image is verified once, whole, after its last piece; a
	 * refusal aborts the one flash session. */
	f->port.refuse_verify = true;
	resumable_update(f, 1000, 1);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	ASSERT_URLS(f, SERVER, FW_URL, FW_URL);
	assert_error(f, NF_ERR_SIGNATURE);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(ABORT, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.verifies, 1);
	assert_int_equal(f->port.verified_len, FW_LEN);
	assert_int_equal(f->port.body_bytes, FW_LEN);
	assert_untouched(f);
}

static void test_resume_several_times(void **state)
{
	struct fx *f = *state;

	/* Cut after 0 bytes (just the head), then twice after 700: the most the
	 * core tries for one image. */
	struct fake_response *r = resumable_update(f, 0, 1);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_resumed_request(f, 2, "bytes=0-");
	assert_int_equal(f->port.body_bytes, FW_LEN);

	reset_record(f);
	f->port.nrequests = 0;
	f->port.nops = 0;
	f->port.body_bytes = 0;
	r->served = 0;
	r->cut_after = 700;
	r->cuts = NF_CLIENT_RESUME_MAX;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_int_equal(f->port.nrequests, 2 + NF_CLIENT_RESUME_MAX);
	assert_resumed_request(f, 2, "bytes=700-");
	assert_resumed_request(f, 3, "bytes=1400-");
	assert_resumed_request(f, 4, "bytes=2100-");
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(FINISH, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.body_bytes, FW_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
}

static void test_resume_gives_up(void **state)
{
	struct fx *f = *state;

	/* Every transfer is cut after 500 bytes: after NF_CLIENT_RESUME_MAX
	 * resumes the image fails as an unresumed cut does. */
	resumable_update(f, 500, 0);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	assert_error(f, NF_ERR_TRANSPORT);
	assert_int_equal(f->port.nrequests, 2 + NF_CLIENT_RESUME_MAX);
	assert_resumed_request(f, 1 + NF_CLIENT_RESUME_MAX, "bytes=1500-");
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0),
	           OP(WRITE, FIRMWARE, 500 * (1 + NF_CLIENT_RESUME_MAX), 0),
	           OP(ABORT, FIRMWARE, 500 * (1 + NF_CLIENT_RESUME_MAX), 0));
	assert_untouched(f);

	/* The next check starts the image over, and the counter with it. */
	reset_record(f);
	f->port.nrequests = 0;
	f->port.nops = 0;
	resumable_update(f, 1000, 1);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_null(fake_request_header(&f->port.requests[1], "Range"));
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
}

static void test_resume_restarts_on_200(void **state)
{
	struct fx *f = *state;
	/* The server now has another image under that name (another ETag): the
	 * If-Range no longer matches and the answer is the whole new image. */
	static const struct fake_response newer = RANGED_FILE(fw_img, FW_LEN, fw_md5, "\"newer\"");
	struct fake_response *r = resumable_update(f, 1000, 1);

	r->body = fw_alt;
	r->md5 = alt_md5;
	r->replaced_by = &newer;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_error(f, NF_OK);
	assert_resumed_request(f, 2, "bytes=1000-");
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, 1000, 0),
	           OP(ABORT, FIRMWARE, 1000, 0), OP(BEGIN, FIRMWARE, FW_LEN, 0),
	           OP(WRITE, FIRMWARE, FW_LEN, 0), OP(FINISH, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.md5_inits, 2);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);

	/* A server that ignores Range answers 200 too: started over, same end. */
	reset_record(f);
	f->port.nrequests = 0;
	f->port.nops = 0;
	fake_port_set_committed(&f->port, NF_IMAGE_FIRMWARE, old_fw, sizeof old_fw);
	resumable_update(f, 1000, 1)->range_status = 0;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, 1000, 0),
	           OP(ABORT, FIRMWARE, 1000, 0), OP(BEGIN, FIRMWARE, FW_LEN, 0),
	           OP(WRITE, FIRMWARE, FW_LEN, 0), OP(FINISH, FIRMWARE, FW_LEN, 0));
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
}

static void test_resume_md5_over_whole_image(void **state)
{
	struct fx *f = *state;
	/* A server that lies: the same ETag, but the rest is fw_alt's. Each part
	 * is a part of a real image; only the MD5 of the whole can tell. */
	static const struct fake_response spliced = RANGED_FILE(fw_alt, FW_LEN, fw_md5, ETAG);
	struct fake_response *r = resumable_update(f, 2000, 1);

	r->replaced_by = &spliced;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	ASSERT_URLS(f, SERVER, FW_URL, FW_URL);
	assert_error(f, NF_ERR_MD5);
	assert_untouched(f);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(ABORT, FIRMWARE, FW_LEN, 0));
	assert_int_equal(f->port.body_bytes, FW_LEN);
	assert_int_equal(f->port.finishes, 0);
}

static void test_resume_refused(void **state)
{
	struct fx *f = *state;
	static const struct fake_response shorter = RANGED_FILE(fw_img, FW_LEN - 100, fw_md5, ETAG);
	static const struct {
		const char *etag; /* of the first answer */
		int range_status; /* the answer to the resumed request */
		bool shorter;     /* the 206 does not hold exactly the missing bytes */
		enum nf_error err;
		size_t requests;
	} cases[] = {
	    {NULL, 206, false, NF_ERR_TRANSPORT, 2},         /* no ETag: no resume */
	    {"W/\"weak\"", 206, false, NF_ERR_TRANSPORT, 2}, /* weak: useless for If-Range */
	    {"\""
	     "0123456789012345678901234567890123456789"
	     "\"",
	     206, false, NF_ERR_TRANSPORT, 2},
	    {ETAG, 416, false, NF_ERR_HTTP_STATUS, 3},
	    {ETAG, 500, false, NF_ERR_HTTP_STATUS, 3},
	    {ETAG, 206, true, NF_ERR_SHORT, 3},
	};

	for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		reset_record(f);
		f->port.nrequests = 0;
		f->port.nops = 0;
		struct fake_response *r = resumable_update(f, 1000, 1);
		r->etag = cases[i].etag;
		r->range_status = cases[i].range_status;
		r->replaced_by = cases[i].shorter ? &shorter : NULL;
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
		assert_error(f, cases[i].err);
		assert_int_equal(f->port.nrequests, cases[i].requests);
		ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, 1000, 0),
		           OP(ABORT, FIRMWARE, 1000, 0));
		assert_untouched(f);
	}
}

static void test_resume_each_image(void **state)
{
	struct fx *f = *state;
	struct fake_response *fs, *fw;

	/* Both images cut NF_CLIENT_RESUME_MAX times: the count is per image. */
	serve_answer(f, ANSWER_BOTH);
	fs = serve_fs(f, FS_URL);
	fw = serve_fw(f, FW_URL);
	fs->etag = fw->etag = ETAG;
	fs->range_status = fw->range_status = 206;
	fs->cut_after = fw->cut_after = 400;
	fs->cuts = fw->cuts = NF_CLIENT_RESUME_MAX;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, FW_UPDATED, RESET);
	assert_error(f, NF_OK);
	assert_int_equal(f->port.nrequests, 1 + 2 * (1 + NF_CLIENT_RESUME_MAX));
	assert_string_equal(fake_request_header(&f->port.requests[2], "x-ESP8266-mode"), "spiffs");
	assert_string_equal(fake_request_header(&f->port.requests[2], "Range"), "bytes=400-");
	assert_int_equal(f->port.requests[2].nheaders, 3); /* no version for a filesystem */
	assert_int_equal(f->port.body_bytes, FS_LEN + FW_LEN);
	assert_committed(f, NF_IMAGE_FILESYSTEM, fs_img, FS_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
}

/* ---- retries, errors, settings --------------------------------------------- */

static void test_retry_after_failure(void **state)
{
	struct fx *f = *state;
	struct fake_response *r = firmware_update(f);

	r->md5 = fs_md5;
	expect_fw_failure(f, NF_ERR_MD5);

	reset_record(f);
	r->md5 = fw_md5;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_error(f, NF_OK);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_int_equal(f->port.reboots, 1);

	/* After the reboot the device asks again and is up to date. */
	reset_record(f);
	serve_answer(f, "{}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPTODATE, END);
	assert_error(f, NF_OK);
	assert_int_equal(f->port.reboots, 1);
}

static void test_retry_after_check_failure(void **state)
{
	struct fx *f = *state;
	struct fake_response *r = serve_answer(f, ANSWER_FW);

	r->transport_error = true;
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_error(f, NF_ERR_TRANSPORT);

	reset_record(f);
	r->transport_error = false;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_error(f, NF_OK);
}

static void test_strerror(void **state)
{
	(void)state;
	const char *texts[NF_ERR_SIGNATURE + 1];

	for (int e = NF_OK; e <= NF_ERR_SIGNATURE; e++) {
		texts[e] = nf_strerror((enum nf_error)e);
		assert_non_null(texts[e]);
		assert_true(texts[e][0] != '\0');
		for (int j = 0; j < e; j++)
			assert_string_not_equal(texts[j], texts[e]);
	}
	/* Out of range: still a text, and not one of the others. */
	assert_non_null(nf_strerror((enum nf_error)(NF_ERR_SIGNATURE + 1)));
	assert_non_null(nf_strerror((enum nf_error) - 1));
	assert_non_null(nf_strerror((enum nf_error)1000));
	for (int e = NF_OK; e <= NF_ERR_SIGNATURE; e++)
		assert_string_not_equal(nf_strerror((enum nf_error)1000), texts[e]);
}

static void test_enum_values(void **state)
{
	(void)state;
	/* On the wire / in the API: do not change (docs/PEERS.md section 6). */
	assert_int_equal(NF_MSG_START, 0);
	assert_int_equal(NF_MSG_UPTODATE, 1);
	assert_int_equal(NF_MSG_UPDATING, 2);
	assert_int_equal(NF_MSG_FILESYSTEM_UPDATED, 3);
	assert_int_equal(NF_MSG_FIRMWARE_UPDATED, 4);
	assert_int_equal(NF_MSG_RESET, 5);
	assert_int_equal(NF_MSG_END, 6);
	assert_int_equal(NF_MSG_NO_RESPONSE_ERROR, 7);
	assert_int_equal(NF_MSG_PARSE_ERROR, 8);
	assert_int_equal(NF_MSG_FILESYSTEM_UPDATE_ERROR, 9);
	assert_int_equal(NF_MSG_FIRMWARE_UPDATE_ERROR, 10);
	assert_int_equal(NF_IMAGE_FIRMWARE, 0);
	assert_int_equal(NF_IMAGE_FILESYSTEM, 1);
	/* Errors are appended, never renumbered. */
	assert_int_equal(NF_ERR_BAD_SETTINGS, 14);
	assert_int_equal(NF_ERR_SIGNATURE, 15);
}

static void test_settings_too_long(void **state)
{
	struct fx *f = *state;
	char s[NF_CLIENT_URL_MAX + 2];
	static const struct {
		int (*set)(struct nf_client *, const char *);
		size_t cap;
	} settings[] = {
	    {nf_client_set_server, NF_CLIENT_URL_MAX},
	    {nf_client_set_device, NF_CLIENT_FIELD_MAX},
	    {nf_client_set_version, NF_CLIENT_FIELD_MAX},
	    {nf_client_set_build, NF_CLIENT_FIELD_MAX},
	    {nf_client_set_mac, 18},
	};

	for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
		size_t cap = settings[i].cap;
		memset(s, 'a', cap);
		s[cap] = '\0';
		assert_int_equal(settings[i].set(&f->client, s), -1);
		s[cap + 1] = '\0';
		s[cap] = 'a';
		assert_int_equal(settings[i].set(&f->client, s), -1);
		s[cap - 1] = '\0';
		assert_int_equal(settings[i].set(&f->client, s), 0);
	}

	/* A refused value leaves the old one in place. */
	fx_settings(f);
	memset(s, 'd', NF_CLIENT_FIELD_MAX);
	s[NF_CLIENT_FIELD_MAX] = '\0';
	assert_int_equal(nf_client_set_device(&f->client, s), -1);
	serve_answer(f, "{}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPTODATE, END);
	assert_string_equal(fake_request_header(&f->port.requests[0], "X-ESP8266-DEVICE"), DEVICE);

	/* NULL is an empty value. */
	assert_int_equal(nf_client_set_build(&f->client, NULL), 0);
	nf_client_handle(&f->client);
	assert_string_equal(fake_request_header(&f->port.requests[1], "X-ESP8266-BUILD"), "");
}

static void test_missing_settings(void **state)
{
	struct fx *f = *state;
	int (*const setters[])(struct nf_client *, const char *) = {
	    nf_client_set_server, nf_client_set_device, nf_client_set_version};

	serve_answer(f, ANSWER_FW);
	serve_fw(f, FW_URL);
	for (size_t i = 0; i < 3; i++) {
		reset_record(f);
		fx_settings(f);
		assert_int_equal(setters[i](&f->client, ""), 0);
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, NO_RESPONSE, END);
		assert_error(f, NF_ERR_BAD_SETTINGS);
	}

	/* A client never configured at all. */
	reset_record(f);
	nf_client_init(&f->client, &f->port);
	nf_client_on_message(&f->client, on_message, f);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_error(f, NF_ERR_BAD_SETTINGS);

	assert_int_equal(f->port.nrequests, 0);
	ASSERT_NO_OPS(f);
	assert_untouched(f);

	/* MAC and build are optional. */
	reset_record(f);
	nf_client_init(&f->client, &f->port);
	nf_client_on_message(&f->client, on_message, f);
	nf_client_set_server(&f->client, SERVER);
	nf_client_set_device(&f->client, DEVICE);
	nf_client_set_version(&f->client, VERSION);
	serve_answer(f, "{}");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPTODATE, END);
	assert_string_equal(fake_request_header(&f->port.requests[0], "X-ESP8266-MAC"), "");
}

static void test_no_callback(void **state)
{
	struct fx *f = *state;

	nf_client_on_message(&f->client, NULL, NULL);
	firmware_update(f);
	nf_client_handle(&f->client);
	assert_int_equal(f->nmsgs, 0);
	assert_int_equal(f->port.reboots, 1);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
}

/* ---- the step API ----------------------------------------------------------- */

/* Performs the core's requests by hand from the fake's scripted responses,
 * the way an event-loop caller would; returns the number of requests. */
static size_t drive_by_hand(struct fx *f, size_t piece, char urls[][NF_CLIENT_URL_MAX])
{
	size_t n = 0;

	nf_client_begin(&f->client);
	while (nf_client_next(&f->client) == NF_ACTION_HTTP_GET) {
		const struct nf_request *req = nf_client_request(&f->client);
		const struct fake_response *r = NULL;

		assert_true(n < 8); /* the core ends */
		assert_non_null(req);
		assert_non_null(req->url);
		snprintf(urls[n++], NF_CLIENT_URL_MAX, "%s", req->url);
		for (size_t i = 0; i < FAKE_MAX_RESPONSES && r == NULL; i++)
			if (f->port.responses[i].url != NULL &&
			    strcmp(f->port.responses[i].url, req->url) == 0)
				r = &f->port.responses[i];
		assert_non_null(r);
		nf_client_response_begin(&f->client, r->status, r->content_length, r->md5, r->etag);
		for (size_t off = 0; off < r->body_len; off += piece) {
			size_t len = r->body_len - off < piece ? r->body_len - off : piece;
			nf_client_response_data(&f->client, r->body + off, len);
		}
		nf_client_response_end(&f->client, true);
	}
	return n;
}

static void test_step_api_matches_handle(void **state)
{
	struct fx *f = *state, *g;
	void *gs = NULL;
	char urls[8][NF_CLIENT_URL_MAX];
	size_t n;

	assert_int_equal(nf_client_next(&f->client), NF_ACTION_IDLE); /* before begin */

	/* The same script for both. */
	serve_answer(f, ANSWER_BOTH);
	serve_fs(f, FS_URL);
	serve_fw(f, FW_URL);
	setup(&gs); /* a second device, driven by handle() */
	g = gs;
	memcpy(g->port.responses, f->port.responses, sizeof g->port.responses);

	nf_client_handle(&g->client);
	n = drive_by_hand(f, 333, urls);

	assert_int_equal(n, g->port.nrequests);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(urls[i], g->port.requests[i].url);
	check_msgs(f, g->msgs, g->nmsgs, "step vs handle");
	ASSERT_MSGS(f, START, UPDATING, FS_UPDATED, FW_UPDATED, RESET);
	assert_int_equal(f->port.nops, g->port.nops);
	check_ops(f, g->port.ops, g->port.nops, "step vs handle");
	assert_committed(f, NF_IMAGE_FILESYSTEM, fs_img, FS_LEN);
	assert_committed(f, NF_IMAGE_FIRMWARE, fw_img, FW_LEN);
	assert_int_equal(nf_client_last_error(&f->client), nf_client_last_error(&g->client));
	/* The step API leaves the reboot to the caller. */
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_REBOOT);
	assert_int_equal(f->port.reboots, 0);
	assert_int_equal(g->port.reboots, 1);

	/* A new check may begin after REBOOT (a simulator that "reboots"). */
	reset_record(f);
	serve_answer(f, "{}");
	n = drive_by_hand(f, 1, urls);
	assert_int_equal(n, 1);
	ASSERT_MSGS(f, START, UPTODATE, END);
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_IDLE);

	teardown(&gs);
}

static void test_step_api_failures(void **state)
{
	struct fx *f = *state;
	const struct nf_request *req;

	/* The check fails at the transport: NO_RESPONSE_ERROR, END, IDLE. */
	nf_client_begin(&f->client);
	ASSERT_MSGS(f, START);
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_HTTP_GET);
	req = nf_client_request(&f->client);
	assert_string_equal(req->url, SERVER);
	assert_false(req->image);
	assert_int_equal(req->nheaders, 5);
	nf_client_response_end(&f->client, false);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_error(f, NF_ERR_TRANSPORT);
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_IDLE);

	/* An image cut short: abort, FIRMWARE_UPDATE_ERROR, END, IDLE. */
	reset_record(f);
	nf_client_begin(&f->client);
	nf_client_response_begin(&f->client, 200, (long)strlen(ANSWER_FW), NULL, NULL);
	nf_client_response_data(&f->client, (const uint8_t *)ANSWER_FW, strlen(ANSWER_FW));
	nf_client_response_end(&f->client, true);
	ASSERT_MSGS(f, START, UPDATING);
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_HTTP_GET);
	req = nf_client_request(&f->client);
	assert_string_equal(req->url, FW_URL);
	assert_true(req->image);
	nf_client_response_begin(&f->client, 200, FW_LEN, fw_md5, NULL);
	nf_client_response_data(&f->client, fw_img, 100);
	nf_client_response_data(&f->client, fw_img + 100, 0); /* empty pieces are harmless */
	nf_client_response_end(&f->client, false);
	ASSERT_MSGS(f, START, UPDATING, FW_ERROR, END);
	assert_error(f, NF_ERR_TRANSPORT);
	assert_int_equal(nf_client_next(&f->client), NF_ACTION_IDLE);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, 100, 0),
	           OP(ABORT, FIRMWARE, 100, 0));
	assert_untouched(f);
	assert_string_equal(nf_client_offered_version(&f->client), "1.1");
}

static void test_port_without_response_end(void **state)
{
	struct fx *f = *state;

	/* The check: headers and body, but the port never ends it. */
	serve_answer(f, "{}")->no_end = true;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_error(f, NF_ERR_TRANSPORT);
	assert_int_equal(f->port.nrequests, 1);

	/* The check: nothing at all. */
	reset_record(f);
	struct fake_response *check = serve_answer(f, "{}");
	check->transport_error = true;
	check->no_end = true;
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, NO_RESPONSE, END);
	assert_int_equal(f->port.nrequests, 2);

	/* An image whose body came whole but was never ended: the core cannot
	 * know it is whole, so it aborts. */
	reset_record(f);
	f->port.nrequests = 0;
	firmware_update(f)->no_end = true;
	expect_fw_failure(f, NF_ERR_TRANSPORT);
	ASSERT_OPS(f, OP(BEGIN, FIRMWARE, FW_LEN, 0), OP(WRITE, FIRMWARE, FW_LEN, 0),
	           OP(ABORT, FIRMWARE, FW_LEN, 0));

	/* An image that got nothing at all. */
	reset_record(f);
	f->port.nrequests = 0;
	struct fake_response *r = firmware_update(f);
	r->transport_error = true;
	r->no_end = true;
	expect_fw_failure(f, NF_ERR_TRANSPORT);
}

/* ---- the answer's syntax, through the core --------------------------------- */

static void test_answer_escapes(void **state)
{
	struct fx *f = *state;

	serve_answer(f, "{\"version\":\"2.0-\\u00e9\\u20AC\",\"firmware\":"
	                "\"http:\\/\\/other\\/a\\\"b\\\\c.bin\",\"spiffs\":\"\"}");
	serve_fw(f, "http://other/a\"b\\c.bin");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	ASSERT_URLS(f, SERVER, "http://other/a\"b\\c.bin");
	assert_string_equal(nf_client_offered_version(&f->client), "2.0-\xc3\xa9\xe2\x82\xac");
}

static void test_answer_unknown_keys(void **state)
{
	struct fx *f = *state;

	serve_answer(f, "{\"size\":123456,\"signed\":true,\"beta\":false,\"notes\":null,"
	                "\"ratio\":-1.5e+3,\"big\":1E9,\"name\":\"x\",\"version\":\"2\","
	                "\"firmware\":\"f.bin\",\"spiffs\":\"\",\"after\":0}");
	serve_fw(f, "http://srv/f.bin");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	assert_string_equal(nf_client_offered_version(&f->client), "2");
}

static void test_answer_rejected(void **state)
{
	struct fx *f = *state;
	static const char *const bodies[] = {
	    "{\"version\":\"2\",\"extra\":{\"a\":\"b\"}}", /* nested object */
	    "{\"extra\":{}}",
	    "{\"extra\":[1,2]}", /* array */
	    "{\"firmware\":[\"f.bin\"]}",
	    "{\"version\":\"2\"}x", /* trailing garbage */
	    "{}{}",
	    "{} ,",
	    "{\"version\":\"2\",}", /* trailing comma */
	    "{\"version\" \"2\"}",
	    "{'version':'2'}",
	    "{\"version\":\"a\\x\"}", /* bad escape */
	    "{\"version\":\"\\u00\"}",
	    "{\"version\":\"\\u0000\"}",
	    "{\"version\":\"\\ud83d\\ude00\"}",
	    "{\"version\":\"a\nb\"}", /* raw control character */
	};

	serve_fw(f, FW_URL);
	for (size_t i = 0; i < sizeof bodies / sizeof bodies[0]; i++) {
		reset_record(f);
		serve_answer(f, bodies[i]);
		nf_client_handle(&f->client);
		ASSERT_MSGS(f, START, PARSE, END);
		assert_error(f, NF_ERR_PARSE);
	}
	assert_int_equal(f->port.nrequests, sizeof bodies / sizeof bodies[0]);
	ASSERT_NO_OPS(f);
}

static void test_answer_whitespace(void **state)
{
	struct fx *f = *state;

	serve_answer(f, " \r\n\t{ \"version\" :\t\"2\" ,\n\"firmware\"\r\n: \"/fw.bin\"\t, "
	                "\"spiffs\" : \"\" , \"n\" : 1 }\n\n ");
	serve_fw(f, FW_URL);
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPDATING, FW_UPDATED, RESET);
	ASSERT_URLS(f, SERVER, FW_URL);

	reset_record(f);
	serve_answer(f, " {\r\n} ");
	nf_client_handle(&f->client);
	ASSERT_MSGS(f, START, UPTODATE, END);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
	const struct CMUnitTest tests[] = {
	    T(test_up_to_date),
	    T(test_filesystem_only),
	    T(test_firmware_only),
	    T(test_both),
	    T(test_filesystem_fails_no_firmware_request),
	    T(test_firmware_fails_after_filesystem),
	    T(test_nothing_to_download),
	    T(test_empty_answer),
	    T(test_not_an_object),
	    T(test_answer_size_limit),
	    T(test_check_http_status),
	    T(test_check_transport_error),
	    T(test_image_paths),
	    T(test_header_form_request),
	    T(test_path_form_request),
	    T(test_url_too_long),
	    T(test_wrong_md5),
	    T(test_bad_md5_header),
	    T(test_md5_upper_case),
	    T(test_no_md5_accepted_on_length),
	    T(test_truncated_body),
	    T(test_more_than_content_length),
	    T(test_no_content_length),
	    T(test_firmware_magic),
	    T(test_filesystem_any_first_byte),
	    T(test_flash_refuses_size),
	    T(test_flash_write_fails),
	    T(test_flash_finish_fails),
	    T(test_verify_refuses_firmware),
	    T(test_verify_refuses_filesystem),
	    T(test_verify_asked_once_per_whole_image),
	    T(test_verify_refused_then_accepted),
	    T(test_image_http_and_transport_errors),
	    T(test_chunked_delivery),
	    T(test_retry_after_failure),
	    T(test_retry_after_check_failure),
	    cmocka_unit_test(test_strerror),
	    cmocka_unit_test(test_enum_values),
	    T(test_settings_too_long),
	    T(test_missing_settings),
	    T(test_no_callback),
	    T(test_step_api_matches_handle),
	    T(test_step_api_failures),
	    T(test_port_without_response_end),
	    T(test_resume_206),
	    T(test_resume_then_verify),
	    T(test_resume_several_times),
	    T(test_resume_gives_up),
	    T(test_resume_restarts_on_200),
	    T(test_resume_md5_over_whole_image),
	    T(test_resume_refused),
	    T(test_resume_each_image),
	    T(test_answer_escapes),
	    T(test_answer_unknown_keys),
	    T(test_answer_rejected),
	    T(test_answer_whitespace),
	};
#undef T
	return cmocka_run_group_tests(tests, group_setup, NULL);
}
