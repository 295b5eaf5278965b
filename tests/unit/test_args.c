/*
 * test_args.c - the `nofuss` subcommands' option tables (tools/args.c):
 * every kind of option set through every spelling GNU getopt_long accepts
 * (--name VALUE, --name=VALUE, an unambiguous prefix, -x VALUE, clustered
 * flags, options after operands), --help, unknown and ambiguous options,
 * missing and bad values (with the message naming the option), and the
 * setter by name. Also the exit status table's printer (tools/exits.c):
 * bad usage in its place, long meanings wrapped under themselves.
 */
#include <setjmp.h> /* cmocka.h needs these three first */
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "args.h"

struct opts {
	const char *name;
	bool verbose, quiet;
	uint32_t size;
	unsigned long count;
	long wait_ms;
	int once;         /* NOARG calls */
	const char *mode; /* OPTARG: the last value */
	bool mode_given;
};

static int set_once(void *o, const char *value)
{
	assert_null(value);
	((struct opts *)o)->once++;
	return 0;
}

static int set_mode(void *o, const char *value)
{
	((struct opts *)o)->mode = value;
	((struct opts *)o)->mode_given = true;
	return 0;
}

static const struct nf_opt table[] = {
    NF_OPT_STRING("name", 'n', struct opts, name),
    NF_OPT_FLAG("verbose", 'v', struct opts, verbose),
    NF_OPT_FLAG("quiet", 'q', struct opts, quiet),
    NF_OPT_SIZE("size", 's', struct opts, size, 128, 1024 * 1024),
    NF_OPT_COUNT("count", 0, struct opts, count, 1, 10),
    NF_OPT_SECONDS("wait", 'w', struct opts, wait_ms, 0.5, 60),
    NF_OPT_SECONDS("wander", 0, struct opts, wait_ms, 0, 1),
    NF_OPT_CALL("once", '1', NF_OPT_CALL_NOARG, set_once),
    NF_OPT_CALL("mode", 0, NF_OPT_CALL_OPTARG, set_mode),
    NF_OPT_END,
};

static FILE *usage_out; /* where usage() was last printed */

static void usage(FILE *out)
{
	usage_out = out;
}

/* Parses the words given (argv[0] "test" added), stderr captured into err. */
static int parse(struct opts *o, char *err, size_t errcap, ...)
{
	char *argv[16] = {"test"};
	int argc = 1, saved, rc;
	FILE *capture = tmpfile();
	size_t n;
	va_list ap;

	va_start(ap, errcap);
	for (char *w; (w = va_arg(ap, char *)) != NULL;)
		argv[argc++] = w;
	va_end(ap);
	memset(o, 0, sizeof *o);
	usage_out = NULL;
	assert_non_null(capture);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	dup2(fileno(capture), STDERR_FILENO);
	rc = nf_opts_parse(table, o, usage, argc, argv);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	rewind(capture);
	n = fread(err, 1, errcap - 1, capture);
	err[n] = '\0';
	fclose(capture);
	return rc;
}

static void every_spelling(void **state)
{
	struct opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof err, "--name", "x", "--size=4K", "--cou", "7", "-vq",
	                       "-w", "1.5", "operand", "-1", "--once", "--mode", NULL),
	                 0);
	assert_string_equal(o.name, "x");
	assert_true(o.verbose && o.quiet);
	assert_int_equal(o.size, 4096);
	assert_int_equal(o.count, 7);
	assert_int_equal(o.wait_ms, 1500);
	assert_int_equal(o.once, 2);
	assert_true(o.mode_given);
	assert_null(o.mode);
	assert_string_equal(err, "");
	/* GNU getopt moved the operand after the options. */
	assert_int_equal(optind, 12);
	assert_int_equal(parse(&o, err, sizeof err, "--mode=fast", "-nvalue", NULL), 0);
	assert_string_equal(o.mode, "fast");
	assert_string_equal(o.name, "value");
}

static void help_and_bad_usage(void **state)
{
	struct opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof err, "--count", "2", "--help", NULL), 1);
	assert_ptr_equal(usage_out, stdout);
	assert_int_equal(parse(&o, err, sizeof err, "-h", NULL), 1);
	assert_int_equal(parse(&o, err, sizeof err, "--nosuch", NULL), -1);
	assert_ptr_equal(usage_out, stderr);
	assert_non_null(strstr(err, "unrecognized option '--nosuch'"));
	assert_int_equal(parse(&o, err, sizeof err, "--wa", "1", NULL), -1); /* wait or wander */
	assert_non_null(strstr(err, "'--wa' is ambiguous"));
	assert_int_equal(parse(&o, err, sizeof err, "--size", NULL), -1);
	assert_non_null(strstr(err, "requires an argument"));
	assert_int_equal(parse(&o, err, sizeof err, "--verbose=yes", NULL), -1);
	assert_int_equal(parse(&o, err, sizeof err, "-x", NULL), -1);
}

