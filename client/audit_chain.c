/* The auditor's side of the audit chain: see audit_chain.h. */
#include "audit_chain.h"
#include "ctl.h"          /* ctl__hex */
#include "ctl_registry.h" /* ctl__csv_field */

#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/x509v3.h>

/* One CSV field or JSON value, at most (a message, an object list). */
enum { FIELD_BYTES_MAX = 64 * 1024, FIELDS_MAX = 40, LINE_BYTES_MAX = 1024 * 1024 };

int kyufu_audit_hash(const uint8_t prev[32],
                     const Kyufu__V1__AuditRecord *r,
                     uint8_t out[32])
{
    Kyufu__V1__AuditRecord copy = *r;
    copy.hash.data = NULL;
    copy.hash.len = 0;
    size_t len = protobuf_c_message_get_packed_size(&copy.base);
    uint8_t *buf = malloc(len > 0 ? len : 1);
    unsigned outlen = 0;
    if (buf == NULL) {
        return -1;
    }
    protobuf_c_message_pack(&copy.base, buf);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rv = ctx != NULL && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) == 1 &&
                     EVP_DigestUpdate(ctx, prev, 32) == 1 &&
                     EVP_DigestUpdate(ctx, buf, len) == 1 &&
                     EVP_DigestFinal_ex(ctx, out, &outlen) == 1 && outlen == 32
                 ? 0
                 : -1;
    EVP_MD_CTX_free(ctx);
    free(buf);
    return rv;
}

/* ------------------------------------------------------- fields as text */

static const ProtobufCMessageDescriptor *desc(void)
{
    return &kyufu__v1__audit_record__descriptor;
}

static void *at(const void *msg, const ProtobufCFieldDescriptor *f)
{
    return (char *)msg + f->offset;
}

static int from_hex(const char *s, uint8_t *out, size_t max, size_t *len)
{
    size_t n = strlen(s);
    if (n % 2 != 0 || n / 2 > max) {
        return -1;
    }
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1 ||
            strchr("0123456789abcdefABCDEF", s[2 * i]) == NULL ||
            strchr("0123456789abcdefABCDEF", s[2 * i + 1]) == NULL) {
            return -1;
        }
        out[i] = (uint8_t)v;
    }
    *len = n / 2;
    return 0;
}

