/*
 * vercmp.c - PHP-compatible version comparison for nofuss.
 *
 * The NoFUSS protocol was defined by a PHP server that picks updates with
 * version_compare(), so the ordering of version strings is whatever PHP 8's
 * ext/standard/versioning.c says it is. This file re-implements that
 * algorithm from its description (it is not a copy of PHP's code) and keeps
 * every quirk, because a "fixed" ordering would make some device in the field
 * update to the wrong firmware, or never update at all.
 *
 * The algorithm, briefly:
 *   1. Empty strings sort below everything else; two empties are equal.
 *   2. A string starting with '#' is taken verbatim. Any other string is
 *      canonicalised: '-', '_' and '+' become '.', a '.' is inserted at every
 *      digit/non-digit boundary, other non-alphanumerics become '.', and a
 *      '.' is never emitted right after another one, so runs collapse ("1..2"
 *      is "1.2"). The first byte is copied as is, whatever it is.
 *   3. The canonical strings are walked part by part ('.'-separated). Two
 *      numbers compare numerically (strtol, saturating at LONG_MAX); two
 *      words compare by "special form" (dev < alpha=a < beta=b < RC=rc <
 *      "#" < pl=p, anything else below dev, matched by prefix); a number
 *      against a word counts as the form "#".
 *   4. If one side has parts left over, a leftover number makes that side
 *      greater; a leftover word makes PHP recurse on (rest, "#N#").
 *
 * Quirks this keeps on purpose (all verified against php 8 CLI):
 *   - "1." < "1" and "1." < "1.0": side 1 still has a (empty) part after
 *     its trailing dot, so step 4 compares "" with "#N#", and "" is lowest.
 *   - "1.0" < "1.0.0", but "1.0" > "1.0rc1" and "1.0" < "1.0pl1".
 *   - A non-alphanumeric byte right after a digit is copied, not dropped:
 *     "1#2" canonicalises to "1.#.2", whose "#" part equals any number.
 *   - Words are matched by prefix, so "patch" == "pl", "build" == "beta",
 *     "about" == "a", and "1.0-pre1" > "1.0" (as "p" it ranks like "pl").
 *   - Every unrecognised word (e.g. "git", "x", "Alpha", "DEV") equals every
 *     other one and ranks below "dev".
 *   - "1." is lower than itself (any string whose canonical form ends in
 *     '.'), because side 1's leftover is checked first.
 *   - Numbers beyond LONG_MAX all compare equal to LONG_MAX.
 *
 * PHP's recursion in step 4 is a tail call, so it is done here as a loop; the
 * whole comparison uses a few fixed stack buffers and no heap. Character
 * classes are ASCII-only (no locale): bytes >= 0x80 are neither digits nor
 * letters, which is also what PHP 8 does under its C / C.UTF-8 locale.
 */
#include "vercmp.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

/* Canonicalisation at most doubles the length (one '.' per input byte, minus
 * one). What step 4 feeds back is a suffix of either a verbatim input (at most
 * NF_VERSION_MAX bytes, so it fits once canonicalised) or of a canonical
 * string, which canonicalisation never lengthens: a canonical string has no
 * digit/non-digit pair without a '.' between them, and its other
 * non-alphanumerics follow a '.', so they are dropped. Hence the prepared
 * strings shrink every round, except once when a suffix of a verbatim input is
 * first canonicalised, and the loop in nf_vercmp() terminates. */
#define CANON_CAP (2 * NF_VERSION_MAX + 1)

/* What PHP compares a leftover word against; it starts with '#', so it is
 * used verbatim and its only part has the special form "#". */
static const char number_form[] = "#N#";

/* Order of the "#" special form, which is also how a number ranks against a word. */
#define ORDER_NUMBER 4

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alnum(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* The "non-digit" side of a digit/non-digit boundary: '.' is neither. */
static bool is_ndig(char c)
{
    return !is_digit(c) && c != '.';
}

static bool is_special_sep(char c)
{
    return c == '-' || c == '_' || c == '+';
}

/* strlen() capped at max, reading no byte past the first max. */
static size_t bounded_len(const char *s, size_t max)
{
    size_t n = 0;

    while (n < max && s[n] != '\0') {
        n++;
    }
    return n;
}

/* Appends c to out (length *q, capacity cap including the NUL) if it fits. */
static void put(char *out, size_t *q, size_t cap, char c)
{
    if (*q + 1 < cap) {
        out[(*q)++] = c;
    }
}

/* Writes the form of src[0..len) that gets compared: verbatim if it starts
 * with '#', canonicalised otherwise. out has room for cap bytes; the result is
 * NUL-terminated and silently truncated if it would not fit (unreachable for
 * the inputs nf_vercmp passes, see CANON_CAP). len must be > 0. */
static void prepare(const char *src, size_t len, char *out, size_t cap)
{
    size_t q = 0;

    if (src[0] == '#') {
        for (size_t i = 0; i < len; i++) {
            put(out, &q, cap, src[i]);
        }
        out[q] = '\0';
        return;
    }

    char lp = src[0]; /* previous input byte */
    put(out, &q, cap, lp);
    for (size_t i = 1; i < len; i++) {
        char c = src[i];
        bool last_is_dot = q > 0 && out[q - 1] == '.';

        if (is_special_sep(c)) {
            if (!last_is_dot) {
                put(out, &q, cap, '.');
            }
        } else if ((is_ndig(lp) && is_digit(c)) || (is_digit(lp) && is_ndig(c))) {
            /* Boundary: the byte itself is kept even if not alphanumeric. */
            if (!last_is_dot) {
                put(out, &q, cap, '.');
            }
            put(out, &q, cap, c);
        } else if (!is_alnum(c)) {
            if (!last_is_dot) {
                put(out, &q, cap, '.');
            }
        } else {
            put(out, &q, cap, c);
        }
        lp = c;
    }
    out[q] = '\0';
}

/* Rank of a word part p[0..len): PHP matches each form as a prefix, in table
 * order, so "alpha" must be tried before "a" and "pl" before "p". */
static int special_form_order(const char *p, size_t len)
{
    static const struct {
        const char *name;
        int order;
    } forms[] = {
        { "dev", 0 }, { "alpha", 1 }, { "a", 1 }, { "beta", 2 }, { "b", 2 },
        { "RC", 3 },  { "rc", 3 },    { "#", ORDER_NUMBER }, { "pl", 5 }, { "p", 5 },
    };

    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        size_t n = strlen(forms[i].name);
        if (len >= n && memcmp(p, forms[i].name, n) == 0) {
            return forms[i].order;
        }
    }
    return -1;
}

