/* Rules of single kyufud.conf values (config_values.c): pure functions of
 * the value, apart from config.c's table of keys and its whole-file
 * checks; and the [backup] section's (config_backup.c). */
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


/* Whether a checked host:port names a loopback IPv4 address literally. */
bool kyufu_config__is_loopback(const char *address);

/* Cut a " #" or " ;" comment off a line, in place. */
void kyufu_config__cut_inline_comment(char *str);

/* ---------------------------------------------------- config_backup.c */

struct kyufu_config;

/* One [backup] value (key: its name; every key of the section but
 * kek_file) into c.  0, or -1 with why (c's field left unset). */
int kyufu_config__backup_value(struct kyufu_config *c,
                               const char *key,
                               const char *value,
                               char *why,
                               size_t why_len);

/* Once the whole file is read, without require_mount: directory (if set)
 * is an existing folder.  0, or -1 with why (directory cleared). */
int kyufu_config__backup_directory(struct kyufu_config *c,
                                   char *why,
                                   size_t why_len);

/* Once the whole file is read: require_mount (if set) is directory or one
 * of its parents, both written as plain absolute paths and compared as
 * written (no file system is touched: the NAS may be down or hung at
 * boot).  0, or -1 with why (require_mount cleared). */
int kyufu_config__backup_mount(struct kyufu_config *c,
                               char *why,
                               size_t why_len);

#endif /* KYUFU_NODE_CONFIG_VALUES_H */
