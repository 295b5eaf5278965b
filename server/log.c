/*
 * log.c - the daemon's own messages (start, reloads, warnings), to stderr.
 *
 * Check lines go to checklog.c instead; these are for the operator. Under
 * systemd, stderr is the journal, so no timestamps are added here.
 */
#include <stdarg.h>
#include <stdio.h>

#include "nofussd.h"

static enum nf_log_level max_level = NF_LOG_INFO;

void nf_log_set_level(enum nf_log_level level)
{
	max_level = level;
}

void nf_log(enum nf_log_level level, const char *fmt, ...)
{
	static const char *const prefix[] = {"error: ", "warning: ", "", "debug: "};
	va_list ap;
	char line[NF_ERR_LEN];

	if (level > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	/* One fprintf per message so concurrent writers never interleave mid-line. */
	fprintf(stderr, "nofussd: %s%s\n", prefix[level], line);
}
