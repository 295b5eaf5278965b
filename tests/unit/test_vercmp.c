/*
 * test_vercmp.c - unit tests for nf_vercmp(), nofuss's version_compare().
 *
 * nf_vercmp() must order version strings exactly like PHP 8's
 * version_compare(), because that is what the original NoFUSS server used
 * and what existing manifests and devices depend on. Every expected value in
 * this file was produced by running the same strings through the real
 * php-cli, including the answers that look wrong (e.g. "1." < "1." and
 * "1.0-pre1" > "1.0"): those quirks are the specification.
 *
 * The main table holds {a, b, expected} rows; rows whose "reversible" flag is
 * set are also run as (b, a) and must give -expected, which PHP confirmed for
 * each of them. A few property tests (reflexivity, a strictly ordered chain)
 * and the NF_VERSION_MAX limits follow.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "vercmp.h"

struct vercmp_case {
    const char *a;
    const char *b;
    int expected;    /* version_compare(a, b) in php 8 */
    bool reversible; /* php also gives version_compare(b, a) == -expected */
};

static const struct vercmp_case cases[] = {
    /* Rule 1: empty strings */
    { "", "", 0, true },
    { "", "1", -1, true },
    { "1", "", 1, true },
    { "", "0", -1, true },
    { "", "dev", -1, true },
    { "", "#", -1, true },
    { "", ".", -1, true },
    { "", " ", -1, true },
    { "", "#N#", -1, true },
    /* Plain numbers and dotted numbers */
    { "1", "2", -1, true },
    { "2", "1", 1, true },
    { "1", "1", 0, true },
    { "10", "2", 1, true },
    { "1.0", "1.1", -1, true },
    { "1.2", "1.0.1", 1, true },
    { "1.10", "1.9", 1, true },
    { "0.1.9", "0.1.10", -1, true },
    { "0.1.10", "0.1.9", 1, true },
    { "2.0.0", "1.99.99", 1, true },
    { "0.1.0", "0.0.1", 1, true },
    { "2.7.4", "2.7.4", 0, true },
    { "1.0", "1.0.0", -1, true },
    { "1.0.0", "1.0", 1, true },
    { "1", "1.0", -1, true },
    { "1.2.3", "1.2.3.0", -1, true },
    { "1.2.3", "1.2.3.1", -1, true },
    { "20190101", "20181231", 1, true },
    /* Leading zeros are ignored */
    { "01", "1", 0, true },
    { "1.010", "1.10", 0, true },
    { "1.01", "1.1", 0, true },
    { "007", "7", 0, true },
    { "0", "00", 0, true },
    { "1.0.0", "1.00.000", 0, true },
    { "1.02", "1.2", 0, true },
    { "1.02", "1.10", -1, true },
    { "00.1", "0.1", 0, true },
    /* Huge numbers saturate at LONG_MAX like strtol */
    { "9223372036854775806", "9223372036854775807", -1, true },
    { "9223372036854775807", "9223372036854775808", 0, true },
    { "99999999999999999999", "100000000000000000000", 0, true },
    { "18446744073709551616", "9223372036854775807", 0, true },
    { "18446744073709551616", "9223372036854775806", 1, true },
    { "1.99999999999999999999", "1.9223372036854775807", 0, true },
    { "1.99999999999999999999", "2", -1, true },
    { "00000000000000000000000001", "1", 0, true },
    /* Special forms in order: dev < alpha = a < beta = b < RC = rc < # (number) < pl = p */
    { "1.0-dev", "1.0-alpha", -1, true },
    { "1.0alpha", "1.0a", 0, true },
    { "1.0a", "1.0beta", -1, true },
    { "1.0beta", "1.0b", 0, true },
    { "1.0b", "1.0RC", -1, true },
    { "1.0RC", "1.0rc", 0, true },
    { "1.0rc", "1.0", -1, true },
    { "1.0", "1.0pl", -1, true },
    { "1.0pl", "1.0p", 0, true },
    { "1.0-dev", "1.0", -1, true },
    { "1.0-dev", "1.0-pl", -1, true },
    { "1.0a1", "1.0b1", -1, true },
    { "1.0b1", "1.0RC1", -1, true },
    { "1.0RC1", "1.0rc1", 0, true },
    { "1.0rc1", "1.0", -1, true },
    { "1.0rc1", "1.0.0", -1, true },
    { "1.0", "1.0pl1", -1, true },
    { "1.0", "1.0p1", -1, true },
    { "1.0pl1", "1.0p1", 0, true },
    { "1.0rc1", "1.0rc2", -1, true },
    { "1.0rc10", "1.0rc9", 1, true },
    { "1.0-alpha2", "1.0-alpha10", -1, true },
    { "1.0-beta", "1.0-alpha", 1, true },
    { "1.0-dev", "1.0-dev", 0, true },
    { "1.0.0-beta.2", "1.0.0-beta.11", -1, true },
    { "3.0.0-beta1", "3.0.0", -1, true },
    { "1.0rc1", "1.0pl1", -1, true },
    { "1.0-#", "1.0", -1, true },
    { "1.0#", "1.0", 0, true },
    { "1.0-#", "1.0-rc", -1, false },
    { "1.0-#", "1.0-pl", -1, true },
    { "dev", "alpha", -1, true },
    { "p", "pl", 0, true },
    /* Special forms match by prefix; case matters */
    { "1.0-patch", "1.0-pl", 0, true },
    { "1.0-patch", "1.0", 1, true },
    { "1.0-about", "1.0a", 0, true },
    { "1.0-developer", "1.0-dev", 0, true },
    { "1.0-bogus", "1.0-beta", 0, true },
    { "1.0-rcx", "1.0-RC", 0, true },
    { "1.0-Alpha", "1.0-dev", -1, true },
    { "1.0-DEV", "1.0-dev", -1, true },
    { "1.0-Rc1", "1.0-rc1", -1, true },
    { "1.0-PL", "1.0", -1, true },
    { "1.0-build", "1.0", -1, true },
    { "1.0-build1", "1.0-dev1", 1, true },
    { "1.0-build", "1.0-patch", -1, true },
    { "1.0-bar", "1.0-beta", 0, true },
    { "1.0-build", "1.0-b", 0, true },
    { "1.0-git", "1.0-build", -1, true },
    { "foo", "bar", -1, true },
    { "1.0-alpine", "1.0-alpha", 0, true },
    { "1.0-release", "1.0-rc", -1, true },
    { "1.0-pre1", "1.0", 1, true },
    { "1.0-preview", "1.0-pl", 0, true },
    { "1.0-devel", "1.0-alpha", -1, true },
    /* Unknown words equal each other and rank below dev */
    { "1.0-foo", "1.0-zzz", 0, true },
    { "1.0-git", "1.0-snapshot", 0, true },
    { "foo", "git", 0, true },
    { "foo", "dev", -1, true },
    { "x", "y", 0, true },
    { "1.0-x", "1.0-dev", -1, true },
    { "1.0-git", "1.0", -1, true },
    { "1.0-foo1", "1.0-git2", -1, true },
    { "1.0-x", "1.0-x", 0, true },
    { "1.0-release", "1.0-dev", -1, true },
    { "1.0-final", "1.0-Final", 0, true },
    { "1.0-SNAPSHOT", "1.0-git", 0, true },
    { "1.0-git", "1.0-git.1", -1, true },
    /* Numbers against words: a number ranks as the form # */
    { "1", "a", 1, true },
    { "1", "pl", -1, true },
    { "1", "p", -1, true },
    { "1", "rc", 1, true },
    { "1", "foo", 1, true },
    { "1", "#", 0, true },
    { "5", "#N#", 0, true },
    { "1.0.1", "1.0.a", 1, true },
    { "1.0.1", "1.0.pl", -1, true },
    { "1.0.5", "1.0.p", -1, true },
    { "1.0.0", "1.0.dev", 1, true },
    { "1.a", "1.1", -1, true },
    /* Separators -, _, + and other punctuation */
    { "1.0-rc1", "1.0_rc1", 0, true },
    { "1.0-rc1", "1.0+rc1", 0, true },
    { "1.0_rc1", "1.0+rc1", 0, true },
    { "1.0+rc1", "1.0rc1", 0, true },
    { "1.0-rc1", "1.0.rc.1", 0, true },
    { "1.0--rc1", "1.0-rc1", 0, true },
    { "1.0-_+rc1", "1.0rc1", 0, true },
    { "1-0", "1.0", 0, true },
    { "1_2_3", "1.2.3", 0, true },
    { "1+2", "1.2", 0, true },
    { "1/2", "1.2", -1, true },
    { "1~2", "1.2", -1, true },
    { "1 2", "1.2", -1, true },
    { "1,2", "1.2", -1, true },
    { "1.0.0+build.5", "1.0.0", -1, true },
    { "1.0.0+build.5", "1.0.0+build.6", -1, true },
    { "1.0.0-20190101", "1.0.0", 1, true },
    { "1#2", "1.4", 1, true },
    { "1#2", "1.2", 1, true },
    { "1.0-1", "1.0.1", 0, true },
    /* Trailing and leading dots */
    { "1.", "1", -1, true },
    { "1.", "1.0", -1, true },
    { "1.0", "1.", 1, true },
    { "1.", "1.", -1, false },
    { "1.0.", "1.0.", -1, false },
    { "1.2.", "1.2", -1, true },
    { "1-", "1", -1, true },
    { "1.0", "1.0-", 1, true },
    { "1 ", "1", -1, true },
    { "1.0 ", "1.0", -1, true },
    { ".5", "0.5", -1, true },
    { ".5", "5", -1, true },
    { "..5", "5", -1, true },
    { "1..2", "1.2", 0, true },
    { "1...2", "1.2", 0, true },
    { ".", "0", -1, true },
    { ".", ".", -1, false },
    { ".", "dev", -1, true },
    { "-1", "1", -1, true },
    { " 1", "1", -1, true },
    { "1.0", "1.0.", 1, true },
    /* v prefix */
    { "v1.0", "1.0", -1, true },
    { "v1.0", "v1.1", -1, true },
    { "v1.0", "v1.0", 0, true },
    { "v1.0", "1.1", -1, true },
    { "1.0", "v1.0", 1, true },
    { "V1.0", "v1.0", 0, true },
    { "v2", "v10", -1, true },
    { "v1.0", "dev", -1, true },
    /* Strings starting with # are not canonicalised */
    { "#1.2", "1.2", 0, true },
    { "#", "1", 0, true },
    { "#", "#", 0, true },
    { "#N#", "5", 0, true },
    { "#abc", "#", 0, true },
    { "#-1", "1", 0, true },
    { "#1", "dev", 1, true },
    { "#", "pl", -1, true },
    { "#", "rc", 1, true },
    { "#1.2.3", "#1.2.4", -1, true },
    { "#1.2a", "#1.2b", 0, true },
    { "#1.", "#1.", -1, false },
    { "#1-rc1", "1-rc1", 1, true },
    { "#1.rc1", "1.rc1", -1, true },
    /* Non-ASCII bytes are neither letters nor digits */
    { "1\x80", "1", -1, true },
    { "1.0\xc3\xa9", "1.0", -1, true },
    { "\xff", "a", -1, true },
    { "\xff", "\x80", 0, true },
    { "1.0-\xc3\xa9t\xc3\xa9", "1.0-dev", -1, true },
    { "1\xa0" "2", "1.2", -1, true },
    { "caf\xc3\xa9", "cafe", -1, true },
    { "1.\xc3\xa9", "1", -1, true },
    { "\xc3\xa9" "1.0", "1.0", -1, true },
    { "1.0\x80" "1", "1.0.1", -1, true },
    /* Typical firmware versions */
    { "1.13.5", "1.13.6-git", -1, true },
    { "1.13.6-git", "1.13.6", -1, true },
    { "1.13.6-git", "1.13.5", 1, true },
    { "1.13.6-git", "1.13.6-rc1", -1, true },
    { "1.2.3a", "1.2.3", -1, true },
    { "2.5.2", "2.5.10", -1, true },
    { "0.9", "1.0-dev", -1, true },
    { "1.0.0", "1.0.0-SNAPSHOT", 1, true },
    { "1.4.0-beta2", "1.4.0-rc1", -1, true },
    { "1.4.0", "1.4.0-1", -1, true },
    { "2018.12.01", "2019.01.15", -1, true },
};