/* A scalar field as JSON. */
static json_t *field_json(const Kyufu__V1__AuditRecord *r,
                          const ProtobufCFieldDescriptor *f)
{
    const void *p = at(r, f);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        assert(f->type == PROTOBUF_C_TYPE_STRING);
        json_t *a = json_array();
        size_t n = *(const size_t *)((const char *)r + f->quantifier_offset);
        char *const *v = *(char *const *const *)p;
        for (size_t i = 0; a != NULL && i < n; i++) {
            json_array_append_new(a, json_string(v[i]));
        }
        return a;
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64: {
        uint64_t v = *(const uint64_t *)p;
        if (v > INT64_MAX) {
            char b[24];
            snprintf(b, sizeof b, "%" PRIu64, v);
            return json_string(b);
        }
        return json_integer((json_int_t)v);
    }
    case PROTOBUF_C_TYPE_INT64:
        return json_integer((json_int_t) * (const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
        return json_integer((json_int_t) * (const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        return json_integer((json_int_t) * (const int32_t *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        return json_string(s != NULL ? s : "");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *h = malloc(2 * b->len + 1);
        if (h == NULL) {
            return NULL;
        }
        ctl__hex(b->data, b->len, h);
        json_t *j = json_string(h);
        free(h);
        return j;
    }
    default:
        assert(!"AuditRecord field type not handled");
        return NULL;
    }
}

static const char *utc(int64_t ms, char *buf, size_t len)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
        snprintf(buf, len, "?");
    }
    return buf;
}

static json_t *record_json(const Kyufu__V1__AuditRecord *r)
{
    char t[40];
    json_t *o = json_object();
    if (o == NULL || json_object_set_new(o, "time", json_string(utc(r->time_ms, t, sizeof t))) != 0) {
        json_decref(o);
        return NULL;
    }
    for (unsigned i = 0; i < desc()->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc()->fields[i];
        json_t *v = field_json(r, f);
        if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

void kyufu_audit_write_header(FILE *out, enum kyufu_audit_format f)
{
    if (f != KYUFU_AUDIT_CSV) {
        return;
    }
    fputs("time", out);
    for (unsigned i = 0; i < desc()->n_fields; i++) {
        fprintf(out, ",%s", desc()->fields[i].name);
    }
    fputs("\r\n", out);
}

int kyufu_audit_write(FILE *out, enum kyufu_audit_format f,
                      const Kyufu__V1__AuditRecord *r)
{
    json_t *o = record_json(r);
    if (o == NULL) {
        return -1;
    }
    int rv = 0;
    if (f == KYUFU_AUDIT_JSONL) {
        rv = json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER) == 0 ? 0 : -1;
        fputc('\n', out);
    } else {
        const char *key;
        json_t *v;
        bool first = true;
        /* Same order as the header: "time", then the descriptor's. */
        json_object_foreach(o, key, v)
        {
            if (!first) {
                fputc(',', out);
            }
            first = false;
            if (json_is_string(v)) {
                ctl__csv_field(out, json_string_value(v));
            } else {
                char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
                if (s == NULL) {
                    rv = -1;
                    break;
                }
                ctl__csv_field(out, s);
                free(s);
            }
        }
        fputs("\r\n", out);
    }
    json_decref(o);
    return rv;
}

/* -------------------------------------------------------------- reading */

struct kyufu_audit_reader
{
    FILE *in;
    unsigned line;   /* of the record being read */
    unsigned next_line;
    bool started;
    bool csv;
    char *header[FIELDS_MAX]; /* CSV column names */
    size_t n_header;
};

struct kyufu_audit_reader *kyufu_audit_reader_new(FILE *in)
{
    struct kyufu_audit_reader *rd = calloc(1, sizeof *rd);
    if (rd != NULL) {
        rd->in = in;
        rd->next_line = 1;
    }
    return rd;
}

void kyufu_audit_reader_free(struct kyufu_audit_reader *rd)
{
    if (rd == NULL) {
        return;
    }
    for (size_t i = 0; i < rd->n_header; i++) {
        free(rd->header[i]);
    }
    free(rd);
}

/* Set field f of r from JSON value v (owned strings in r).  0 or -1. */
static int set_field(Kyufu__V1__AuditRecord *r,
                     const ProtobufCFieldDescriptor *f,
                     json_t *v)
{
    void *p = at(r, f);
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        if (!json_is_array(v) || json_array_size(v) > 1000) {
            return -1;
        }
        size_t n = json_array_size(v);
        char **a = calloc(n > 0 ? n : 1, sizeof *a);
        if (a == NULL) {
            return -1;
        }
        *(char ***)p = a;
        for (size_t i = 0; i < n; i++) {
            json_t *e = json_array_get(v, i);
            if (!json_is_string(e) || (a[i] = strdup(json_string_value(e))) == NULL) {
                return -1; /* the count below stays at i: freed */
            }
            *(size_t *)((char *)r + f->quantifier_offset) = i + 1;
        }
        return 0;
    }
    json_int_t iv = 0;
    bool is_int = json_is_integer(v);
    if (is_int) {
        iv = json_integer_value(v);
    }
    switch (f->type) {
    case PROTOBUF_C_TYPE_UINT64:
        if (json_is_string(v)) {
            char *end;
            errno = 0;
            unsigned long long u = strtoull(json_string_value(v), &end, 10);
            if (errno != 0 || *end != '\0' || json_string_value(v)[0] == '\0' ||
                json_string_value(v)[0] == '-') {
                return -1;
            }
            *(uint64_t *)p = u;
            return 0;
        }
        if (!is_int || iv < 0) {
            return -1;
        }
        *(uint64_t *)p = (uint64_t)iv;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
        if (!is_int) {
            return -1;
        }
        *(int64_t *)p = iv;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
        if (!is_int || iv < 0 || iv > UINT32_MAX) {
            return -1;
        }
        *(uint32_t *)p = (uint32_t)iv;
        return 0;
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_ENUM:
        if (!is_int || iv < INT32_MIN || iv > INT32_MAX) {
            return -1;
        }
        *(int32_t *)p = (int32_t)iv;
        return 0;
    case PROTOBUF_C_TYPE_BOOL:
        if (!json_is_boolean(v)) {
            return -1;
        }
        *(protobuf_c_boolean *)p = json_is_true(v);
        return 0;
    case PROTOBUF_C_TYPE_STRING: {
        if (!json_is_string(v)) {
            return -1;
        }
        char *s = strdup(json_string_value(v));
        if (s == NULL) {
            return -1;
        }
        *(char **)p = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = p;
        const char *h = json_is_string(v) ? json_string_value(v) : NULL;
        if (h == NULL) {
            return -1;
        }
        size_t max = strlen(h) / 2;
        uint8_t *d = malloc(max > 0 ? max : 1);
        size_t len = 0;
        if (d == NULL || from_hex(h, d, max, &len) != 0) {
            free(d);
            return -1;
        }
        b->data = d;
        b->len = len;
        return 0;
    }
    default:
        return -1;
    }
}

/* A record from a JSON object holding every field. */
static int record_from_json(json_t *o, Kyufu__V1__AuditRecord **out,
                            char *errmsg, size_t errmsg_len, unsigned line)
{
    if (!json_is_object(o)) {
        snprintf(errmsg, errmsg_len, "line %u: not a JSON object", line);
        return -1;
    }
    Kyufu__V1__AuditRecord *r = malloc(sizeof *r);
    if (r == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    kyufu__v1__audit_record__init(r);
    for (unsigned i = 0; i < desc()->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &desc()->fields[i];
        json_t *v = json_object_get(o, f->name);
        if (v == NULL || set_field(r, f, v) != 0) {
            snprintf(errmsg, errmsg_len, "line %u: field '%s' %s", line, f->name,
                     v == NULL ? "is missing" : "is malformed");
            kyufu__v1__audit_record__free_unpacked(r, NULL);
            return -1;
        }
    }
    *out = r;
    return 0;
}

/* One CSV row into fields (malloc'd, *n of them).  1, 0 at EOF, -1. */
static int csv_row(struct kyufu_audit_reader *rd, char **fields, size_t *n,
                   char *errmsg, size_t errmsg_len)
{
    size_t cap = 256, len = 0, total = 0;
    char *cur = malloc(cap);
    bool quoted = false, any = false, was_quoted = false;
    *n = 0;
    rd->line = rd->next_line;
    if (cur == NULL) {
        snprintf(errmsg, errmsg_len, "out of memory");
        return -1;
    }
    for (;;) {
        int ch = fgetc(rd->in);
        if (ch == EOF) {
            if (quoted) {
                snprintf(errmsg, errmsg_len, "line %u: a quoted field is not closed",
                         rd->line);
                goto fail;
            }
            if (!any) {
                free(cur);
                return 0;
            }
            ch = '\n';
        }
        any = true;
        if (++total > LINE_BYTES_MAX) {
            snprintf(errmsg, errmsg_len, "line %u: a row longer than %d bytes", rd->line,
                     LINE_BYTES_MAX);
            goto fail;
        }
        if (ch == '\0') {
            /* The cell would end at the NUL and the rest be read away
             * (as kyufu_audit_read refuses it in a JSONL line). */
            snprintf(errmsg, errmsg_len, "line %u: holds a NUL byte", rd->line);
            goto fail;
        }
        if (quoted) {
            if (ch == '"') {
                int nx = fgetc(rd->in);
                if (nx == '"') {
                    ch = '"';
                } else {
                    quoted = false;
                    if (nx != EOF) {
                        ungetc(nx, rd->in);
                    }
                    continue;
                }
            } else if (ch == '\n') {
                rd->next_line++;
            }
        } else if (ch == '"' && len == 0 && !was_quoted) {
            quoted = was_quoted = true;
            continue;
        } else if (ch == ',' || ch == '\n' || ch == '\r') {
            if (ch == '\r') {
                int nx = fgetc(rd->in);
                if (nx != '\n') {
                    snprintf(errmsg, errmsg_len, "line %u: a CR not followed by LF",
                             rd->line);
                    goto fail;
                }
                ch = '\n';
            }
            if (*n == FIELDS_MAX) {
                snprintf(errmsg, errmsg_len, "line %u: more than %d fields", rd->line,
                         FIELDS_MAX);
                goto fail;
            }
            cur[len] = '\0';
            fields[(*n)++] = cur;
            if (ch == '\n') {
                rd->next_line++;
                return 1;
            }
            cap = 256;
            len = 0;
            was_quoted = false;
            cur = malloc(cap);
            if (cur == NULL) {
                snprintf(errmsg, errmsg_len, "out of memory");
                return -1;
            }
            continue;
        } else if (was_quoted) {
            snprintf(errmsg, errmsg_len, "line %u: text after a closing quote", rd->line);
            goto fail;
        }
        if (len + 2 > cap) {
            char *m = len + 2 > FIELD_BYTES_MAX ? NULL : realloc(cur, cap * 2);
            if (m == NULL) {
                snprintf(errmsg, errmsg_len, "line %u: a field longer than %d bytes",
                         rd->line, FIELD_BYTES_MAX);
                goto fail;
            }
            cur = m;
            cap *= 2;
        }
        cur[len++] = (char)ch;
    }
fail:
    free(cur);
    for (size_t i = 0; i < *n; i++) {
        free(fields[i]);
    }
    *n = 0;
    return -1;
}

/* A CSV cell as the JSON value of field f. */
static json_t *csv_value(const ProtobufCFieldDescriptor *f, const char *s)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED ||
        (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_BYTES)) {
        if (f->type == PROTOBUF_C_TYPE_UINT64 && f->label != PROTOBUF_C_LABEL_REPEATED &&
            s[0] != '\0' && strspn(s, "0123456789") == strlen(s) && strlen(s) > 18) {
            return json_string(s); /* may exceed JSON's integers */
        }
        return json_loads(s, JSON_DECODE_ANY, NULL);
    }
    return json_string(s);
}

static int read_csv(struct kyufu_audit_reader *rd, Kyufu__V1__AuditRecord **out,
                    char *errmsg, size_t errmsg_len)
{
    char *fields[FIELDS_MAX];
    size_t n;
    if (!rd->started) {
        int rv = csv_row(rd, rd->header, &rd->n_header, errmsg, errmsg_len);
        if (rv <= 0) {
            if (rv == 0) {
                return 0;
            }
            return -1;
        }
        rd->started = true;
    }
    int rv = csv_row(rd, fields, &n, errmsg, errmsg_len);
    if (rv <= 0) {
        return rv;
    }
    json_t *o = json_object();
    if (n != rd->n_header) {
        snprintf(errmsg, errmsg_len, "line %u: %zu fields, the header has %zu", rd->line, n,
                 rd->n_header);
        rv = -1;
    }
    for (size_t i = 0; rv > 0 && o != NULL && i < n; i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(desc(), rd->header[i]);
        if (f == NULL) {
            continue; /* "time" and columns for people */
        }
        json_t *v = csv_value(f, fields[i]);
        if (v == NULL) {
            snprintf(errmsg, errmsg_len, "line %u: field '%s' is malformed", rd->line,
                     f->name);
            rv = -1;
        } else {
            json_object_set_new(o, f->name, v);
        }
    }
    for (size_t i = 0; i < n; i++) {
        free(fields[i]);
    }
    if (rv > 0) {
        rv = o == NULL ? -1 : record_from_json(o, out, errmsg, errmsg_len, rd->line) == 0 ? 1 : -1;
    }
    json_decref(o);
    return rv;
}

int kyufu_audit_read(struct kyufu_audit_reader *rd,
                     Kyufu__V1__AuditRecord **out,
                     char *errmsg,
                     size_t errmsg_len)
{
    if (!rd->started && !rd->csv) {
        int ch = fgetc(rd->in);
        if (ch == EOF) {
            return 0;
        }
        ungetc(ch, rd->in);
        rd->csv = ch != '{';
    }
    if (rd->csv) {
        return read_csv(rd, out, errmsg, errmsg_len);
    }
    rd->started = true;
    char *line = NULL;
    size_t cap = 0;
    for (;;) {
        rd->line = rd->next_line++;
        ssize_t got = getline(&line, &cap, rd->in);
        if (got < 0) {
            free(line);
            return 0;
        }
        if (got > LINE_BYTES_MAX) {
            snprintf(errmsg, errmsg_len, "line %u: longer than %d bytes", rd->line,
                     LINE_BYTES_MAX);
            free(line);
            return -1;
        }
        if (memchr(line, '\0', (size_t)got) != NULL) {
            /* json_loads would stop at the NUL and read the rest away. */
            snprintf(errmsg, errmsg_len, "line %u: holds a NUL byte", rd->line);
            free(line);
            return -1;
        }
        if (strspn(line, " \t\r\n") == (size_t)got) {
            continue;
        }
        json_error_t je;
        json_t *o = json_loads(line, 0, &je);
        free(line);
        if (o == NULL) {
            snprintf(errmsg, errmsg_len, "line %u: not JSON: %s", rd->line, je.text);
            return -1;
        }
        int rv = record_from_json(o, out, errmsg, errmsg_len, rd->line);
        json_decref(o);
        return rv == 0 ? 1 : -1;
    }
}

/* ------------------------------------------------------------ checking */

static void bad(struct kyufu_audit_check *c, uint64_t seq, const char *why)
{
    if (c->bad_seq == 0) {
        c->bad_seq = seq;
        snprintf(c->bad_why, sizeof c->bad_why, "%s", why);
    }
}

void kyufu_audit_check_record(struct kyufu_audit_check *c,
                              const Kyufu__V1__AuditRecord *r)
{
    static const uint8_t zeros[32];
    uint8_t h[32];
    if (r->seq == 0) {
        bad(c, 0, "a record with seq 0");
        c->bad_seq = c->bad_seq == 0 ? 1 : c->bad_seq;
        return;
    }
    bool linked = c->started && r->seq == c->last_seq + 1;
    if (c->started && r->seq <= c->last_seq) {
        bad(c, r->seq, "records out of order or repeated");
    } else if (c->whole && !c->started && r->seq != 1) {
        bad(c, 1, "the chain does not start at seq 1");
    } else if (c->whole && c->started && !linked) {
        bad(c, c->last_seq + 1, "a record is missing (sequence gap)");
    }
    if (r->prev_hash.len != 32 || r->hash.len != 32) {
        bad(c, r->seq, "hash or prev_hash is not 32 bytes");
    } else if (kyufu_audit_hash(r->prev_hash.data, r, h) != 0) {
        bad(c, r->seq, "out of memory while hashing");
    } else if (memcmp(h, r->hash.data, 32) != 0) {
        bad(c, r->seq, "the record's content does not hash to its hash (rewritten)");
    } else if (linked && memcmp(r->prev_hash.data, c->last_hash, 32) != 0) {
        bad(c, r->seq, "prev_hash does not link to the record before (rewritten or replaced)");
    } else if (r->seq == 1 && memcmp(r->prev_hash.data, zeros, 32) != 0) {
        bad(c, 1, "seq 1 does not start from the zero hash");
    }
    /* Checkpoints at or before this seq. */
    while (c->next_cp < c->n_cps && c->cps[c->next_cp].seq <= r->seq) {
        const struct kyufu_audit_checkpoint *cp = &c->cps[c->next_cp++];
        if (cp->seq < r->seq) {
            continue; /* a segment without that record: not checked */
        }
        if (r->hash.len == 32 && memcmp(cp->hash, r->hash.data, 32) == 0) {
            c->cps_matched++;
            c->last_match_seq = cp->seq;
        } else if (c->diverge_seq == 0) {
            c->diverge_seq = cp->seq;
            c->diverge_after = c->last_match_seq;
            c->diverge_node = cp->node;
        }
    }
    c->started = true;
    c->last_seq = r->seq;
    if (r->hash.len == 32) {
        memcpy(c->last_hash, r->hash.data, 32);
    }
    c->records++;
}

void kyufu_audit_check_end(struct kyufu_audit_check *c)
{
    if (!c->whole) {
        return;
    }
    for (size_t i = c->next_cp; i < c->n_cps; i++) {
        if (c->cps[i].seq > c->last_seq) {
            c->truncated_at = c->cps[i].seq;
            c->truncated_node = c->cps[i].node;
            break;
        }
    }
}

bool kyufu_audit_check_ok(const struct kyufu_audit_check *c)
{
    return c->bad_seq == 0 && c->diverge_seq == 0 && c->truncated_at == 0;
}

int kyufu_audit_checkpoint_parse(const char *line,
                                 struct kyufu_audit_checkpoint *cp,
                                 uint8_t *sig,
                                 size_t sig_max,
                                 size_t *sig_len,
                                 char *errmsg,
                                 size_t errmsg_len)
{
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    json_t *v = o != NULL ? json_object_get(o, "v") : NULL;
    json_t *node = o != NULL ? json_object_get(o, "node") : NULL;
    json_t *seq = o != NULL ? json_object_get(o, "seq") : NULL;
    json_t *hash = o != NULL ? json_object_get(o, "hash") : NULL;
    json_t *t = o != NULL ? json_object_get(o, "time_ms") : NULL;
    json_t *s = o != NULL ? json_object_get(o, "sig") : NULL;
    size_t hlen = 0;
    int rv = -1;
    if (o == NULL) {
        snprintf(errmsg, errmsg_len, "not JSON: %s", je.text);
    } else if (!json_is_integer(v) || json_integer_value(v) != 1) {
        snprintf(errmsg, errmsg_len, "not a version 1 checkpoint");
    } else if (!json_is_integer(node) || json_integer_value(node) <= 0 ||
               !json_is_integer(seq) || json_integer_value(seq) <= 0 ||
               !json_is_integer(t) || !json_is_string(hash) || !json_is_string(s)) {
        snprintf(errmsg, errmsg_len, "node, seq, hash, time_ms or sig missing or malformed");
    } else if (from_hex(json_string_value(hash), cp->hash, 32, &hlen) != 0 || hlen != 32) {
        snprintf(errmsg, errmsg_len, "hash is not 64 hex digits");
    } else if (from_hex(json_string_value(s), sig, sig_max, sig_len) != 0 || *sig_len == 0) {
        snprintf(errmsg, errmsg_len, "sig is not hex of at most %zu bytes", sig_max);
    } else {
        cp->node = (uint64_t)json_integer_value(node);
        cp->seq = (uint64_t)json_integer_value(seq);
        cp->time_ms = (int64_t)json_integer_value(t);
        rv = 0;
    }
    json_decref(o);
    return rv;
}

uint64_t kyufu_audit_cert_node(X509 *cert)
{
    GENERAL_NAMES *names = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    uint64_t id = 0;
    for (int i = 0; names != NULL && i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *g = sk_GENERAL_NAME_value(names, i);
        if (g->type != GEN_URI) {
            continue;
        }
        const char *u = (const char *)ASN1_STRING_get0_data(g->d.uniformResourceIdentifier);
        unsigned long long v;
        char extra;
        if (u != NULL && sscanf(u, "urn:kyufu:node:%llu%c", &v, &extra) == 1) {
            id = v;
        }
    }
    GENERAL_NAMES_free(names);
    return id;
}
