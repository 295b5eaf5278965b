/*
 * offer.c - a device's offer (struct nf_offer) as database columns: one
 * column list (NF_OFFER_COLUMNS in store.h), and here the one place that
 * maps it to values and back, so that the writer's RETURNING, SELECT and
 * UPDATE and the queries' reads cannot disagree on the order.
 */
#include <string.h>

#include "store.h"

/* The columns of one image, from column i of the row. */
static void read_image(const struct nf_db_row *row, int i, struct nf_offer_image *img)
{
	nf_db_copy(row, i, img->path, sizeof img->path);
	nf_db_copy(row, i + 1, img->md5, sizeof img->md5);
	img->size = (uint64_t)nf_db_int(row, i + 2);
	img->bytes = (uint64_t)nf_db_int(row, i + 3);
	img->done = nf_db_int(row, i + 4) != 0;
}

static void image_values(const struct nf_offer_image *img, struct nf_db_val *v)
{
	v[0] = NF_DB_TEXT_V(img->path);
	v[1] = NF_DB_TEXT_V(img->md5);
	v[2] = NF_DB_INT_V(img->size);
	v[3] = NF_DB_INT_V(img->bytes);
	v[4] = NF_DB_INT_V(img->done);
}

void nf_offer_read(const struct nf_db_row *row, int i, struct nf_offer *o)
{
	o->state = (int)nf_db_int(row, i);
	o->state_ms = nf_db_int(row, i + 1);
	nf_db_copy(row, i + 2, o->target, sizeof o->target);
	o->rule = (int32_t)nf_db_int(row, i + 3);
	o->offered_ms = nf_db_int(row, i + 4);
	nf_db_copy(row, i + 5, o->from, sizeof o->from);
	read_image(row, i + 6, &o->img[0]);
	read_image(row, i + 11, &o->img[1]);
	read_image(row, i + 16, &o->early);
	o->early_ms = nf_db_int(row, i + 21);
	o->hist_seq = nf_db_int(row, i + 22);
	o->reverts = (int32_t)nf_db_int(row, i + 23);
}

void nf_offer_values(const struct nf_offer *o, struct nf_db_val *v)
{
	v[0] = NF_DB_INT_V(o->state);
	v[1] = NF_DB_INT_V(o->state_ms);
	v[2] = NF_DB_TEXT_V(o->target);
	v[3] = NF_DB_INT_V(o->rule);
	v[4] = NF_DB_INT_V(o->offered_ms);
	v[5] = NF_DB_TEXT_V(o->from);
	image_values(&o->img[0], v + 6);
	image_values(&o->img[1], v + 11);
	image_values(&o->early, v + 16);
	v[21] = NF_DB_INT_V(o->early_ms);
	v[22] = NF_DB_INT_V(o->hist_seq);
	v[23] = NF_DB_INT_V(o->reverts);
}

bool nf_offer_changed(const struct nf_offer *a, const struct nf_offer *b)
{
	struct nf_db_val va[NF_OFFER_NCOLS], vb[NF_OFFER_NCOLS];

	nf_offer_values(a, va);
	nf_offer_values(b, vb);
	for (int i = 0; i < NF_OFFER_NCOLS; i++) {
		if (va[i].type == NF_DB_INT ? va[i].i != vb[i].i : strcmp(va[i].s, vb[i].s) != 0)
			return true;
	}
	return false;
}
