/* libkyufu: the client configuration file, error strings, small helpers.
 *
 * The file is INI, parsed by libinih: one [client] section, keys as in
 * docs/kyufuctl.md.  Strictness is the point (SPEC 5(5)①, "prevent
 * configuration mistakes"): an unknown section or key, a key given twice or
 * a value that does not parse is an error that names the key and the line,
 * never a silently ignored line.  Relative file paths are taken relative to
 * the config file's folder, so a generated cluster folder can be moved. */
#include <assert.h>
#include <errno.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu.h"
#include "transport.h"

const char *kyufu_client_strerror(int rv)
{
    switch (rv) {
#define KYUFU_CLIENT__CASE(name, value, text)                                \
    case value:                                                              \
        return text;
        KYUFU_CLIENT_ERRORS(KYUFU_CLIENT__CASE)
#undef KYUFU_CLIENT__CASE
    default:
        return "unknown error";
    }
}

int client__errf(char *errmsg, size_t errmsg_len, int rv, const char *fmt, ...)
{
    if (errmsg != NULL && errmsg_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(errmsg, errmsg_len, fmt, ap);
        va_end(ap);
    }
    return rv;
}

int client__endpoint_split(const char *endpoint,
                           char *host,
                           size_t host_len,
                           uint16_t *port)
{
    assert(endpoint != NULL && host != NULL && port != NULL);
    size_t n = strlen(endpoint);
    if (n == 0 || n > KYUFU_CLIENT_ENDPOINT_BYTES_MAX) {
        return KYUFU_CLIENT_EINVALID;
    }
    const char *colon;
    const char *h = endpoint;
    size_t hlen;
    if (endpoint[0] == '[') { /* [v6]:port */
        const char *close = strchr(endpoint, ']');
        if (close == NULL || close[1] != ':') {
            return KYUFU_CLIENT_EINVALID;
        }
        h = endpoint + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(endpoint, ':');
        if (colon == NULL || memchr(endpoint, ':', (size_t)(colon - endpoint))) {
            return KYUFU_CLIENT_EINVALID; /* none, or a bare v6 address */
        }
        hlen = (size_t)(colon - endpoint);
    }
    if (hlen == 0 || hlen >= host_len) {
        return KYUFU_CLIENT_EINVALID;
    }
    for (size_t i = 0; i < hlen; i++) {
        char ch = h[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == ':' ||
              ch == '_')) {
            return KYUFU_CLIENT_EINVALID;
        }
    }
    char *end;
    errno = 0;
    unsigned long p = strtoul(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end != '\0' || errno != 0 ||
        p == 0 || p > 65535) {
        return KYUFU_CLIENT_EINVALID;
    }
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* ------------------------------------------------------------ config */

void kyufu_client_config_init(struct kyufu_client_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->deadline_ms = KYUFU_CLIENT_DEADLINE_MS_DEFAULT;
    cfg->attempt_ms = KYUFU_CLIENT_ATTEMPT_MS_DEFAULT;
    cfg->backoff_ms_initial = KYUFU_CLIENT_BACKOFF_MS_INITIAL_DEFAULT;
    cfg->backoff_ms_max = KYUFU_CLIENT_BACKOFF_MS_MAX_DEFAULT;
    cfg->hedge_ms = KYUFU_CLIENT_HEDGE_MS_DEFAULT;
}

void kyufu_client_config_free(struct kyufu_client_config *cfg)
{
    for (unsigned i = 0; i < cfg->n_endpoints; i++) {
        free(cfg->endpoints[i]);
    }
    free(cfg->ca_file);
    free(cfg->cert_file);
    free(cfg->key_file);
    free(cfg->actor);
    free(cfg->terminal);
    free(cfg->client_id);
    free(cfg->session_file);
    free(cfg->time_zone);
    free(cfg->slo_file);
    client__secret_free(cfg->token);
    free(cfg->token_file);
    kyufu_client_config_init(cfg);
}

