/*
 * NoFUSSClient.h - the NoFUSS client for the ESP8266 Arduino core, on the
 * nofuss device core: a drop-in for the original library's class.
 *
 * A sketch written for the original client compiles against it unchanged:
 * the same header, the same global object `NoFUSSClient`, the same methods
 * (setServer, setDevice, setVersion, setBuild, onMessage, handle,
 * getNewVersion, getNewFirmware, getNewFileSystem, getErrorNumber,
 * getErrorString) and the same message names and values (docs/PEERS.md
 * section 6). The setters take a C string or a String and copy it; a value
 * too long for the core's limits (server URL 159 characters, device,
 * version and build 31) is refused, and the check then ends with
 * NOFUSS_NO_RESPONSE_ERROR.
 *
 * What differs: getErrorNumber() is the core's error number (enum nf_error,
 * include/nofuss/client.h), not an HTTP or updater code, and
 * getErrorString() its text. The header no longer includes
 * ESP8266httpUpdate.h. Beyond the original: setMAC, setPathForm, setTimeout,
 * and setInterval + loop(), a check every so often with a random jitter.
 * A cut download is resumed where it stopped (docs/ESP8266.md).
 *
 * Everything lives in the global object: the core's state (about 1 KB) and
 * the port's (about 550 bytes); a check allocates only what HTTPClient,
 * WiFiClient and the Updater do.
 */
#pragma once

#include <Arduino.h>
#include <ESP8266HTTPClient.h>
#include <ESP8266WiFi.h>
#include <functional>

#include "nofuss/client.h"
#include "nofuss_esp8266.h"

/* The messages, named and numbered as the original's (do not change). */
typedef enum {
	NOFUSS_START = NF_MSG_START,
	NOFUSS_UPTODATE = NF_MSG_UPTODATE,
	NOFUSS_UPDATING = NF_MSG_UPDATING,
	NOFUSS_FILESYSTEM_UPDATED = NF_MSG_FILESYSTEM_UPDATED,
	NOFUSS_FIRMWARE_UPDATED = NF_MSG_FIRMWARE_UPDATED,
	NOFUSS_RESET = NF_MSG_RESET,
	NOFUSS_END = NF_MSG_END,
	NOFUSS_NO_RESPONSE_ERROR = NF_MSG_NO_RESPONSE_ERROR,
	NOFUSS_PARSE_ERROR = NF_MSG_PARSE_ERROR,
	NOFUSS_FILESYSTEM_UPDATE_ERROR = NF_MSG_FILESYSTEM_UPDATE_ERROR,
	NOFUSS_FIRMWARE_UPDATE_ERROR = NF_MSG_FIRMWARE_UPDATE_ERROR
} nofuss_t;

class NoFUSSClientClass
{
      public:
	typedef std::function<void(nofuss_t)> TMessageFunction;

	NoFUSSClientClass();

	/* The server's URL ("http://host[:port]/base"), the device's name, the
	 * running firmware's version and build. Copied. */
	void setServer(const char *server);
	void setDevice(const char *device);
	void setVersion(const char *version);
	void setBuild(const char *build);
	void setServer(const String &server)
	{
		setServer(server.c_str());
	}
	void setDevice(const String &device)
	{
		setDevice(device.c_str());
	}
	void setVersion(const String &version)
	{
		setVersion(version.c_str());
	}
	void setBuild(const String &build)
	{
		setBuild(build.c_str());
	}

	/* Extras. The MAC sent in X-ESP8266-MAC (default: the station's, read
	 * when handle() first runs); the v1.0 path form (GET server/DEVICE/VERSION);
	 * the network timeout in milliseconds. */
	void setMAC(const char *mac);
	void setPathForm(bool on);
	void setTimeout(uint16_t ms);
	/* loop() checks at its first call, then every `ms` plus a random 0 to
	 * `jitter_ms`, so that a fleet does not ask all at once. */
	void setInterval(uint32_t ms, uint32_t jitter_ms = 0);
	/* Calls handle() when a check is due; returns whether it did. */
	bool loop();

	/* What the last answer offered ("" when nothing). */
	String getNewVersion();
	String getNewFirmware();
	String getNewFileSystem();

	/* Why the last check failed: NF_OK (0) when it did not. */
	int getErrorNumber();
	String getErrorString();

	void onMessage(TMessageFunction fn);
	/* One check, and the update when there is one: START ... END, or RESET
	 * and a restart when something was installed. */
	void handle();

      private:
	struct nf_client _client;
	struct nf_esp8266 _port;
	TMessageFunction _callback;
	bool _mac_set = false;
	uint32_t _interval = 0, _jitter = 0, _last = 0, _wait = 0;
	bool _checked = false;

	static void _message(void *ctx, const struct nf_client *c, enum nf_message msg);
};

extern NoFUSSClientClass NoFUSSClient;
