/* The bootstrap-admin file's text: see bootstrap_file.h. */
#include "bootstrap_file.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "auth_token.h"
#include "pwhash.h"

static void trim(char *s)
{
    size_t len = strlen(s);
    while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t' ||
                       s[len - 1] == '\r')) {
        s[--len] = '\0';
    }
    size_t start = strspn(s, " \t");
    memmove(s, s + start, len - start + 1);
}

/* Whether s has a control character (< 0x20 or 0x7f): apply's text rule
 * refuses them.  (password.c's check is not linked here: kyufuctl links
 * this file without libpwquality.) */
static bool has_control(const char *s)
{
    for (; *s != '\0'; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch < 0x20 || ch == 0x7f) {
            return true;
        }
    }
    return false;
}

/* Parse `text` into a; NULL, or why it is refused (no secret in it). */
const char *kyufu_node__bootstrap_parse(char *text,
                                        struct kyufu_node_bootstrap *a)
{
    enum { STAFF, NAME, ITER, SALT, HASH, N_KEYS };
    static const char *const names[N_KEYS] = {"staff_id", "display_name",
                                              "iterations", "salt", "hash"};
    bool seen[N_KEYS] = {false};
    memset(a, 0, sizeof *a);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save)) {
        trim(line);
        if (line[0] == '\0' || line[0] == '#') {
            continue;
        }
        char *eq = strchr(line, '=');
        if (eq == NULL) {
            return "a line is not key = value";
        }
        *eq = '\0';
        char *key = line, *value = eq + 1;
        trim(key);
        trim(value);
        int k = -1;
        for (int i = 0; i < N_KEYS; i++) {
            if (strcmp(key, names[i]) == 0) {
                k = i;
            }
        }
        if (k < 0) {
            return "unknown key (want staff_id, display_name, iterations, "
                   "salt, hash)";
        }
        if (seen[k]) {
            return "a key is given twice";
        }
        seen[k] = true;
        switch (k) {
        case STAFF: {
            size_t len = strlen(value);
            if (len == 0 || len > KYUFU_STAFF_ID_BYTES_MAX ||
                strspn(value, "abcdefghijklmnopqrstuvwxyz0123456789._-") !=
                    len) {
                return "staff_id must be 1..64 bytes of [a-z0-9._-]";
            }
            snprintf(a->staff_id, sizeof a->staff_id,
                     "%s", value);
            break;
        }
        case NAME:
            /* Apply refuses control characters (and the leader would
             * propose the refused account again at every tick). */
            if (value[0] == '\0' ||
                strlen(value) >= sizeof a->display_name ||
                has_control(value)) {
                return "display_name must be 1..127 bytes of text without "
                       "control characters";
            }
            snprintf(a->display_name,
                     sizeof a->display_name, "%s", value);
            break;
        case ITER: {
            char *end = NULL;
            errno = 0;
            unsigned long v = strtoul(value, &end, 10);
            if (errno != 0 || end == value || *end != '\0' ||
                value[0] == '-' || v > KYUFU_PWHASH_ITERATIONS_MAX) {
                return "iterations out of range (100000..10000000)";
            }
            /* Below the production floor only on an insecure test node
             * (api/pwhash.h): a production node refuses a test file. */
            if (v < kyufu_pwhash_iterations_min()) {
                return "iterations below 100000: a weak (test) hash, "
                       "refused";
            }
            a->iterations = (uint32_t)v;
            break;
        }
        case SALT:
            if (kyufu_node__hex_decode(value, a->salt,
                                       sizeof a->salt) != 0) {
                return "salt must be 32 lowercase hex digits";
            }
            break;
        case HASH:
            if (kyufu_node__hex_decode(value, a->hash,
                                       sizeof a->hash) != 0) {
                return "hash must be 64 lowercase hex digits";
            }
            break;
        }
    }
    for (int i = 0; i < N_KEYS; i++) {
        if (!seen[i]) {
            return "a key is missing (staff_id, display_name, iterations, "
                   "salt, hash are required)";
        }
    }
    return NULL;
}

