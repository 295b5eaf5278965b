/*
 * fuzz_api_cookie.c - libFuzzer harness for the Cookie header parser of the
 * web page's sessions (server/admin/session.c, nf_admin_cookie_value): any
 * bytes as a Cookie header. A value found is never empty, never longer than
 * the room given, NUL-terminated, and made only of the bytes a cookie value
 * may hold; it is the one after "nofuss_session=" in the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "admin.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char out[NF_ADMIN_SESSION_ID_LEN + 1];
	const char *text = (const char *)data;
	int n = nf_admin_cookie_value(text, size, NF_ADMIN_COOKIE, out, sizeof out);

	if (n < 0)
		return 0;
	if (n == 0 || (size_t)n >= sizeof out || strlen(out) != (size_t)n)
		abort();
	for (int i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x21 || (unsigned char)out[i] > 0x7e || out[i] == ';' ||
		    out[i] == '"' || out[i] == ',' || out[i] == '\\')
			abort();
	/* It is in the input, right after the name and '='. */
	const char *key = NF_ADMIN_COOKIE "=";
	size_t klen = strlen(key);
	bool seen = false;
	for (size_t i = 0; !seen && i + klen + (size_t)n <= size; i++)
		seen = memcmp(text + i, key, klen) == 0 && memcmp(text + i + klen, out, (size_t)n) == 0;
	if (!seen)
		abort();
	return 0;
}
