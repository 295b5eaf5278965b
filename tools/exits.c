/*
 * exits.c - the exit statuses of the `nofuss` subcommands as one table:
 * each subcommand lists its rows (status, meaning) beside its options, and
 * this prints them the same way in its --help and, all together, in
 * `nofuss --help`. docs/man/nofuss.1's EXIT STATUS holds the same rows
 * (tests/integration/test_device.py compares the three).
 */
#include <string.h>

#include "args.h"

#define WRAP_COLUMNS 79 /* the last column a meaning may reach */
#define CODE_WIDTH   3  /* "3  " */

/* Prints one row: prefix padded to indent columns, the status, then the
 * meaning, wrapped under itself. */
static void print_row(FILE *out, const char *prefix, int indent, int code, const char *meaning)
{
	int col = indent + CODE_WIDTH;
	const char *p = meaning;

	fprintf(out, "%s%*s%-*d", prefix, indent - (int)strlen(prefix), "", CODE_WIDTH, code);
	while (*p != '\0') {
		int word = (int)strcspn(p, " ");

		if (p != meaning && col + 1 + word > WRAP_COLUMNS) {
			fprintf(out, "\n%*s", indent + CODE_WIDTH, "");
			col = indent + CODE_WIDTH;
		} else if (p != meaning) {
			fputc(' ', out);
			col++;
		}
		fprintf(out, "%.*s", word, p);
		col += word;
		p += word;
		p += strspn(p, " ");
	}
	fputc('\n', out);
}

void nf_exit_rows(FILE *out, const struct nf_exit *rows, bool usage, const char *lead)
{
	int indent = (int)strlen(lead);
	const char *prefix = lead;

	for (const struct nf_exit *r = rows;; r++) {
		if (usage && (r->meaning == NULL || r->code > NF_EXIT_USAGE)) {
			print_row(out, prefix, indent, NF_EXIT_USAGE, NF_EXIT_USAGE_TEXT);
			prefix = "";
			usage = false;
		}
		if (r->meaning == NULL)
			break;
		print_row(out, prefix, indent, r->code, r->meaning);
		prefix = "";
	}
}

void nf_exit_help(FILE *out, const struct nf_exit *rows)
{
	fprintf(out, "\nExit status:\n");
	nf_exit_rows(out, rows, true, "  ");
}
