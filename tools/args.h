/*
 * args.h - what every subcommand of the `nofuss` program shares (args.c
 * and exits.c, library nofuss_args): the exit status table, messages
 * prefixed with the command's name, the option tables, strict parsers for
 * sizes, counts and seconds, and whole-file reading and atomic writing.
 *
 * The subcommands live in libraries, one folder and one header each:
 * image/ (mkimage, info), inventory/ (devices, explain), ota/ (ota-send, ota-recv), push/ (push), sign/
 * (keygen, pubkey, sign, verify) and sim/ (device, fleet); main.c maps their names to their nf_cmd_* functions. To
 * add one, write its nf_cmd_<name>() in the library it belongs to, declare
 * it in that library's header with its exit statuses (struct nf_exit),
 * and add both to the table in main.c.
 *
 * Exit status: one table (exits.c). Every subcommand exits 0 on success
 * and 2 on bad usage; each lists its other statuses as rows of struct
 * nf_exit beside its options, printed in its --help, all together in
 * `nofuss --help`, and the same in docs/man/nofuss.1's EXIT STATUS.
 */
#ifndef NOFUSS_TOOLS_ARGS_H
#define NOFUSS_TOOLS_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define NF_EXIT_OK         0
#define NF_EXIT_USAGE      2
#define NF_EXIT_USAGE_TEXT "bad usage (an unknown option or command, a missing or bad value)"

/* ---- exits.c: the exit status table ---- */

/* One exit status of a subcommand; a table of them, in increasing order of
 * code and without NF_EXIT_USAGE, ends with a NULL meaning. */
struct nf_exit {
	int code;
	const char *meaning; /* one sentence, no final period */
};

/* Prints rows, one a line: lead, the status, its meaning (wrapped under
 * itself); the lines after the first are indented as wide as lead. With
 * usage, NF_EXIT_USAGE's row is printed in its place. */
void nf_exit_rows(FILE *out, const struct nf_exit *rows, bool usage, const char *lead);
/* A subcommand's --help ending: a blank line, "Exit status:", and its rows
 * with bad usage among them. */
void nf_exit_help(FILE *out, const struct nf_exit *rows);

/* A subcommand: argv[0] is its name; prog_argv is the whole command line
 * as main() got it (for a program that re-executes itself). Returns the
 * process exit status. */
typedef int (*nf_command_fn)(int argc, char *argv[], char *prog_argv[]);

/* ---- args.c: messages, numbers, files. Each parser returns 0, or -1
 * after printing "nofuss <cmd>: <what>: <why>" on stderr. ---- */

/* Sets the program name used in messages ("nofuss device"). */
void nf_tool_set_name(const char *name);
/* Prints "<name>: <message>\n" on stderr. */
void nf_tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* A byte size: decimal digits with an optional K or M suffix (binary:
 * 1K = 1024), within [min, max]. */
int nf_parse_size(const char *what, const char *text, uint32_t min, uint32_t max, uint32_t *out);
/* A decimal count within [min, max]. */
int nf_parse_count(const char *what, const char *text, unsigned long min, unsigned long max,
                   unsigned long *out);
/* Seconds, decimals allowed ("0.5"), within [min, max]; out in milliseconds. */
int nf_parse_seconds(const char *what, const char *text, double min, double max, long *out_ms);
/* ---- args.c: the options of a subcommand, as a table ----
 *
 * Each subcommand describes its options in a table of struct nf_opt (its
 * long name, its one-letter spelling, and where and how its value is
 * stored in the subcommand's options struct) ended by NF_OPT_END, and
 * nf_opts_parse() reads the command line with getopt_long from it, so every
 * option keeps GNU getopt's spellings: "--name VALUE", "--name=VALUE", an
 * unambiguous prefix of the name, "-x VALUE", and options after operands.
 * -h/--help is added to every table. A value is checked by the parser its
 * kind names (nf_parse_size, _count, _seconds, with "--name" in the
 * message), or by the option's own setter. */

#define NF_OPTS_MAX 40 /* options in one table, --help not counted */

