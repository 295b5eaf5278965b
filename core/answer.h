/*
 * answer.h - the check answer's parser (answer.c), private to the core.
 */
#ifndef NOFUSS_ANSWER_H
#define NOFUSS_ANSWER_H

#include <stddef.h>

/* The members the client uses, in this order in nf_answer.field. */
enum { NF_ANSWER_VERSION, NF_ANSWER_FIRMWARE, NF_ANSWER_SPIFFS, NF_ANSWER_FIELDS };
extern const char *const nf_answer_keys[NF_ANSWER_FIELDS];

struct nf_answer {
	const char *field[NF_ANSWER_FIELDS]; /* NULL when absent; else into the buffer */
	unsigned keys;                       /* members in the object; 0 for {} */
};

/* Parses buf[0..len) as a flat JSON object, decoding strings in place (buf
 * is modified; the pointers in out point into it). Returns 0, or -1 when it
 * is not such an object. Reads nothing past len. */
int nf_answer_parse(char *buf, size_t len, struct nf_answer *out);

#endif