static void test_table(void **state)
{
    (void)state;
    size_t n = sizeof cases / sizeof cases[0];
    int failures = 0;

    for (size_t i = 0; i < n; i++) {
        const struct vercmp_case *c = &cases[i];
        int got = nf_vercmp(c->a, c->b);
        if (got != c->expected) {
            print_error("row %zu: nf_vercmp(\"%s\", \"%s\") = %d, php says %d\n",
                        i, c->a, c->b, got, c->expected);
            failures++;
        }
        if (c->reversible) {
            got = nf_vercmp(c->b, c->a);
            if (got != -c->expected) {
                print_error("row %zu reversed: nf_vercmp(\"%s\", \"%s\") = %d, php says %d\n",
                            i, c->b, c->a, got, -c->expected);
                failures++;
            }
        }
    }
    assert_int_equal(failures, 0);
}

/* Every version compares equal to itself, unless its canonical form ends in
 * a '.', in which case PHP says it is lower than itself. */
static void test_reflexivity(void **state)
{
    (void)state;
    static const char *const self_equal[] = {
        "1", "1.0", "1.0.0", "v1.0", "1.0-rc1", "1.0-dev", "#", "#N#", "1.13.6-git",
        ".5", "\xff", "99999999999999999999", "1..2", "1.0-git", "1 ", "-",
    };
    static const char *const self_lower[] = {
        "1.", "1.0-", "1.0_", ".", "#1.", "1.0-#",
    };

    for (size_t i = 0; i < sizeof self_equal / sizeof self_equal[0]; i++) {
        assert_int_equal(nf_vercmp(self_equal[i], self_equal[i]), 0);
    }
    for (size_t i = 0; i < sizeof self_lower / sizeof self_lower[0]; i++) {
        assert_int_equal(nf_vercmp(self_lower[i], self_lower[i]), -1);
    }
}

