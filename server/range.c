/*
 * range.c - parse one HTTP byte range (RFC 9110 section 14).
 *
 * Only single ranges are honoured. Several ranges, or anything we do not
 * understand, are ignored and the whole file is sent, which RFC 9110 allows
 * and which every client copes with.
 */
#include <ctype.h>
#include <string.h>

#include "nofussd.h"

/* Reads decimal digits at *p into *out; fails on none or on overflow. */
static int read_number(const char **p, uint64_t *out)
{
	uint64_t v = 0;
	const char *s = *p;

	if (!isdigit((unsigned char)*s))
		return -1;
	while (isdigit((unsigned char)*s)) {
		unsigned d = (unsigned)(*s - '0');
		if (v > (UINT64_MAX - d) / 10)
			return -1;
		v = v * 10 + d;
		s++;
	}
	*p = s;
	*out = v;
	return 0;
}

static const char *skip_spaces(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

enum nf_range_result nf_range_parse(const char *value, uint64_t size,
                                    uint64_t *first, uint64_t *last)
{
	const char *p;
	uint64_t a, b;

	if (value == NULL || strncasecmp(value, "bytes=", 6) != 0)
		return NF_RANGE_NONE;
	p = skip_spaces(value + 6);
	if (strchr(p, ',') != NULL)
		return NF_RANGE_NONE;

	if (*p == '-') { /* suffix: the last b bytes */
		p++;
		if (read_number(&p, &b) != 0 || *skip_spaces(p) != '\0')
			return NF_RANGE_NONE;
		if (b == 0 || size == 0)
			return NF_RANGE_UNSATISFIABLE;
		*first = b >= size ? 0 : size - b;
		*last = size - 1;
		return NF_RANGE_OK;
	}
	if (read_number(&p, &a) != 0 || *p != '-')
		return NF_RANGE_NONE;
	p++;
	p = skip_spaces(p);
	if (*p == '\0') {
		b = UINT64_MAX;
	} else if (read_number(&p, &b) != 0 || *skip_spaces(p) != '\0' || b < a) {
		return NF_RANGE_NONE;
	}
	if (a >= size)
		return NF_RANGE_UNSATISFIABLE;
	*first = a;
	*last = b >= size ? size - 1 : b;
	return NF_RANGE_OK;
}
