/*
 * args.c - what the subcommands share: error messages prefixed with the
 * command's name, the table-driven option parser (getopt_long underneath,
 * so every spelling GNU getopt accepts still works), strict parsers for
 * sizes, counts and seconds (bad input gets a message that names the
 * option), and whole-file reading and atomic writing with a size limit.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "args.h"

#define NAME_MAX_LEN 64
#define PATH_LEN_MAX 4096

static char tool_name[NAME_MAX_LEN] = "nofuss";

void nf_tool_set_name(const char *name)
{
	snprintf(tool_name, sizeof tool_name, "%s", name);
}

void nf_tool_error(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fprintf(stderr, "%s: ", tool_name);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int nf_parse_size(const char *what, const char *text, uint32_t min, uint32_t max, uint32_t *out)
{
	unsigned long long v = 0;
	const char *p = text;

	if (*p < '0' || *p > '9')
		goto bad;
	for (; *p >= '0' && *p <= '9'; p++) {
		v = v * 10 + (unsigned long long)(*p - '0');
		if (v > max)
			goto range;
	}
	if (*p == 'K' || *p == 'k') {
		v *= 1024;
		p++;
	} else if (*p == 'M' || *p == 'm') {
		v *= 1024 * 1024;
		p++;
	}
	if (*p != '\0')
		goto bad;
	if (v < min || v > max)
		goto range;
	*out = (uint32_t)v;
	return 0;
bad:
	nf_tool_error("%s: '%s' is not a size (digits, optionally K or M)", what, text);
	return -1;
range:
	nf_tool_error("%s: '%s' is out of range (%u to %u bytes)", what, text, min, max);
	return -1;
}

int nf_parse_count(const char *what, const char *text, unsigned long min, unsigned long max,
                   unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	if (text[0] < '0' || text[0] > '9') {
		nf_tool_error("%s: '%s' is not a number", what, text);
		return -1;
	}
	v = strtoul(text, &end, 10);
	if (*end != '\0') {
		nf_tool_error("%s: '%s' is not a number", what, text);
		return -1;
	}
	if (errno != 0 || v < min || v > max) {
		nf_tool_error("%s: '%s' is out of range (%lu to %lu)", what, text, min, max);
		return -1;
	}
	*out = v;
	return 0;
}

int nf_parse_seconds(const char *what, const char *text, double min, double max, long *out_ms)
{
	char *end;
	double v;

	errno = 0;
	if ((text[0] < '0' || text[0] > '9') && text[0] != '.') {
		nf_tool_error("%s: '%s' is not a number of seconds", what, text);
		return -1;
	}
	v = strtod(text, &end);
	if (*end != '\0' || errno != 0 || !isfinite(v)) {
		nf_tool_error("%s: '%s' is not a number of seconds", what, text);
		return -1;
	}
	if (v < min || v > max) {
		nf_tool_error("%s: '%s' is out of range (%g to %g seconds)", what, text, min, max);
		return -1;
	}
	*out_ms = (long)(v * 1000.0 + 0.5);
	return 0;
}

/* ---- the option tables ---- */

