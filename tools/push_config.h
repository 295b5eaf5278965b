/*
 * push_config.h - what `nofuss push` needs from a PlatformIO project file
 * (platformio.ini): one struct per [env:NAME] section with the device's MQTT
 * topic (`topic` or `custom_topic`), the ArduinoOTA password and port taken
 * from `upload_flags` (--auth=PASS, --port N), and where PlatformIO leaves
 * the built images (.pio/build/NAME/firmware.bin, littlefs.bin, spiffs.bin).
 *
 * The reader follows PlatformIO's own (Python configparser) rules where they
 * matter: full-line comments start with ';' or '#', inline comments start
 * with ';' or '#' preceded by whitespace (so "a#b" keeps its '#'), keys are
 * case-insensitive, indented lines continue the previous value, and the
 * plain [env] section gives every environment its defaults. It does no I/O
 * besides reading the file, and prints nothing: errors land in
 * nf_push_config.error as "FILE:LINE: message".
 */
#ifndef NOFUSS_TOOLS_PUSH_CONFIG_H
#define NOFUSS_TOOLS_PUSH_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#define NF_PUSH_MAX_FILE    (1024u * 1024u) /* largest platformio.ini read */
#define NF_PUSH_MAX_ENVS    256u            /* [env:...] sections in one file */
#define NF_PUSH_MAX_NAME    128u            /* environment name, NUL included */
#define NF_PUSH_MAX_TOPIC   256u            /* MQTT topic, NUL included */
#define NF_PUSH_MAX_AUTH    128u            /* OTA password, NUL included */
#define NF_PUSH_MAX_PATH    1024u           /* image path, NUL included */
#define NF_PUSH_MAX_PROBLEM 320u            /* one message, NUL included */

#define NF_PUSH_PORT_ESP8266 8266u /* ArduinoOTA's default port on an ESP8266 */
#define NF_PUSH_PORT_ESP32   3232u /* ... and on an ESP32 */

/* One [env:NAME] section, [env] defaults applied. */
struct nf_push_env {
	char name[NF_PUSH_MAX_NAME];
	char topic[NF_PUSH_MAX_TOPIC]; /* "" when the section has none */
	char auth[NF_PUSH_MAX_AUTH];   /* valid when has_auth */
	bool has_auth;
	unsigned port;                   /* --port, else the platform's default */
	bool port_given;                 /* port came from upload_flags */
	char firmware[NF_PUSH_MAX_PATH]; /* BUILD/NAME/firmware.bin */
	char littlefs[NF_PUSH_MAX_PATH]; /* BUILD/NAME/littlefs.bin */
	char spiffs[NF_PUSH_MAX_PATH];   /* BUILD/NAME/spiffs.bin */
	/* board_build.filesystem: "littlefs", "spiffs" or "" (not set) */
	char filesystem[16];
	/* Set when this section is unusable (bad upload_flags, topic given
	 * twice, ...): "FILE:LINE: message". Other sections stay usable. */
	char problem[NF_PUSH_MAX_PROBLEM];
	unsigned line; /* the line of its [env:NAME] header */
};

struct nf_push_config {
	size_t count;
	struct nf_push_env env[NF_PUSH_MAX_ENVS];
	char error[NF_PUSH_MAX_PROBLEM]; /* why parsing failed */
};

/* Parses len bytes of platformio.ini text. origin names the text in
 * messages (the file's path); project_dir is the folder the default build
 * paths are relative to ("" for the current one). Returns 0, or -1 with
 * cfg->error set (a syntax error, too many sections, an unreadable [env:]
 * header). cfg is large: allocate it, don't put it on the stack. */
int nf_push_config_parse_string(const char *text, size_t len, const char *origin,
                                const char *project_dir, struct nf_push_config *cfg);

/* Reads and parses the file path (at most NF_PUSH_MAX_FILE bytes); the
 * build paths are relative to the file's folder. Returns 0, or -1 with
 * cfg->error set. */
int nf_push_config_read(const char *path, struct nf_push_config *cfg);

/* The environment called name, or NULL. */
const struct nf_push_env *nf_push_config_find(const struct nf_push_config *cfg, const char *name);

#endif