/* A chain php sorts strictly ascending: every pair must come out in order,
 * in both directions (antisymmetry and transitivity over typical versions). */
static void test_ordered_chain(void **state)
{
    (void)state;
    static const char *const chain[] = {
        "", "1.0-dev", "1.0a1", "1.0b1", "1.0RC1", "1.0", "1.0.1", "1.0pl1", "1.1-dev",
        "1.1", "1.9", "1.10", "1.13.5", "1.13.6-git", "1.13.6-dev", "1.13.6-rc1", "1.13.6",
        "2.0", "10.0", "9223372036854775807",
    };
    size_t n = sizeof chain / sizeof chain[0];

    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < n; j++) {
            int want = (i > j) - (i < j);
            if (nf_vercmp(chain[i], chain[j]) != want) {
                fail_msg("nf_vercmp(\"%s\", \"%s\") != %d", chain[i], chain[j], want);
            }
        }
    }
}

/* Fills buf with `times` copies of unit and NUL-terminates it. */
static void repeat(char *buf, size_t size, const char *unit, size_t times)
{
    size_t ul = strlen(unit);
    size_t q = 0;

    for (size_t i = 0; i < times && q + ul < size; i++) {
        memcpy(buf + q, unit, ul);
        q += ul;
    }
    buf[q] = '\0';
}