int nf_opts_no_operands(int argc, char *argv[])
{
	if (optind < argc) {
		nf_tool_error("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

#define OPT_NAME_MAX 64 /* "--" and a long name, with the NUL */

static int has_arg(enum nf_opt_kind kind)
{
	switch (kind) {
	case NF_OPT_FLAG:
	case NF_OPT_CALL_NOARG: return no_argument;
	case NF_OPT_CALL_OPTARG: return optional_argument;
	default: return required_argument;
	}
}

int nf_opt_set(const struct nf_opt *table, void *opts, const char *name, const char *value)
{
	const struct nf_opt *o = table;
	char what[OPT_NAME_MAX];
	unsigned long count;
	char *at;

	while (o->name != NULL && strcmp(o->name, name) != 0)
		o++;
	if (o->name == NULL) {
		nf_tool_error("no option --%s", name);
		return -1;
	}
	at = (char *)opts + o->offset;
	snprintf(what, sizeof what, "--%s", o->name);
	switch (o->kind) {
	case NF_OPT_FLAG: *(bool *)(void *)at = true; return 0;
	case NF_OPT_STRING: *(const char **)(void *)at = value; return 0;
	case NF_OPT_SIZE:
		return nf_parse_size(what, value, (uint32_t)o->min, (uint32_t)o->max,
		                     (uint32_t *)(void *)at);
	case NF_OPT_COUNT:
		if (nf_parse_count(what, value, (unsigned long)o->min, (unsigned long)o->max,
		                   &count) != 0)
			return -1;
		*(unsigned long *)(void *)at = count;
		return 0;
	case NF_OPT_SECONDS:
		return nf_parse_seconds(what, value, o->min, o->max, (long *)(void *)at);
	default: return o->set(opts, value);
	}
}

/* getopt_long's view of table: its long options (each returning the
 * option's letter, or 256 + its index) and its short ones. */
static int getopt_tables(const struct nf_opt *table, struct option *longs, char *shorts)
{
	size_t n = 0, k = 0;

	for (; table[n].name != NULL; n++) {
		int arg = has_arg(table[n].kind);

		if (n == NF_OPTS_MAX)
			return -1;
		longs[n] = (struct option){table[n].name, arg, NULL,
		                           table[n].letter != 0 ? table[n].letter : 256 + (int)n};
		if (table[n].letter == 0)
			continue;
		shorts[k++] = (char)table[n].letter;
		if (arg != no_argument)
			shorts[k++] = ':';
		if (arg == optional_argument)
			shorts[k++] = ':';
	}
	longs[n] = (struct option){"help", no_argument, NULL, 'h'};
	longs[n + 1] = (struct option){NULL, 0, NULL, 0};
	shorts[k++] = 'h';
	shorts[k] = '\0';
	return 0;
}

int nf_opts_parse(const struct nf_opt *table, void *opts, void (*usage)(FILE *out), int argc,
                  char *argv[])
{
	struct option longs[NF_OPTS_MAX + 2];
	char shorts[3 * NF_OPTS_MAX + 2];
	int c;

	if (getopt_tables(table, longs, shorts) != 0) {
		nf_tool_error("more than %d options", NF_OPTS_MAX);
		return -1;
	}
	optind = 0;
	while ((c = getopt_long(argc, argv, shorts, longs, NULL)) != -1) {
		const struct nf_opt *o = table;

		if (c == 'h') {
			usage(stdout);
			return 1;
		}
		if (c >= 256)
			o += c - 256;
		else
			while (o->name != NULL && o->letter != c)
				o++;
		if (o->name == NULL) { /* '?': getopt has said what is wrong */
			usage(stderr);
			return -1;
		}
		if (nf_opt_set(table, opts, o->name, optarg) != 0)
			return -1;
	}
	return 0;
}

int nf_read_file(const char *path, size_t max, uint8_t **data, size_t *len)
{
	struct stat st;
	uint8_t *buf = NULL;
	size_t got = 0;
	int fd, rc = -1;

	*data = NULL;
	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		nf_tool_error("%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		nf_tool_error("%s: not a regular file", path);
		goto done;
	}
	if ((unsigned long long)st.st_size > max) {
		nf_tool_error("%s: %lld bytes, more than the %zu allowed", path,
		              (long long)st.st_size, max);
		goto done;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (buf == NULL) {
		nf_tool_error("%s: out of memory", path);
		goto done;
	}
	while (got < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + got, (size_t)st.st_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			nf_tool_error("%s: read: %s", path,
			              n < 0 ? strerror(errno) : "file shrank");
			goto done;
		}
		got += (size_t)n;
	}
	*data = buf;
	*len = got;
	buf = NULL;
	rc = 0;
done:
	free(buf);
	close(fd);
	return rc;
}

int nf_write_file(const char *path, const uint8_t *data, size_t len)
{
	char tmp[PATH_LEN_MAX];
	int fd = -1, rc = -1;
	int n = snprintf(tmp, sizeof tmp, "%s.tmp", path);

	if (n < 0 || (size_t)n >= sizeof tmp) {
		nf_tool_error("%s: path too long", path);
		return -1;
	}
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0) {
		nf_tool_error("%s: %s", tmp, strerror(errno));
		return -1;
	}
	while (len > 0) {
		ssize_t w = write(fd, data, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			nf_tool_error("%s: write: %s", tmp, strerror(errno));
			goto done;
		}
		data += w;
		len -= (size_t)w;
	}
	if (fsync(fd) != 0 || rename(tmp, path) != 0) {
		nf_tool_error("%s: %s", path, strerror(errno));
		goto done;
	}
	rc = 0;
done:
	close(fd);
	if (rc != 0)
		unlink(tmp);
	return rc;
}