static void bad_values_name_the_option(void **state)
{
	struct opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof err, "--size", "100", NULL), -1);
	assert_null(usage_out); /* a bad value is said, without the usage */
	assert_string_equal(err, "nofuss: --size: '100' is out of range (128 to 1048576 bytes)\n");
	assert_int_equal(parse(&o, err, sizeof err, "--count", "11", NULL), -1);
	assert_string_equal(err, "nofuss: --count: '11' is out of range (1 to 10)\n");
	assert_int_equal(parse(&o, err, sizeof err, "-w", "soon", NULL), -1);
	assert_string_equal(err, "nofuss: --wait: 'soon' is not a number of seconds\n");
	assert_int_equal(parse(&o, err, sizeof err, "--wait", "0.1", NULL), -1);
	assert_string_equal(err, "nofuss: --wait: '0.1' is out of range (0.5 to 60 seconds)\n");
}

static void setter_by_name(void **state)
{
	struct opts o;

	(void)state;
	memset(&o, 0, sizeof o);
	assert_int_equal(nf_opt_set(table, &o, "count", "3"), 0);
	assert_int_equal(o.count, 3);
	assert_int_equal(nf_opt_set(table, &o, "wander", "0.25"), 0);
	assert_int_equal(o.wait_ms, 250);
	assert_int_equal(nf_opt_set(table, &o, "verbose", NULL), 0);
	assert_true(o.verbose);
	assert_int_equal(nf_opt_set(table, &o, "count", "0"), -1);
	assert_int_equal(o.count, 3);
	assert_int_equal(nf_opt_set(table, &o, "cou", "3"), -1); /* names are whole */
}

static void no_operands(void **state)
{
	struct opts o;
	char err[512];

	(void)state;
	assert_int_equal(parse(&o, err, sizeof err, "-v", NULL), 0);
	assert_int_equal(nf_opts_no_operands(2, (char *[]){"test", "-v", NULL}), 0);
	assert_int_equal(parse(&o, err, sizeof err, "-v", "extra", NULL), 0);
	assert_int_equal(optind, 2);
	assert_int_equal(nf_opts_no_operands(3, (char *[]){"test", "-v", "extra", NULL}), -1);
}

/* The rows as nf_exit_rows prints them, into a string the caller frees. */
static char *exit_text(const struct nf_exit *rows, bool usage, const char *lead)
{
	char *text = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&text, &len);

	assert_non_null(out);
	nf_exit_rows(out, rows, usage, lead);
	fclose(out);
	return text;
}

static void exit_table(void **state)
{
	static const struct nf_exit rows[] = {
	    {0, "done"},
	    {1, "failed"},
	    {3, "a meaning long enough to be wrapped: it goes on and on past the seventy-ninth "
	        "column, under itself"},
	    {0, NULL},
	};
	static const struct nf_exit low[] = {{0, "done"}, {0, NULL}};
	char *text;

	(void)state;
	text = exit_text(rows, true, "  ");
	assert_string_equal(text,
	                    "  0  done\n"
	                    "  1  failed\n"
	                    "  2  " NF_EXIT_USAGE_TEXT "\n"
	                    "  3  a meaning long enough to be wrapped: it goes on and on past the\n"
	                    "     seventy-ninth column, under itself\n");
	free(text);
	text = exit_text(rows, false, "  push    ");
	assert_string_equal(
	    text, "  push    0  done\n"
	          "          1  failed\n"
	          "          3  a meaning long enough to be wrapped: it goes on and on past the\n"
	          "             seventy-ninth column, under itself\n");
	free(text);
	text = exit_text(low, true, "  "); /* bad usage last */
	assert_string_equal(text, "  0  done\n  2  " NF_EXIT_USAGE_TEXT "\n");
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(every_spelling),
	    cmocka_unit_test(help_and_bad_usage),
	    cmocka_unit_test(bad_values_name_the_option),
	    cmocka_unit_test(setter_by_name),
	    cmocka_unit_test(no_operands),
	    cmocka_unit_test(exit_table),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