/* Value of the leading digits of p[0..len) as strtol would give it for a
 * string starting with a digit: base 10, saturating at LONG_MAX. */
static long part_value(const char *p, size_t len)
{
    long v = 0;

    for (size_t i = 0; i < len && is_digit(p[i]); i++) {
        int d = p[i] - '0';
        if (v > (LONG_MAX - d) / 10) {
            return LONG_MAX;
        }
        v = v * 10 + d;
    }
    return v;
}

/* Compares one part of each side; an empty part counts as a word. */
static int compare_parts(const char *p1, size_t l1, const char *p2, size_t l2)
{
    bool d1 = l1 > 0 && is_digit(p1[0]);
    bool d2 = l2 > 0 && is_digit(p2[0]);

    if (d1 && d2) {
        long v1 = part_value(p1, l1);
        long v2 = part_value(p2, l2);
        return (v1 > v2) - (v1 < v2);
    }
    int o1 = d1 ? ORDER_NUMBER : special_form_order(p1, l1);
    int o2 = d2 ? ORDER_NUMBER : special_form_order(p2, l2);
    return (o1 > o2) - (o1 < o2);
}

/* Outcome of walking two prepared strings. If result is 0 and rest_side is 1
 * or 2, the comparison continues as (rest, "#N#") or ("#N#", rest). */
struct walk {
    int result;
    int rest_side;
    const char *rest;
};

/* Walks the '.'-separated parts of v1 and v2 (both non-empty). Mirrors PHP's
 * loop exactly: it runs while both current parts are non-empty and both
 * sides had a dot after their previous part; a side with no further dot
 * keeps pointing at its last part. */
static struct walk walk_parts(const char *v1, const char *v2)
{
    struct walk w = { 0, 0, NULL };
    const char *p1 = v1, *p2 = v2;
    bool more1 = true, more2 = true; /* PHP: n1 != NULL, n2 != NULL */

    while (*p1 && *p2 && more1 && more2) {
        const char *dot1 = strchr(p1, '.');
        const char *dot2 = strchr(p2, '.');
        size_t l1 = dot1 ? (size_t)(dot1 - p1) : strlen(p1);
        size_t l2 = dot2 ? (size_t)(dot2 - p2) : strlen(p2);

        more1 = dot1 != NULL;
        more2 = dot2 != NULL;
        w.result = compare_parts(p1, l1, p2, l2);
        if (w.result != 0) {
            return w;
        }
        if (more1) {
            p1 = dot1 + 1;
        }
        if (more2) {
            p2 = dot2 + 1;
        }
    }

    if (more1) {
        if (is_digit(*p1)) {
            w.result = 1;
        } else {
            w.rest_side = 1;
            w.rest = p1;
        }
    } else if (more2) {
        if (is_digit(*p2)) {
            w.result = -1;
        } else {
            w.rest_side = 2;
            w.rest = p2;
        }
    }
    return w;
}

int nf_vercmp(const char *a, const char *b)
{
    char buf1[CANON_CAP], buf2[CANON_CAP], scratch[CANON_CAP];
    const char *x = a, *y = b;
    size_t xl = bounded_len(a, NF_VERSION_MAX);
    size_t yl = bounded_len(b, NF_VERSION_MAX);

    for (;;) {
        if (xl == 0 || yl == 0) {
            return (xl > 0) - (yl > 0);
        }
        prepare(x, xl, buf1, sizeof buf1);
        prepare(y, yl, buf2, sizeof buf2);

        struct walk w = walk_parts(buf1, buf2);
        if (w.rest_side == 0) {
            return w.result;
        }

        /* PHP recurses here; the rest lives in buf1/buf2, which the next
         * round overwrites, so move it to scratch first. */
        size_t rl = strlen(w.rest);
        memcpy(scratch, w.rest, rl + 1);
        if (w.rest_side == 1) {
            x = scratch;
            xl = rl;
            y = number_form;
            yl = sizeof number_form - 1;
        } else {
            x = number_form;
            xl = sizeof number_form - 1;
            y = scratch;
            yl = rl;
        }
    }
}