enum key_kind { K_ENDPOINTS, K_PATH, K_STRING, K_MS };

struct key_spec
{
    const char *name;
    enum key_kind kind;
    size_t offset;
    uint32_t min;
    uint32_t max; /* K_MS: value range; K_STRING: max bytes */
};

#define KEY(name, kind, field, min, max)                                     \
    { name, kind, offsetof(struct kyufu_client_config, field), min, max }
static const struct key_spec keys[] = {
    KEY("endpoints", K_ENDPOINTS, endpoints, 0, 0),
    KEY("ca", K_PATH, ca_file, 0, PATH_MAX),
    KEY("cert", K_PATH, cert_file, 0, PATH_MAX),
    KEY("key", K_PATH, key_file, 0, PATH_MAX),
    KEY("session_file", K_PATH, session_file, 0, PATH_MAX),
    KEY("slo_file", K_PATH, slo_file, 0, PATH_MAX),
    /* The session token file (kyufuctl login's); never the token itself. */
    KEY("token_file", K_PATH, token_file, 0, PATH_MAX),
    KEY("actor", K_STRING, actor, 0, KYUFU_CLIENT_ACTOR_BYTES_MAX),
    KEY("terminal", K_STRING, terminal, 0, KYUFU_CLIENT_TERMINAL_BYTES_MAX),
    KEY("client_id", K_STRING, client_id, 0, KYUFU_CLIENT_ID_BYTES_MAX),
    /* kyufuctl's display zone; kyufuctl checks the name (ctl_format.c). */
    KEY("time_zone", K_STRING, time_zone, 0, KYUFU_CLIENT_TIME_ZONE_BYTES_MAX),
    KEY("deadline_ms", K_MS, deadline_ms, 1, KYUFU_CLIENT_DEADLINE_MS_MAX),
    KEY("attempt_ms", K_MS, attempt_ms, 1, KYUFU_CLIENT_DEADLINE_MS_MAX),
    KEY("backoff_ms_initial", K_MS, backoff_ms_initial, 0, KYUFU_CLIENT_DEADLINE_MS_MAX),
    KEY("backoff_ms_max", K_MS, backoff_ms_max, 0, KYUFU_CLIENT_DEADLINE_MS_MAX),
    /* 0 (off) or KYUFU_CLIENT_HEDGE_MS_MIN.. (checked by validate). */
    KEY("hedge_ms", K_MS, hedge_ms, 0, KYUFU_CLIENT_DEADLINE_MS_MAX),
};
#undef KEY
#define N_KEYS (sizeof keys / sizeof keys[0])

struct parse_ctx
{
    struct kyufu_client_config *cfg;
    const char *base_dir; /* for relative paths; NULL: leave as is */
    bool seen[N_KEYS];
    bool seen_section;
    int rv;              /* first error */
    char detail[200];    /* first error, without the line */
};

static int fail(struct parse_ctx *ctx, int rv, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct parse_ctx *ctx, int rv, const char *fmt, ...)
{
    if (ctx->rv == 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctx->detail, sizeof ctx->detail, fmt, ap);
        va_end(ap);
        ctx->rv = rv;
    }
    return 0; /* tells inih: error on this line */
}

