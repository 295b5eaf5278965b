/*
 * answer.c - the check answer's parser: a flat JSON object, parsed in place.
 *
 * The answer is small ({"version":"0.1.1","firmware":"/f.bin","spiffs":""})
 * and the device has no heap, so the parser walks the buffer once and
 * decodes strings where they stand (an escape is never shorter than what it
 * decodes to). It remembers the three keys the client needs and skips the
 * rest. Values are strings; the keys nofuss does not know may also hold a
 * number, true, false or null (the original import tool added "size").
 * Anything else, nested objects and arrays included, is a parse error.
 * It never reads past len nor writes past what it read.
 */
#include <stddef.h>
#include <string.h>

#include "answer.h"

const char *const nf_answer_keys[NF_ANSWER_FIELDS] = {"version", "firmware", "spiffs"};

struct cursor {
	char *p, *end;
};

/* Skips white space; returns the next character without taking it, or -1
 * at the end of the buffer. */
static int peek(struct cursor *c)
{
	while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
	return c->p < c->end ? (unsigned char)*c->p : -1;
}

static int hex4(const char *s, unsigned *out)
{
	unsigned v = 0;

	for (int i = 0; i < 4; i++) {
		unsigned ch = (unsigned char)s[i];
		if (ch - '0' <= 9) {
			ch -= '0';
		} else {
			ch = (ch | 0x20) - 'a'; /* 'A'..'F' -> 'a'..'f' -> 0..5 */
			if (ch > 5)
				return -1;
			ch += 10;
		}
		v = v << 4 | ch;
	}
	*out = v;
	return 0;
}

/* Writes a BMP code point as UTF-8 at *w. */
static char *put_utf8(char *w, unsigned cp)
{
	if (cp < 0x80) {
		*w++ = (char)cp;
	} else if (cp < 0x800) {
		*w++ = (char)(0xC0 | (cp >> 6));
		*w++ = (char)(0x80 | (cp & 0x3F));
	} else {
		*w++ = (char)(0xE0 | (cp >> 12));
		*w++ = (char)(0x80 | ((cp >> 6) & 0x3F));
		*w++ = (char)(0x80 | (cp & 0x3F));
	}
	return w;
}

/* Decodes the string at c->p (on its opening quote) in place; returns its
 * start, NUL-terminated, or NULL. */
static char *read_string(struct cursor *c)
{
	char *start, *w;

	if (c->p >= c->end || *c->p != '"')
		return NULL;
	start = w = ++c->p;
	while (c->p < c->end) {
		char ch = *c->p++;
		unsigned cp;

		if (ch == '"') {
			*w = '\0'; /* the closing quote's place, or earlier */
			return start;
		}
		if ((unsigned char)ch < 0x20)
			return NULL;
		if (ch != '\\') {
			*w++ = ch;
			continue;
		}
		if (c->p >= c->end)
			return NULL;
		ch = *c->p++;
		if (ch == 'u') {
			if (c->end - c->p < 4 || hex4(c->p, &cp) != 0 || cp == 0)
				return NULL;
			c->p += 4;
			/* Surrogates (characters beyond the BMP) have no place in
			 * versions and paths: refused, which keeps this small. */
			if (cp >= 0xD800 && cp <= 0xDFFF)
				return NULL;
			w = put_utf8(w, cp);
			continue;
		}
		/* The other escapes: pairs of the letter and what it stands for. */
		static const char escapes[] = "\"\"\\\\//b\bf\fn\nr\rt\t";
		const char *e = escapes;
		while (*e != '\0' && *e != ch)
			e += 2;
		if (*e == '\0')
			return NULL;
		*w++ = e[1];
	}
	return NULL;
}

/* Skips a number, true, false or null: a run of the characters they are
 * made of (exact JSON number syntax does not matter to the client, which
 * ignores these values). */
static int skip_scalar(struct cursor *c)
{
	char *start = c->p;

	while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || (*c->p >= 'a' && *c->p <= 'z') ||
	                         *c->p == '.' || *c->p == '+' || *c->p == '-' || *c->p == 'E'))
		c->p++;
	return c->p > start ? 0 : -1;
}

int nf_answer_parse(char *buf, size_t len, struct nf_answer *out)
{
	struct cursor c = {buf, buf + len};
	int ch;

	memset(out, 0, sizeof *out);
	if (peek(&c) != '{')
		return -1;
	/* Each turn takes the '{' or ',' before it, then a member; "{}" is the
	 * one way to have none. */
	do {
		char *key, *value = NULL;

		c.p++;
		if (peek(&c) == '}' && out->keys == 0) {
			ch = '}';
			break;
		}
		key = read_string(&c);
		if (key == NULL || peek(&c) != ':')
			return -1;
		c.p++;
		if (peek(&c) == '"') {
			value = read_string(&c);
			if (value == NULL)
				return -1;
		} else if (skip_scalar(&c) != 0) {
			return -1;
		}
		for (int i = 0; i < NF_ANSWER_FIELDS; i++) {
			if (strcmp(key, nf_answer_keys[i]) != 0)
				continue;
			if (value == NULL)
				return -1; /* the keys we use must be strings */
			out->field[i] = value;
		}
		out->keys++;
		ch = peek(&c);
	} while (ch == ',');
	if (ch != '}')
		return -1;
	c.p++;
	return peek(&c) == -1 ? 0 : -1;
}