enum nf_opt_kind {
	NF_OPT_FLAG,        /* no value: sets a bool */
	NF_OPT_STRING,      /* const char *: the value as given */
	NF_OPT_SIZE,        /* uint32_t: nf_parse_size within [min, max] */
	NF_OPT_COUNT,       /* unsigned long: nf_parse_count within [min, max] */
	NF_OPT_SECONDS,     /* long milliseconds: nf_parse_seconds within [min, max] */
	NF_OPT_CALL,        /* a value for set() */
	NF_OPT_CALL_NOARG,  /* no value: set() gets NULL */
	NF_OPT_CALL_OPTARG, /* "--name" or "--name=VALUE": set() gets the value or NULL */
};

struct nf_opt {
	const char *name; /* the long name, without "--"; NULL ends a table */
	int letter;       /* the short spelling ('f' for -f), or 0 for none */
	enum nf_opt_kind kind;
	size_t offset;   /* the value's place in the options struct (not CALL) */
	double min, max; /* SIZE, COUNT, SECONDS (integers are exact below 2^53) */
	/* CALL: stores value in opts; 0, or -1 after saying why. */
	int (*set)(void *opts, const char *value);
};

/* offsetof(T, f), refused at compile time unless f has the type given. */
/* clang-format off */
#define NF_OPT_AT(T, f, type) _Generic(((T *)0)->f, type: offsetof(T, f))
#define NF_OPT_FLAG(name, letter, T, f) {name, letter, NF_OPT_FLAG, NF_OPT_AT(T, f, bool), 0, 0, NULL}
#define NF_OPT_STRING(name, letter, T, f)                                                         \
	{name, letter, NF_OPT_STRING, NF_OPT_AT(T, f, const char *), 0, 0, NULL}
#define NF_OPT_SIZE(name, letter, T, f, min, max)                                                 \
	{name, letter, NF_OPT_SIZE, NF_OPT_AT(T, f, uint32_t), min, max, NULL}
#define NF_OPT_COUNT(name, letter, T, f, min, max)                                                \
	{name, letter, NF_OPT_COUNT, NF_OPT_AT(T, f, unsigned long), min, max, NULL}
#define NF_OPT_SECONDS(name, letter, T, f, min, max)                                              \
	{name, letter, NF_OPT_SECONDS, NF_OPT_AT(T, f, long), min, max, NULL}
#define NF_OPT_CALL(name, letter, kind, set) {name, letter, kind, 0, 0, 0, set}
#define NF_OPT_END {NULL, 0, NF_OPT_FLAG, 0, 0, 0, NULL}
/* clang-format on */

/* Reads the options of argv (argv[0] is the subcommand's name) into opts
 * as table says, starting over at argv[1] (optind is reset). Returns 0 with
 * the operands from argv[optind] on; 1 after printing usage on stdout for
 * -h/--help; -1 on bad usage: an unknown option or a missing value (getopt
 * says which, then usage goes to stderr), or a bad value (the setter says
 * why). */
int nf_opts_parse(const struct nf_opt *table, void *opts, void (*usage)(FILE *out), int argc,
                  char *argv[]);
/* After nf_opts_parse() for a subcommand that takes no operand: returns 0
 * when there is none, else -1 after saying "unexpected argument". */
int nf_opts_no_operands(int argc, char *argv[]);
/* Sets the option called name (the long name, without "--") in opts to
 * value (NULL for an option without a value), as table says. Returns 0, or
 * -1 after saying why (a bad value, or no such option). */
int nf_opt_set(const struct nf_opt *table, void *opts, const char *name, const char *value);

/* Reads the whole file path (at most max bytes) into a buffer the caller
 * frees with free(). Returns 0, or -1 after printing why. */
int nf_read_file(const char *path, size_t max, uint8_t **data, size_t *len);
/* Writes data to path atomically (path.tmp, fsync, rename). Returns 0, or
 * -1 after printing why. */
int nf_write_file(const char *path, const uint8_t *data, size_t len);
#endif /* NOFUSS_TOOLS_ARGS_H */