/* Inputs of exactly NF_VERSION_MAX bytes whose canonical form is as long as
 * it can get (a '.' after every byte); expected values from php. */
static void test_longest_inputs(void **state)
{
    (void)state;
    char a[NF_VERSION_MAX + 1], b[NF_VERSION_MAX + 1];

    repeat(a, sizeof a, "a1", NF_VERSION_MAX / 2);
    assert_int_equal(strlen(a), NF_VERSION_MAX);
    memcpy(b, a, sizeof a);
    b[NF_VERSION_MAX - 1] = '2';
    assert_int_equal(nf_vercmp(a, a), 0);
    assert_int_equal(nf_vercmp(a, b), -1);
    assert_int_equal(nf_vercmp(b, a), 1);

    /* '#' strings are used verbatim: one part, ranking as the form "#". */
    a[0] = '#';
    repeat(a + 1, sizeof a - 1, "1a", (NF_VERSION_MAX - 2) / 2);
    strcat(a, "1");
    assert_int_equal(strlen(a), NF_VERSION_MAX);
    memcpy(b, a, sizeof a);
    b[NF_VERSION_MAX - 1] = '2';
    assert_int_equal(nf_vercmp(a, a), 0);
    assert_int_equal(nf_vercmp(a, b), 0);
}

/* Only the first NF_VERSION_MAX bytes take part (php, which has no limit,
 * says 1 here), and nothing past them is read: the second case passes
 * buffers without a terminating NUL, which ASan would flag if overread. */
static void test_longer_than_max_is_truncated(void **state)
{
    (void)state;
    char prefix[NF_VERSION_MAX + 1];
    char a[NF_VERSION_MAX + 8], b[NF_VERSION_MAX + 8];

    repeat(prefix, sizeof prefix, "1.", (NF_VERSION_MAX - 1) / 2);
    strcat(prefix, "1"); /* 127 bytes: "1.1. ... .1" */
    assert_int_equal(strlen(prefix), NF_VERSION_MAX - 1);
    snprintf(a, sizeof a, "%s0.9", prefix);
    snprintf(b, sizeof b, "%s0.1", prefix);
    assert_int_equal(nf_vercmp(a, b), 0);

    char raw1[NF_VERSION_MAX], raw2[NF_VERSION_MAX];
    memset(raw1, '7', sizeof raw1);
    memset(raw2, '7', sizeof raw2);
    raw2[NF_VERSION_MAX - 3] = '.';
    /* php on the same 128 bytes: both first parts saturate, then raw2 has a
     * numeric part left over. */
    assert_int_equal(nf_vercmp(raw1, raw2), -1);
    assert_int_equal(nf_vercmp(raw2, raw1), 1);
    assert_int_equal(nf_vercmp(raw1, raw1), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_reflexivity),
        cmocka_unit_test(test_ordered_chain),
        cmocka_unit_test(test_longest_inputs),
        cmocka_unit_test(test_longer_than_max_is_truncated),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