static int set_endpoints(struct parse_ctx *ctx, const char *value)
{
    struct kyufu_client_config *cfg = ctx->cfg;
    const char *p = value;
    while (*p != '\0') {
        while (*p == ' ' || *p == ',') {
            p++;
        }
        if (*p == '\0') {
            break;
        }
        size_t n = strcspn(p, ", ");
        if (cfg->n_endpoints == KYUFU_CLIENT_ENDPOINTS_MAX) {
            return fail(ctx, KYUFU_CLIENT_ECONFIG,
                        "key 'endpoints': more than %u endpoints",
                        KYUFU_CLIENT_ENDPOINTS_MAX);
        }
        char *e = strndup(p, n);
        if (e == NULL) {
            return fail(ctx, KYUFU_CLIENT_ENOMEM, "out of memory");
        }
        char host[KYUFU_CLIENT_ENDPOINT_BYTES_MAX + 1];
        uint16_t port;
        if (client__endpoint_split(e, host, sizeof host, &port) != 0) {
            fail(ctx, KYUFU_CLIENT_ECONFIG,
                 "key 'endpoints': '%s' is not host:port", e);
            free(e);
            return 0;
        }
        cfg->endpoints[cfg->n_endpoints++] = e;
        p += n;
    }
    if (cfg->n_endpoints == 0) {
        return fail(ctx, KYUFU_CLIENT_ECONFIG, "key 'endpoints': empty list");
    }
    return 1;
}

static int handler(void *user, const char *section, const char *name,
                   const char *value)
{
    struct parse_ctx *ctx = user;
    if (ctx->rv != 0) {
        return 1; /* report the first error only */
    }
    if (strcmp(section, "client") != 0) {
        return fail(ctx, KYUFU_CLIENT_ECONFIG,
                    "unknown section [%s] (only [client])", section);
    }
    if (name == NULL) { /* section header alone (inih with INI_CALL_HANDLER_ON_NEW_SECTION) */
        return 1;
    }
    size_t i;
    for (i = 0; i < N_KEYS; i++) {
        if (strcmp(keys[i].name, name) == 0) {
            break;
        }
    }
    if (i == N_KEYS) {
        return fail(ctx, KYUFU_CLIENT_ECONFIG, "unknown key '%s'", name);
    }
    if (ctx->seen[i]) {
        return fail(ctx, KYUFU_CLIENT_ECONFIG, "key '%s' given twice", name);
    }
    ctx->seen[i] = true;
    const struct key_spec *k = &keys[i];
    char *base = (char *)ctx->cfg;
    switch (k->kind) {
    case K_ENDPOINTS:
        return set_endpoints(ctx, value);
    case K_PATH:
    case K_STRING: {
        char **slot = (char **)(void *)(base + k->offset);
        size_t n = strlen(value);
        if (n > k->max) {
            return fail(ctx, KYUFU_CLIENT_ECONFIG,
                        "key '%s': longer than %u bytes", name, k->max);
        }
        if (n == 0) { /* "actor =" means unset */
            free(*slot);
            *slot = NULL;
            return 1;
        }
        char *v;
        if (k->kind == K_PATH && value[0] != '/' && ctx->base_dir != NULL) {
            if (asprintf(&v, "%s/%s", ctx->base_dir, value) < 0) {
                v = NULL;
            }
        } else {
            v = strdup(value);
        }
        if (v == NULL) {
            return fail(ctx, KYUFU_CLIENT_ENOMEM, "out of memory");
        }
        free(*slot);
        *slot = v;
        return 1;
    }
    case K_MS: {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(value, &end, 10);
        if (value[0] < '0' || value[0] > '9' || *end != '\0' || errno != 0 ||
            v < k->min || v > k->max) {
            return fail(ctx, KYUFU_CLIENT_ECONFIG,
                        "key '%s': '%s' is not an integer in [%u, %u]", name,
                        value, k->min, k->max);
        }
        *(uint32_t *)(void *)(base + k->offset) = (uint32_t)v;
        return 1;
    }
    }
    assert(0);
    return 0;
}

static int finish(struct parse_ctx *ctx, int line, const char *where,
                  char *errmsg, size_t errmsg_len)
{
    if (line < 0) {
        return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_EIO,
                            "%s: cannot open: %s", where, strerror(errno));
    }
    if (ctx->rv != 0 || line > 0) {
        if (ctx->rv == 0) { /* a line inih itself could not parse */
            return client__errf(errmsg, errmsg_len, KYUFU_CLIENT_ECONFIG,
                                "%s:%d: syntax error", where, line);
        }
        return client__errf(errmsg, errmsg_len, ctx->rv, "%s:%d: %s", where,
                            line, ctx->detail);
    }
    return 0;
}

