/* The registry of issued client certificates: see ctl_registry.h. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "ctl.h"
#include "ctl_pki.h"
#include "ctl_registry.h"
#include "tls.h" /* api__tls_cert_serial: the serial as a node logs it */

/* Every field of an entry, in registry and CSV order. */
static const char *const fields[] = {
    "name",      "kind",       "mac",        "serial", "sha256", "status", "issued_at",
    "issued_by", "revoked_at", "revoked_by", "reason", NULL,
};

bool ctl__registry_name_ok(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > KYUFU_CTL_TERMINAL_NAME_BYTES_MAX) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) {
            return false;
        }
    }
    return true;
}

bool ctl__registry_mac(const char *in, char out[18])
{
    static const char hex[] = "0123456789ABCDEF";
    if (strlen(in) != 17) {
        return false;
    }
    char sep = in[2];
    if (sep != ':' && sep != '-') {
        return false;
    }
    for (int i = 0; i < 17; i++) {
        char c = in[i];
        if (i % 3 == 2) {
            if (c != sep) {
                return false;
            }
            out[i] = ':';
            continue;
        }
        const char *h = strchr(hex, c >= 'a' && c <= 'f' ? c - 'a' + 'A' : c);
        if (c == '\0' || h == NULL) {
            return false;
        }
        out[i] = *h;
    }
    out[17] = '\0';
    return true;
}

static void path_of(char *out, size_t len, const char *ca_dir, const char *file)
{
    snprintf(out, len, "%s/%s", ca_dir, file);
}

/* A string field of entry e ("" when absent: never, after load). */
static const char *field(json_t *e, const char *name)
{
    const char *s = json_string_value(json_object_get(e, name));
    return s != NULL ? s : "";
}

int ctl__registry_load(const char *ca_dir, json_t **reg, char *errmsg, size_t errmsg_len)
{
    char path[PATH_MAX + 32];
    path_of(path, sizeof path, ca_dir, CTL__CA_REGISTRY);
    if (access(path, F_OK) != 0 && errno == ENOENT) {
        *reg = json_array();
        return *reg != NULL ? 0 : ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    json_error_t je;
    json_t *doc = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (doc == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE, "%s:%d: %s", path, je.line,
                         je.text);
    }
    if (!json_is_array(doc)) {
        json_decref(doc);
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                         "%s: not a JSON array of entries", path);
    }
    size_t i;
    json_t *e;
    json_array_foreach(doc, i, e)
    {
        const char *bad = NULL;
        for (const char *const *f = fields; *f != NULL && bad == NULL; f++) {
            if (!json_is_string(json_object_get(e, *f))) {
                bad = *f;
            }
        }
        const char *kind = field(e, "kind"), *status = field(e, "status");
        if (bad == NULL && strcmp(kind, "terminal") != 0 && strcmp(kind, "operator") != 0) {
            bad = "kind";
        }
        if (bad == NULL && strcmp(status, "active") != 0 && strcmp(status, "revoked") != 0) {
            bad = "status";
        }
        if (bad == NULL && !ctl__registry_name_ok(field(e, "name"))) {
            bad = "name";
        }
        if (bad != NULL) {
            json_decref(doc);
            return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                             "%s: entry %zu: field '%s' is missing or malformed", path, i + 1,
                             bad);
        }
    }
    *reg = doc;
    return 0;
}

int ctl__registry_save(const char *ca_dir, json_t *reg, char *errmsg, size_t errmsg_len)
{
    char path[PATH_MAX + 32];
    path_of(path, sizeof path, ca_dir, CTL__CA_REGISTRY);
    char *text = json_dumps(reg, JSON_INDENT(1) | JSON_PRESERVE_ORDER);
    if (text == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    size_t n = strlen(text);
    int rv = ctl__write_file(path, 0600, text, n, errmsg, errmsg_len);
    free(text);
    return rv;
}

int ctl__registry_lock(const char *ca_dir, char *errmsg, size_t errmsg_len)
{
    char path[PATH_MAX + 32];
    path_of(path, sizeof path, ca_dir, "registry.lock");
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        int e = errno;
        if (fd >= 0) {
            close(fd);
        }
        ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE, "%s: %s", path, strerror(e));
        return -1;
    }
    return fd;
}

