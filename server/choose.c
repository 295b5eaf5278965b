/*
 * choose.c - which rule answers a check, in the order docs/ROLLOUTS.md
 * section 3 gives: a device's pin, then versions.json, then a rollout. The
 * check handlers (check.c, stock.c, esphome.c) call the two steps around
 * their own versions.json match, which differs by client (Tasmota's
 * loaders, ESPHome's empty version). Loop thread; no allocation, no lock:
 * the plan (plan.c) is read as published.
 */
#include <stdio.h>
#include <string.h>

#include "common.h"
#include "http.h"

static void ask_of(struct nf_server *srv, const struct nf_query *q, const char *ip,
                   struct nf_choice *c, struct nf_plan_ask *ask)
{
	(void)srv;
	if (!c->keyed) {
		nf_plan_key(q->mac, q->device, q->device_len, ip, c->key);
		c->keyed = true;
	}
	ask->key = c->key;
	ask->device = q->device;
	ask->device_len = q->device_len;
	ask->version = q->version != NULL ? q->version : "";
}

void nf_choice_init(struct nf_server *srv, struct nf_choice *c)
{
	memset(c, 0, sizeof *c);
	c->src = srv->snap;
	c->target = -1;
}

bool nf_choose_pin(struct nf_server *srv, const struct nf_query *q, const char *ip,
                   struct nf_choice *c)
{
	struct nf_plan_ask ask;
	struct nf_plan_pick pick;

	if (nf_plan_count(srv->plan) == 0 || q->device_len > NF_MAX_FIELD)
		return false;
	ask_of(srv, q, ip, c, &ask);
	if (nf_plan_pin(srv->plan, &ask, &pick) < 0 && !pick.current)
		return false;
	c->pinned = true;
	c->src = pick.current ? srv->snap : srv->plan;
	c->target = pick.current ? -1 : pick.rule;
	c->code = pick.code;
	return true;
}

void nf_choose_rollout(struct nf_server *srv, const struct nf_query *q, const char *ip,
                       struct nf_choice *c)
{
	struct nf_plan_ask ask;
	struct nf_plan_pick pick;

	if (c->target >= 0 || c->pinned || nf_plan_count(srv->plan) == 0 ||
	    q->device_len > NF_MAX_FIELD)
		return;
	ask_of(srv, q, ip, c, &ask);
	if (nf_plan_rollout(srv->plan, &ask, nf_clock_wall_ms(), &pick) < 0 &&
	    !pick.deferred)
		return;
	c->src = srv->plan;
	c->target = pick.rule;
	c->code = pick.code;
	if (pick.deferred) {
		const struct nf_plan_entry *e = nf_plan_entry(srv->plan, (size_t)pick.rule);
		c->deferred = true;
		snprintf(c->why_buf, sizeof c->why_buf, "rollout %lld's offer rate (%u a minute) spent",
		         (long long)pick.rollout, e != NULL ? e->rollout.rate : 0);
		c->why = c->why_buf;
	}
}

bool nf_choice_defer(const struct nf_server *srv, const struct nf_choice *c)
{
	return c->deferred || nf_downloads_full(srv);
}
