/*
 * fuzz_answer.c - libFuzzer harness for the device core's answer parser
 * (core/answer.c): any bytes, copied into a heap buffer of exactly their
 * size with no NUL after it, so that ASan catches a read or write past len.
 * The result is 0 or -1; on 0 the input was an object ('{' ... '}' between
 * JSON whitespace) and every field returned lies inside the buffer and is
 * NUL-terminated inside it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "answer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int json_space(uint8_t ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* malloc(0) may return NULL: give the empty input a 1-byte buffer and
	 * len 0, which the parser must not read either. */
	char *buf = malloc(size > 0 ? size : 1);
	struct nf_answer a;
	size_t first = 0, last = size;
	unsigned found = 0;
	int rc;

	if (buf == NULL)
		return 0;
	memcpy(buf, data, size);
	rc = nf_answer_parse(buf, size, &a);
	if (rc != 0 && rc != -1)
		abort();
	if (rc == 0) {
		while (first < size && json_space(data[first]))
			first++;
		while (last > first && json_space(data[last - 1]))
			last--;
		if (last - first < 2 || data[first] != '{' || data[last - 1] != '}')
			abort();
		for (int i = 0; i < NF_ANSWER_FIELDS; i++) {
			const char *f = a.field[i];
			if (f == NULL)
				continue;
			found++;
			if (f < buf || f >= buf + size)
				abort();
			if (memchr(f, '\0', (size_t)(buf + size - f)) == NULL)
				abort();
		}
		if (a.keys < found || a.keys > size / 4)
			abort(); /* a member takes at least 4 bytes: "":0 */
	}
	free(buf);
	return 0;
}