/* Now as RFC 3339 UTC. */
static void now_text(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *active_entry(json_t *reg, const char *kind, const char *key, const char *value)
{
    size_t i;
    json_t *e;
    json_array_foreach(reg, i, e)
    {
        if (strcmp(field(e, "kind"), kind) == 0 && strcmp(field(e, "status"), "active") == 0 &&
            strcmp(field(e, key), value) == 0) {
            return e;
        }
    }
    return NULL;
}

int ctl__registry_can_issue(json_t *reg, const struct ctl__issue *is, char *errmsg,
                            size_t errmsg_len)
{
    const int u = KYUFU_CTL_EXIT_USAGE;
    if (!ctl__registry_name_ok(is->name)) {
        return ctl__errf(errmsg, errmsg_len, u,
                         "'%s': a %s name is 1..%u letters, digits, '.', '_', '-' (first a "
                         "letter or digit)",
                         is->name, is->kind, KYUFU_CTL_TERMINAL_NAME_BYTES_MAX);
    }
    if (active_entry(reg, is->kind, "name", is->name) != NULL) {
        return ctl__errf(errmsg, errmsg_len, u,
                         "%s %s already has an active certificate (revoke it first)", is->kind,
                         is->name);
    }
    if (is->mac != NULL) {
        json_t *other = active_entry(reg, is->kind, "mac", is->mac);
        if (other != NULL) {
            return ctl__errf(errmsg, errmsg_len, u, "MAC %s is terminal %s's", is->mac,
                             field(other, "name"));
        }
    }
    return 0;
}

int ctl__registry_issue(json_t *reg, const struct ctl__issue *is, X509 *ca, EVP_PKEY *ca_key,
                        FILE *log, char *errmsg, size_t errmsg_len)
{
    int rv = ctl__registry_can_issue(reg, is, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char san[KYUFU_CTL_TERMINAL_NAME_BYTES_MAX + 64];
    snprintf(san, sizeof san, "URI:urn:kyufu:%s:%s", is->kind, is->name);
    struct ctl__cert_spec spec = { .cn = is->name, .ou = is->kind,
                                   .days = KYUFU_CTL_LEAF_VALID_DAYS, .eku = "clientAuth",
                                   .san = san };
    EVP_PKEY *key;
    X509 *cert;
    rv = ctl__leaf_new(&spec, ca, ca_key, &key, &cert, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    char path[PATH_MAX + 128];
    snprintf(path, sizeof path, "%s/%s.key", is->out_dir, is->name);
    rv = ctl__write_pem(path, 0600, key, NULL, 0, NULL, errmsg, errmsg_len);
    if (rv == 0) {
        if (log != NULL) {
            fprintf(log, "wrote %s\n", path);
        }
        snprintf(path, sizeof path, "%s/%s.pem", is->out_dir, is->name);
        rv = ctl__write_pem(path, 0644, NULL, NULL, 0, cert, errmsg, errmsg_len);
    }
    if (rv == 0 && log != NULL) {
        fprintf(log, "wrote %s\n", path);
    }
    char serial[64], sha[65], now[32];
    api__tls_cert_serial(cert, serial, sizeof serial);
    ctl__cert_sha256(cert, sha);
    now_text(now);
    X509_free(cert);
    EVP_PKEY_free(key);
    if (rv != 0) {
        return rv;
    }
    json_t *e = json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:s}", "name", is->name,
                          "kind", is->kind, "mac", is->mac != NULL ? is->mac : "", "serial",
                          serial, "sha256", sha, "status", "active", "issued_at", now,
                          "issued_by", is->by, "revoked_at", "", "revoked_by", "", "reason", "");
    if (e == NULL || json_array_append_new(reg, e) != 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    return 0;
}

int ctl__registry_can_revoke(json_t *reg, const char *kind, const char *name, char *errmsg,
                             size_t errmsg_len)
{
    if (active_entry(reg, kind, "name", name) == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_USAGE,
                         "no active certificate of %s %s in the registry", kind, name);
    }
    return 0;
}

int ctl__registry_revoke(json_t *reg, const char *kind, const char *name, const char *by,
                         const char *reason, char *errmsg, size_t errmsg_len)
{
    int rv = ctl__registry_can_revoke(reg, kind, name, errmsg, errmsg_len);
    if (rv != 0) {
        return rv;
    }
    json_t *e = active_entry(reg, kind, "name", name);
    char now[32];
    now_text(now);
    if (json_object_set_new(e, "status", json_string("revoked")) != 0 ||
        json_object_set_new(e, "revoked_at", json_string(now)) != 0 ||
        json_object_set_new(e, "revoked_by", json_string(by)) != 0 ||
        json_object_set_new(e, "reason", json_string(reason)) != 0) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    return 0;
}

/* RFC 3339 UTC ("...Z") -> seconds; now for anything else. */
static int64_t time_of(const char *s)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return end != NULL && *end == '\0' ? (int64_t)timegm(&tm) : (int64_t)time(NULL);
}

int ctl__registry_crl(const char *ca_dir, json_t *reg, X509 *ca, EVP_PKEY *ca_key,
                      char *errmsg, size_t errmsg_len)
{
    size_t n = json_array_size(reg), k = 0;
    struct ctl__revoked *r = calloc(n > 0 ? n : 1, sizeof *r);
    if (r == NULL) {
        return ctl__errf(errmsg, errmsg_len, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    size_t i;
    json_t *e;
    json_array_foreach(reg, i, e)
    {
        if (strcmp(field(e, "status"), "revoked") == 0) {
            r[k].serial_hex = field(e, "serial");
            r[k].revoked_s = time_of(field(e, "revoked_at"));
            k++;
        }
    }
    char path[PATH_MAX + 32];
    path_of(path, sizeof path, ca_dir, CTL__CA_CRL);
    /* CRL numbers only grow (RFC 5280 5.2.3): the time it is made. */
    int rv = ctl__crl_write(path, ca, ca_key, r, k, (uint64_t)time(NULL), errmsg, errmsg_len);
    free(r);
    return rv;
}

void ctl__csv_field(FILE *out, const char *s)
{
    if (strpbrk(s, ",\"\r\n") == NULL) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s != '\0'; s++) {
        if (*s == '"') {
            fputc('"', out);
        }
        fputc(*s, out);
    }
    fputc('"', out);
}

void ctl__registry_csv(FILE *out, json_t *reg, const char *kind)
{
    for (const char *const *f = fields; *f != NULL; f++) {
        fprintf(out, "%s%s", f == fields ? "" : ",", *f);
    }
    fputs("\r\n", out);
    size_t i;
    json_t *e;
    json_array_foreach(reg, i, e)
    {
        if (kind != NULL && strcmp(field(e, "kind"), kind) != 0) {
            continue;
        }
        for (const char *const *f = fields; *f != NULL; f++) {
            if (f != fields) {
                fputc(',', out);
            }
            ctl__csv_field(out, field(e, *f));
        }
        fputs("\r\n", out);
    }
}
