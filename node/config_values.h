/* Rules of single kyufud.conf values (config_values.c): pure functions of
 * the value, apart from config.c's table of keys and its whole-file
 * checks. */
#ifndef KYUFU_NODE_CONFIG_VALUES_H
#define KYUFU_NODE_CONFIG_VALUES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "host:port": an IPv4 literal or a DNS name, port 1..65535.  false with
 * why set when not. */
bool kyufu_config__check_address(const char *s, char *why, size_t why_len);

/* 1..KYUFU_NODE_POWER_NAME_BYTES_MAX bytes of [A-Za-z0-9_.-] and `also`. */
bool kyufu_config__check_name(const char *s, const char *also, char *why,
                              size_t why_len);

/* NAME@HOST[:PORT], as NUT names a UPS. */
bool kyufu_config__check_ups(const char *s, char *why, size_t why_len);

/* [backup] interval: "0", or digits and one unit of s, m, h, d, within
 * KYUFU_NODE_BACKUP_INTERVAL_S_MIN..MAX.  0 with *secs, or -1. */
int kyufu_config__parse_interval(const char *value, uint64_t *secs);

/* Whether a checked host:port names a loopback IPv4 address literally. */
bool kyufu_config__is_loopback(const char *address);

/* Cut a " #" or " ;" comment off a line, in place. */
void kyufu_config__cut_inline_comment(char *str);

#endif /* KYUFU_NODE_CONFIG_VALUES_H */