int kyufu_client_config_parse(struct kyufu_client_config *cfg,
                              const char *text,
                              char *errmsg,
                              size_t errmsg_len)
{
    struct parse_ctx ctx = { .cfg = cfg };
    int line = ini_parse_string(text, handler, &ctx);
    return finish(&ctx, line, "config", errmsg, errmsg_len);
}

int kyufu_client_config_load(struct kyufu_client_config *cfg,
                             const char *path,
                             char *errmsg,
                             size_t errmsg_len)
{
    char *dir = strdup(path);
    if (dir == NULL) {
        return KYUFU_CLIENT_ENOMEM;
    }
    char *slash = strrchr(dir, '/');
    if (slash == NULL) {
        strcpy(dir, ".");
    } else if (slash == dir) {
        dir[1] = '\0';
    } else {
        *slash = '\0';
    }
    struct parse_ctx ctx = { .cfg = cfg, .base_dir = dir };
    errno = 0;
    int line = ini_parse(path, handler, &ctx);
    int rv = finish(&ctx, line, path, errmsg, errmsg_len);
    free(dir);
    return rv;
}

int kyufu_client_config_validate(const struct kyufu_client_config *cfg,
                                 char *errmsg,
                                 size_t errmsg_len)
{
    const int e = KYUFU_CLIENT_ECONFIG;
    if (cfg->n_endpoints == 0) {
        return client__errf(errmsg, errmsg_len, e, "no endpoints configured");
    }
    if (cfg->ca_file == NULL) {
        return client__errf(errmsg, errmsg_len, e,
                            "key 'ca' is required (TLS is not optional)");
    }
    if ((cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
        return client__errf(errmsg, errmsg_len, e,
                            "keys 'cert' and 'key' go together");
    }
    if (cfg->deadline_ms == 0 || cfg->deadline_ms > KYUFU_CLIENT_DEADLINE_MS_MAX ||
        cfg->attempt_ms == 0) {
        return client__errf(errmsg, errmsg_len, e,
                            "deadline_ms/attempt_ms out of range");
    }
    if (cfg->hedge_ms != 0 && (cfg->hedge_ms < KYUFU_CLIENT_HEDGE_MS_MIN ||
                               cfg->hedge_ms > KYUFU_CLIENT_DEADLINE_MS_MAX)) {
        return client__errf(errmsg, errmsg_len, e,
                            "hedge_ms: 0 (off) or %u..%u", KYUFU_CLIENT_HEDGE_MS_MIN,
                            KYUFU_CLIENT_DEADLINE_MS_MAX);
    }
    if (cfg->backoff_ms_initial > cfg->backoff_ms_max) {
        return client__errf(errmsg, errmsg_len, e,
                            "backoff_ms_initial exceeds backoff_ms_max");
    }
    if (cfg->client_id != NULL &&
        (cfg->client_id[0] == '\0' ||
         strlen(cfg->client_id) > KYUFU_CLIENT_ID_BYTES_MAX)) {
        return client__errf(errmsg, errmsg_len, e, "client_id: 1..%u bytes",
                            KYUFU_CLIENT_ID_BYTES_MAX);
    }
    if (cfg->token != NULL && kyufu_client_token_check(cfg->token) != 0) {
        return client__errf(errmsg, errmsg_len, e,
                            "the session token is not %u hex digits",
                            KYUFU_CLIENT_TOKEN_BYTES);
    }
    if (cfg->client_id != NULL && cfg->session_file == NULL) {
        /* A fixed id with sequences restarting at 1 in each process would
         * make the server answer new writes with old results. */
        return client__errf(errmsg, errmsg_len, e,
                            "client_id needs session_file (sequences must "
                            "survive restarts)");
    }
    return 0;
}
