/*
 * hex.c - digests to and from hex text, without printf (it is on the
 * download path of the server and the fleet simulator).
 */
#include "common.h"

void nf_hex_encode(const unsigned char *bytes, size_t len, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < len; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 0x0f];
	}
	out[2 * len] = '\0';
}

int nf_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int nf_hex_decode(const char *hex, unsigned char *bytes, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		int hi = nf_hex_digit(hex[2 * i]), lo;
		if (hi < 0) /* also stops at the NUL of a short string */
			return -1;
		lo = nf_hex_digit(hex[2 * i + 1]);
		if (lo < 0)
			return -1;
		bytes[i] = (unsigned char)(hi << 4 | lo);
	}
	return 0;
}
