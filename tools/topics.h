/*
 * topics.h - the MQTT topics an espurna-style device announces itself on,
 * and what it publishes there: the contract between a device (`nofuss
 * device --mqtt`, sim/announce.c, and real espurna firmware) and `nofuss
 * push` (push/mqtt.c, push/push.c), which finds a device by its retained
 * IP address and proves an update by a fresh version and a sign of life.
 *
 * WIRE CONTRACT, DO NOT CHANGE: deployed devices publish exactly these
 * topics and values, and dashboards and scripts read them.
 *
 * Every topic is BASE/LEAF, BASE being the device's topic prefix (e.g.
 * /home/cellar/washer; in platformio.ini its `topic` is BASE/ip). On every
 * connect the device publishes, at QoS 0:
 *
 *   BASE/ip         its IPv4 address            retained
 *   BASE/version    its firmware's version      retained
 *   BASE/fsversion  its filesystem's version    retained
 *   BASE/heartbeat  "1", again every interval   not retained
 *   BASE/status     "1"                         retained
 *
 * and leaves BASE/status = "0", retained, as its last will, which the
 * broker publishes when the device drops off.
 */
#ifndef NOFUSS_TOOLS_TOPICS_H
#define NOFUSS_TOOLS_TOPICS_H

/* The leaves, after "BASE/". */
#define NF_TOPIC_IP        "ip"
#define NF_TOPIC_VERSION   "version"
#define NF_TOPIC_FSVERSION "fsversion"
#define NF_TOPIC_HEARTBEAT "heartbeat"
#define NF_TOPIC_STATUS    "status"

/* The values. */
#define NF_TOPIC_ALIVE   "1" /* BASE/heartbeat */
#define NF_TOPIC_ONLINE  "1" /* BASE/status while connected */
#define NF_TOPIC_OFFLINE "0" /* BASE/status: the last will */

#define NF_TOPIC_QOS 0

/* The longest leaf with its "/" and the NUL. */
#define NF_TOPIC_LEAF_MAX sizeof("/" NF_TOPIC_FSVERSION)

#endif /* NOFUSS_TOOLS_TOPICS_H */
