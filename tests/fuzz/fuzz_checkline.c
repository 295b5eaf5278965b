/*
 * fuzz_checkline.c - libFuzzer harness for the check-log line formatters
 * (checkline.c) together with rule matching (rules.c): the input is split
 * into a device, a version, a MAC and a build, matched against a fixed set
 * of rules, and logged in both forms. Whatever the bytes, a line must be one
 * line of printable ASCII that splits on single spaces into exactly its
 * fields, each decoding back to the value it came from.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nofussd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char rules_text[] =
    "[{\"origin\":{\"device\":\"TEST\",\"max\":\"0.1.0\"},"
    "\"target\":{\"version\":\"0.1 1\",\"firmware\":\"/f.bin\"}},"
    "{\"origin\":{\"device\":\"*\",\"mac\":[\"5C:CF:7F:8B:6B:26\"],\"build_not\":\"1\"},"
    "\"target\":{\"version\":\"9\\n9\",\"firmware\":\"/g.bin\"}},"
    "{\"origin\":{\"device\":\"*\",\"lt\":\"1.0rc1\"},"
    "\"target\":{\"version\":\"2\",\"spiffs\":\"/s.bin\"}}]";

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

/* Decodes token (len bytes) in place of %XX; aborts on anything an
 * escaped value cannot hold. Returns the decoded length. */
static size_t decode(const char *token, size_t len, char *out)
{
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		if (token[i] != '%') {
			out[n++] = token[i];
			continue;
		}
		if (i + 2 >= len)
			abort();
		if (hex_digit(token[i + 1]) < 0 || hex_digit(token[i + 2]) < 0)
			abort();
		out[n++] = (char)(hex_digit(token[i + 1]) << 4 | hex_digit(token[i + 2]));
		i += 2;
	}
	return n;
}

/* Checks one line: printable ASCII, one '\n' at the end, and the fields at
 * their places with the values they came from (NULL: not checked). */
static void check_line(const char *line, size_t len, const char *const keys[],
                       const char *const values[], const size_t value_lens[], size_t nkeys,
                       bool separate_values)
{
	char decoded[NF_MAX_LOG_LINE];
	const char *p = line, *end = line + len - 1;
	size_t token = 0;

	if (len < 2 || line[len - 1] != '\n')
		abort();
	for (size_t i = 0; i + 1 < len; i++)
		if ((unsigned char)line[i] < 0x20 || (unsigned char)line[i] > 0x7e)
			abort();
	/* the stamp is two tokens: "[YYYY/MM/DD" "HH:MM:SS]" */
	for (int i = 0; i < 2; i++) {
		p = memchr(p, ' ', (size_t)(end - p));
		if (p == NULL)
			abort();
		p++;
	}
	for (size_t k = 0; k < nkeys; k++, token++) {
		size_t klen = strlen(keys[k]);
		const char *sp;
		if ((size_t)(end - p) < klen || memcmp(p, keys[k], klen) != 0)
			abort();
		p += klen;
		if (separate_values) /* "IP: x": the value is its own token */
			p++;
		sp = memchr(p, ' ', (size_t)(end - p));
		if (sp == NULL)
			sp = end;
		if (values[k] != NULL) {
			size_t want = value_lens[k] > NF_MAX_FIELD ? NF_MAX_FIELD : value_lens[k];
			size_t got = decode(p, (size_t)(sp - p), decoded);
			if (got != want || memcmp(decoded, values[k], want) != 0)
				abort();
		}
		p = sp == end ? end : sp + 1;
	}
	if (p != end)
		abort(); /* a field more than the line had */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct nf_rules *rules;
	char err[256], line[NF_MAX_LOG_LINE], parts[4][NF_MAX_FIELD * 4 + 1];
	size_t lens[4] = {0, 0, 0, 0}, off = 0;
	struct nf_query q;
	const char *update;
	long target;
	size_t n;

	if (rules == NULL) {
		nf_log_set_level(NF_LOG_SILENT);
		rules = nf_rules_parse(rules_text, sizeof rules_text - 1, "fuzz.json", err,
		                       sizeof err);
		if (rules == NULL)
			abort();
	}
	/* Four values, each a length byte then its bytes (NUL excluded, as C
	 * strings and MHD's header values cannot hold one). */
	for (int i = 0; i < 4 && off < size; i++) {
		size_t want = data[off++] * 2u;
		for (; want > 0 && off < size; want--, off++)
			if (data[off] != 0)
				parts[i][lens[i]++] = (char)data[off];
	}
	for (int i = 0; i < 4; i++)
		parts[i][lens[i]] = '\0';
	q = (struct nf_query){parts[0], lens[0], parts[1], lens[1], parts[2], parts[3]};

	target = nf_rules_match(rules, &q);
	update = target < 0 ? "none" : nf_rules_target(rules, (size_t)target)->version;

	{
		static const char *const keys[] = {"from:", "device:", "version:", "update:"};
		const char *values[] = {"127.0.0.1", parts[0], parts[1], update};
		size_t vlens[] = {9, lens[0], lens[1], strlen(update)};
		n = nf_checklog_format_path(line, sizeof line, 1469837849, "127.0.0.1", &q,
		                            target < 0 ? NULL : update);
		check_line(line, n, keys, values, vlens, 4, false);
	}
	{
		static const char *const keys[] = {"IP:", "MAC:", "DEVICE:", "VERSION:", "BUILD:",
		                                   "UPDATE:"};
		const char *values[] = {"::1", parts[2], parts[0], parts[1], parts[3], update};
		size_t vlens[] = {3, lens[2], lens[0], lens[1], lens[3], strlen(update)};
		n = nf_checklog_format_header(line, sizeof line, 1469837849, "::1", &q,
		                              target < 0 ? NULL : update);
		check_line(line, n, keys, values, vlens, 6, true);
	}
	return 0;
}
