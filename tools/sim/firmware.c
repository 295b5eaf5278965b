/*
 * firmware.c - what a simulated ESP8266 does at power-on, the same for
 * `nofuss device` (a flash directory) and `nofuss fleet` (a memory flash):
 * the bootloader picks a slot (the port's, whichever backend), then the
 * firmware in it starts: a firmware flagged "crashes at boot" dies before
 * it confirms itself (the next boot reverts), any other confirms its slot,
 * reads its version out of the image it runs and sets up its NoFUSS client
 * as a sketch does in setup(). The callers differ only in what they print
 * and count (see sim.h).
 */
#include <errno.h>

#include "nofuss/posix.h"
#include "sim.h"

int nf_sim_client_init(const struct nf_sim_firmware *fw)
{
	struct nf_client *c = fw->client;

	nf_client_init(c, fw->port);
	nf_client_on_message(c, fw->on_message, fw->ctx);
	nf_client_set_path_form(c, fw->path_form);
	if ((fw->server != NULL && nf_client_set_server(c, fw->server) != 0) ||
	    nf_client_set_mac(c, fw->port->sta_mac) != 0 ||
	    (fw->build != NULL && nf_client_set_build(c, fw->build) != 0))
		return -1;
	return 0;
}

enum nf_sim_start nf_sim_power_on(const struct nf_sim_firmware *fw, struct nf_posix_boot *b,
                                  char *err, size_t errcap)
{
	const char *name;

	if (nf_posix_boot(fw->port, b, err, errcap) != 0)
		return errno == ENOEXEC ? NF_SIM_BRICKED : NF_SIM_FLASH_FAILED;
	if (fw->booted != NULL)
		fw->booted(fw->ctx, b);
	if (b->firmware.flags & NF_POSIX_IMAGE_CRASH)
		return NF_SIM_CRASHED;
	if (nf_posix_confirm(fw->port, err, errcap) != 0)
		return NF_SIM_CONFIRM_FAILED;
	name = b->firmware.device[0] != '\0' ? b->firmware.device : fw->name;
	if (name == NULL)
		return NF_SIM_NO_NAME;
	if (nf_sim_client_init(fw) != 0 ||
	    nf_client_set_version(fw->client, b->firmware.version) != 0 ||
	    nf_client_set_device(fw->client, name) != 0)
		return NF_SIM_TOO_LONG;
	return NF_SIM_UP;
}
