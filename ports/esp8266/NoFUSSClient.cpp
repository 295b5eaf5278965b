/*
 * NoFUSSClient.cpp - the original NoFUSS client's API (NoFUSSClient.h) on the
 * device core: each setter copies into the core's struct, handle() is one
 * nf_client_handle() through the ESP8266 port, and the core's messages go
 * to the sketch's callback as nofuss_t, which has the same values.
 */
#include "NoFUSSClient.h"

#include <Updater.h>

NoFUSSClientClass::NoFUSSClientClass()
{
	nf_esp8266_init(&_port);
	nf_client_init(&_client, &_port);
	nf_client_on_message(&_client, _message, this);
}

void NoFUSSClientClass::_message(void *ctx, const struct nf_client *c, enum nf_message msg)
{
	NoFUSSClientClass *self = static_cast<NoFUSSClientClass *>(ctx);

	(void)c;
	if (self->_callback)
		self->_callback(static_cast<nofuss_t>(msg));
}

/* A refused value (too long) leaves the field empty rather than stale: the
 * check then fails plainly instead of asking as someone else. */
static void set(int (*setter)(struct nf_client *, const char *), struct nf_client *c,
                const char *value)
{
	if (setter(c, value) != 0)
		setter(c, "");
}

void NoFUSSClientClass::setServer(const char *server)
{
	set(nf_client_set_server, &_client, server);
}

void NoFUSSClientClass::setDevice(const char *device)
{
	set(nf_client_set_device, &_client, device);
}

void NoFUSSClientClass::setVersion(const char *version)
{
	set(nf_client_set_version, &_client, version);
}

void NoFUSSClientClass::setBuild(const char *build)
{
	set(nf_client_set_build, &_client, build);
}

void NoFUSSClientClass::setMAC(const char *mac)
{
	set(nf_client_set_mac, &_client, mac);
	_mac_set = true;
}

void NoFUSSClientClass::setPathForm(bool on)
{
	nf_client_set_path_form(&_client, on);
}

void NoFUSSClientClass::setTimeout(uint16_t ms)
{
	_port.timeout_ms = ms;
}

void NoFUSSClientClass::setInterval(uint32_t ms, uint32_t jitter_ms)
{
	_interval = ms;
	_jitter = jitter_ms;
}

bool NoFUSSClientClass::loop()
{
	uint32_t now = millis();

	if (_checked && now - _last < _wait)
		return false;
	_checked = true;
	_last = now;
	_wait = _interval + (_jitter > 0 ? (uint32_t)random((long)_jitter + 1) : 0);
	handle();
	return true;
}

String NoFUSSClientClass::getNewVersion()
{
	return String(nf_client_offered_version(&_client));
}

String NoFUSSClientClass::getNewFirmware()
{
	return String(_client.firmware != NULL ? _client.firmware : "");
}

String NoFUSSClientClass::getNewFileSystem()
{
	return String(_client.spiffs != NULL ? _client.spiffs : "");
}

int NoFUSSClientClass::getErrorNumber()
{
	return (int)nf_client_last_error(&_client);
}

String NoFUSSClientClass::getErrorString()
{
	enum nf_error err = nf_client_last_error(&_client);
	String text(nf_strerror(err));

	/* The Updater knows why the flash refused (space, signature...). */
	if ((err == NF_ERR_TOO_BIG || err == NF_ERR_FLASH) && Update.getError() != 0) {
		text += ": ";
		text += Update.getErrorString();
	}
	return text;
}

void NoFUSSClientClass::onMessage(TMessageFunction fn)
{
	_callback = fn;
}

void NoFUSSClientClass::handle()
{
	if (!_mac_set) { /* the station's MAC, as WiFi.macAddress() writes it */
		uint8_t m[6];
		char mac[18];
		nf_esp8266_format_mac(mac, WiFi.macAddress(m));
		nf_client_set_mac(&_client, mac);
	}
	nf_client_handle(&_client);
}

NoFUSSClientClass NoFUSSClient;
