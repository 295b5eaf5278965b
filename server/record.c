/*
 * record.c - counts every answered check and tells the fleet store about it.
 *
 * Only the counters for now: posting to the store is wired next
 * (docs/STORE.md section 11).
 */
#include "http.h"

void nf_record_check(struct nf_server *srv, struct MHD_Connection *conn,
                     const struct nf_check_record *rec)
{
	(void)conn;
	if ((unsigned)rec->client < NF_CLIENT_COUNT && (unsigned)rec->answer < NF_ANSWER_KINDS)
		nf_count(&srv->counters.checks[rec->client][rec->answer], 1);
}
