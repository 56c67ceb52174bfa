/* kyufuctl ledger commands.
 *
 * Each command names an RPC; its options are DERIVED from the request's
 * protobuf descriptor: every field of the request (and of the messages it
 * holds: command, household, bank) becomes --field-name, so a field added
 * to service.proto shows up here with no code.  Left out: the header (built
 * by libkyufu from --as / the config), read options (--stale), paging
 * (list follows pages up to --limit, from --page-token), record fields the
 * server stamps (registered_ms, updated_ms, version), and roles_mask (the
 * stored form of roles, refused from clients: --roles takes the list).
 *
 * Values: integers in range, enums by name ("counter" or "CHANNEL_COUNTER"),
 * roles as a list ("clerk,approver": the request's repeated Role), repeated
 * fields as a comma list or a repeated option, *_ms times as milliseconds or
 * YYYY-MM-DD (00:00 in the office's zone: --tz, the config's time_zone, else
 * Asia/Tokyo), transfer_date as YYYYMMDD or YYYY-MM-DD.  Anything else is a
 * usage error (exit 2) naming the option.  Values are parsed after every
 * option was read and the config loaded, since the zone may come last. */
#include <assert.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ctl.h"
#include "kyufu.h"

/* ------------------------------------------------------------ table */

static const char *const cols_programs[] = { "code", "name", "fiscal_year", "status", "budget",
                                             "available", "reserved", "paid", NULL };
static const char *const cols_households[] = { "household_no", "head_name", "address",
                                               "version", NULL };
static const char *const cols_applications[] = { "id", "program_code", "household_no",
                                                 "channel", "amount", "status",
                                                 "submitted_by", "decided_by", "batch_id",
                                                 NULL };
static const char *const cols_batches[] = { "id", "program_code", "transfer_date", "status",
                                            "total_amount", "created_by", "confirmed_by",
                                            NULL };
static const char *const cols_staff[] = { "staff_id", "display_name", "roles", "status", NULL };
static const char *const cols_audit[] = { "seq", "time_ms", "actor", "terminal", "command",
                                          "object", "outcome", "message", NULL };

struct ledger_cmd
{
    const char *noun;
    const char *verb;
    const char *method;
    const char *required; /* comma-separated option names */
    const char *const *columns; /* list commands */
    const char *role;     /* who may run it (storage/apply.c command_def) */
};

#define R_APPROVER "approver"
#define R_CLERK "clerk"
#define R_ADMIN "id_admin"
#define R_READ "clerk or approver"
#define R_AUDITOR "auditor"
#define R_SETTLE "the account that sent the write (the key's owner)"


static const struct ledger_cmd cmds[] = {
    { "program", "create", "CreateProgram", "code,name,fiscal-year,unit-amount,budget,window-start-ms,window-end-ms", NULL, R_APPROVER },
    { "program", "open", "OpenProgram", "code", NULL, R_APPROVER },
    { "program", "close", "CloseProgram", "code", NULL, R_APPROVER },
    { "program", "adjust-budget", "AdjustBudget", "code,delta,reason", NULL, R_APPROVER },
    { "program", "get", "GetProgram", "code", NULL, R_READ },
    { "program", "list", "ListPrograms", "", cols_programs, R_READ },
    { "household", "register", "RegisterHousehold", "household-no,head-name,address", NULL, R_CLERK },
    { "household", "update", "UpdateHousehold", "household-no,update-mask,expected-version",
      NULL, R_CLERK },
    { "household", "get", "GetHousehold", "household-no", NULL, R_READ },
    { "household", "list", "ListHouseholds", "", cols_households, R_READ },
    { "application", "submit", "SubmitApplication", "program-code,household-no,channel", NULL, R_CLERK },
    { "application", "approve", "ApproveApplication", "id", NULL, R_APPROVER },
    { "application", "reject", "RejectApplication", "id,reason", NULL, R_APPROVER },
    { "application", "cancel", "CancelApplication", "id,reason", NULL, R_CLERK },
    { "application", "get", "GetApplication", "id", NULL, R_READ },
    { "application", "list", "ListApplications", "", cols_applications, R_READ },
    { "batch", "create", "CreatePaymentBatch", "program-code,transfer-date,application-ids", NULL, R_CLERK },
    { "batch", "confirm", "ConfirmPaymentBatch", "id", NULL, R_APPROVER },
    { "batch", "get", "GetPaymentBatch", "id", NULL, R_APPROVER },
    { "batch", "list", "ListPaymentBatches", "", cols_batches, R_APPROVER },
    { "payment", "return", "ReturnPayment", "application-id,reason", NULL, R_CLERK },
    { "staff", "create", "CreateStaff", "staff-id,display-name,roles", NULL, R_ADMIN },
    { "staff", "set-roles", "SetStaffRoles", "staff-id,roles", NULL, R_ADMIN },
    { "staff", "set-status", "SetStaffStatus", "staff-id,status", NULL, R_ADMIN },
    { "staff", "get", "GetStaff", "staff-id", NULL, R_ADMIN },
    { "staff", "list", "ListStaff", "", cols_staff, R_ADMIN },
    { "audit", "list", "ListAudit", "", cols_audit, R_AUDITOR },
    { "audit", "verify", "VerifyAudit", "", NULL, R_AUDITOR },
    /* The key comes from --idempotency-key (required, checked below). */
    { "write", "settle", "SettleWrite", "", NULL, R_SETTLE },
};
#define N_CMDS (sizeof cmds / sizeof cmds[0])

/* ------------------------------------------------------------ flags */

#define FLAGS_MAX 40u
#define DEPTH_MAX 4u

struct flag
{
    char name[64]; /* option name: field name with '-' for '_' */
    const ProtobufCFieldDescriptor *path[DEPTH_MAX];
    unsigned depth;
    bool seen;
};

struct flags
{
    struct flag f[FLAGS_MAX];
    unsigned n;
};

static bool skipped(const char *name)
{
    static const char *const skip[] = { "header", "read", "page_size", "page_token",
                                        "registered_ms", "updated_ms", "version",
                                        "roles_mask" /* the stored form: --roles */ };
    for (size_t i = 0; i < sizeof skip / sizeof skip[0]; i++) {
        if (strcmp(skip[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static void walk(struct flags *fl, const ProtobufCMessageDescriptor *d,
                 const ProtobufCFieldDescriptor **path, unsigned depth)
{
    assert(depth < DEPTH_MAX);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (skipped(f->name)) {
            continue;
        }
        path[depth] = f;
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
            walk(fl, f->descriptor, path, depth + 1);
            continue;
        }
        assert(fl->n < FLAGS_MAX);
        struct flag *x = &fl->f[fl->n++];
        snprintf(x->name, sizeof x->name, "%s", f->name);
        for (char *p = x->name; *p != '\0'; p++) {
            if (*p == '_') {
                *p = '-';
            }
        }
        memcpy(x->path, path, (depth + 1) * sizeof path[0]);
        x->depth = depth + 1;
    }
}

static void flags_of(struct flags *fl, const ProtobufCMessageDescriptor *d)
{
    const ProtobufCFieldDescriptor *path[DEPTH_MAX];
    memset(fl, 0, sizeof *fl);
    walk(fl, d, path, 0);
}

enum { OPT_LIMIT = 0x300, OPT_PAGE_TOKEN };
/* Ledger options on one command line (repeated ones included). */
#define PENDING_MAX 64u

/* ------------------------------------------------------------ arena */

/* Everything a built request points to is allocated here and released at
 * once; strings from argv are borrowed. */
struct arena
{
    void *p[256];
    size_t n;
};

static void *arena_alloc(struct arena *a, size_t size)
{
    if (a->n == sizeof a->p / sizeof a->p[0]) {
        return NULL;
    }
    void *m = calloc(1, size > 0 ? size : 1);
    if (m != NULL) {
        a->p[a->n++] = m;
    }
    return m;
}

static void arena_free(struct arena *a)
{
    for (size_t i = 0; i < a->n; i++) {
        free(a->p[i]);
    }
    a->n = 0;
}

static ProtobufCMessage *new_msg(struct arena *a, const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = arena_alloc(a, d->sizeof_message);
    if (m != NULL) {
        protobuf_c_message_init(d, m);
    }
    return m;
}

/* ------------------------------------------------------------ values */

static int parse_i64(const char *s, int64_t lo, int64_t hi, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (s[0] == '\0' || *end != '\0' || errno != 0 || v < lo || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_u64(const char *s, uint64_t hi, uint64_t *out)
{
    char *end;
    errno = 0;
    if (s[0] < '0' || s[0] > '9') {
        return -1;
    }
    unsigned long long v = strtoull(s, &end, 10);
    if (*end != '\0' || errno != 0 || v > hi) {
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_enum(const ProtobufCEnumDescriptor *e, const char *s, int *out)
{
    size_t sl = strlen(s);
    for (unsigned i = 0; i < e->n_values; i++) {
        const char *n = e->values[i].name;
        size_t nl = strlen(n);
        if (strcasecmp(n, s) == 0 ||
            (nl > sl && n[nl - sl - 1] == '_' && strcasecmp(n + nl - sl, s) == 0)) {
            *out = e->values[i].value;
            return 0;
        }
    }
    return -1;
}

static void enum_choices(const ProtobufCEnumDescriptor *e, char *buf, size_t len)
{
    size_t n = 0;
    buf[0] = '\0';
    for (unsigned i = 0; i < e->n_values && n < len; i++) {
        if (e->values[i].value == 0) {
            continue; /* *_UNSPECIFIED */
        }
        const char *name = e->values[i].name;
        const char *u = strchr(name, '_');
        const char *v = u != NULL ? u + 1 : name;
        if (n > 0 && n + 2 < len) {
            buf[n++] = ',';
            buf[n++] = ' ';
        }
        for (; *v != '\0' && n + 1 < len; v++) {
            buf[n++] = (char)(*v >= 'A' && *v <= 'Z' ? *v - 'A' + 'a' : *v);
        }
        buf[n] = '\0';
    }
}

/* Parse one element for field f into *dst (sized for f's C type). */
static int parse_value(struct ctl__run *r, const struct flag *x,
                       const char *s, void *dst)
{
    const ProtobufCFieldDescriptor *f = x->path[x->depth - 1];
    int64_t i;
    uint64_t u;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if (strcmp(f->name, "transfer_date") == 0 && strlen(s) == 10 && s[4] == '-' &&
            s[7] == '-') {
            char d[9] = { s[0], s[1], s[2], s[3], s[5], s[6], s[8], s[9], 0 };
            if (parse_i64(d, 19700101, 99991231, &i) == 0) {
                *(int32_t *)dst = (int32_t)i;
                return 0;
            }
        } else if (parse_i64(s, INT32_MIN, INT32_MAX, &i) == 0) {
            *(int32_t *)dst = (int32_t)i;
            return 0;
        }
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if (parse_u64(s, UINT32_MAX, &u) == 0) {
            *(uint32_t *)dst = (uint32_t)u;
            return 0;
        }
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: {
        size_t nl = strlen(f->name);
        if (nl > 3 && strcmp(f->name + nl - 3, "_ms") == 0 && kyufu_ctl_date_ms(s, &i) == 0) {
            *(int64_t *)dst = i;
            return 0;
        }
        if (parse_i64(s, INT64_MIN, INT64_MAX, &i) == 0) {
            *(int64_t *)dst = i;
            return 0;
        }
        break;
    }
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if (parse_u64(s, UINT64_MAX, &u) == 0) {
            *(uint64_t *)dst = u;
            return 0;
        }
        break;
    case PROTOBUF_C_TYPE_BOOL:
        if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0) {
            *(protobuf_c_boolean *)dst = s[0] == 't';
            return 0;
        }
        break;
    case PROTOBUF_C_TYPE_ENUM: {
        int v;
        if (parse_enum(f->descriptor, s, &v) == 0) {
            *(int *)dst = v;
            return 0;
        }
        char choices[256];
        enum_choices(f->descriptor, choices, sizeof choices);
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--%s: '%s' is not one of: %s",
                         x->name, s, choices);
    }
    case PROTOBUF_C_TYPE_STRING:
        *(const char **)dst = s;
        return 0;
    default:
        break;
    }
    return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--%s: '%s' is not a valid %s", x->name, s,
                     f->type == PROTOBUF_C_TYPE_BOOL ? "boolean (true/false)"
                     : strstr(f->name, "_ms") != NULL ? "time (ms or YYYY-MM-DD)"
                                                      : "integer in range");
}

static size_t c_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
        return sizeof(char *);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    default:
        return 4;
    }
}

/* Set flag x of the request root to s (appending for repeated fields, each
 * comma-separated element in turn). */
static int set_flag(struct ctl__run *r, struct arena *a, ProtobufCMessage *root,
                    struct flag *x, const char *s)
{
    ProtobufCMessage *m = root;
    for (unsigned k = 0; k + 1 < x->depth; k++) {
        const ProtobufCFieldDescriptor *f = x->path[k];
        ProtobufCMessage **slot = (void *)((char *)m + f->offset);
        if (*slot == NULL) {
            *slot = new_msg(a, f->descriptor);
            if (*slot == NULL) {
                return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
            }
        }
        m = *slot;
    }
    const ProtobufCFieldDescriptor *f = x->path[x->depth - 1];
    void *field = (char *)m + f->offset;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        if (x->seen) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--%s given twice", x->name);
        }
        x->seen = true;
        return parse_value(r, x, s, field);
    }
    x->seen = true;
    size_t *count = (void *)((char *)m + f->quantifier_offset);
    char *copy = arena_alloc(a, strlen(s) + 1);
    if (copy == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    strcpy(copy, s);
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save)) {
        size_t sz = c_size(f);
        char *arr = arena_alloc(a, (*count + 1) * sz);
        if (arr == NULL) {
            return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
        }
        char **old = field;
        if (*count > 0) {
            memcpy(arr, *old, *count * sz);
        }
        int rv = parse_value(r, x, t, arr + *count * sz);
        if (rv != 0) {
            return rv;
        }
        *old = arr;
        (*count)++;
    }
    return 0;
}

/* ------------------------------------------------------------ output */

static void print_write(struct ctl__run *r, const Kyufu__V1__WriteResponse *w)
{
    const Kyufu__V1__CommandResult *res = w->result;
    if (res == NULL) {
        fprintf(r->out, "ok\n");
        return;
    }
    fprintf(r->out, "ok: %s (raft index %llu, audit seq %llu)\n", res->object,
            (unsigned long long)res->raft_index, (unsigned long long)res->audit_seq);
    if (w->temporary_password != NULL && w->temporary_password[0] != '\0') {
        /* CreateStaff: shown this once (a retry of the key answers without
         * it; then `kyufuctl staff reset-password`). */
        fprintf(r->out,
                "temporary password (shown once; hand it to the person, who must change "
                "it at first sign-in):\n  %s\n",
                w->temporary_password);
    }
    const ProtobufCMessageDescriptor *d = res->base.descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)((const char *)res + f->quantifier_offset) == f->id) {
            const ProtobufCMessage *rec = *(ProtobufCMessage *const *)(const void *)((const char *)res + f->offset);
            if (rec != NULL) {
                kyufu_ctl_print_record(r->out, rec, 2);
            }
        }
    }
}

/* WRITE_EXPIRED is no answer a script can act on alone: exit CHECK. */
static int settle_exit(const Kyufu__V1__SettleWriteResponse *s)
{
    return s->outcome == KYUFU__V1__WRITE_OUTCOME__WRITE_EXPIRED ? KYUFU_CTL_EXIT_CHECK : 0;
}

static int print_settle(struct ctl__run *r, const Kyufu__V1__SettleWriteResponse *s)
{
    const Kyufu__V1__CommandResult *res = s->result;
    unsigned long long idx = res != NULL ? (unsigned long long)res->raft_index : 0;
    switch (s->outcome) {
    case KYUFU__V1__WRITE_OUTCOME__WRITE_APPLIED:
        fprintf(r->out, "applied: ");
        if (res != NULL && res->code != KYUFU__V1__CODE__OK) {
            fprintf(r->out, "rejected %s: %s (raft index %llu, audit seq %llu)\n",
                    kyufu_grpc_status_name((int)res->code), res->message, idx,
                    (unsigned long long)res->audit_seq);
            break;
        }
        {
            Kyufu__V1__WriteResponse w = KYUFU__V1__WRITE_RESPONSE__INIT;
            w.result = (Kyufu__V1__CommandResult *)res;
            print_write(r, &w);
        }
        break;
    case KYUFU__V1__WRITE_OUTCOME__WRITE_NOT_APPLIED:
        fprintf(r->out, "not applied: the write never was and never will be "
                        "(key fenced at raft index %llu); send it again with a new key\n",
                idx);
        break;
    default:
        fprintf(r->out, "expired: the key is older than the cluster's session window; "
                        "the cluster cannot tell whether it was applied (key fenced at "
                        "raft index %llu); check the records\n",
                idx);
        fprintf(r->err, "kyufuctl: outcome unknown to the cluster\n");
        break;
    }
    return settle_exit(s);
}

/* ------------------------------------------------------------ run */

/* Paging of a list command: at most `limit` records, from page_token
 * (NULL: the first). */
struct list_opts
{
    size_t limit;
    const char *page_token;
};

/* Follow pages until the list ends or `limit` records are in; each page
 * asks for no more than are still wanted, so when the list stops early the
 * server's next_page_token continues exactly after the last record shown.
 * --json: {"<records>": [...], "truncated": bool, "next_page_token": "..."}
 * (the token "" when not truncated); text: the table, and on stderr how to
 * continue. */
static int run_list(struct ctl__run *r, struct kyufu_client *c,
                    const struct ledger_cmd *cmd, const struct kyufu_client_method *m,
                    ProtobufCMessage *req, const struct kyufu_client_call_opts *opts,
                    const struct list_opts *lo)
{
    const ProtobufCFieldDescriptor *fsize =
        protobuf_c_message_descriptor_get_field_by_name(m->input, "page_size");
    const ProtobufCFieldDescriptor *ftoken =
        protobuf_c_message_descriptor_get_field_by_name(m->input, "page_token");
    const ProtobufCFieldDescriptor *fnext =
        protobuf_c_message_descriptor_get_field_by_name(m->output, "next_page_token");
    const ProtobufCFieldDescriptor *frec = NULL;
    for (unsigned i = 0; i < m->output->n_fields; i++) {
        if (m->output->fields[i].label == PROTOBUF_C_LABEL_REPEATED) {
            frec = &m->output->fields[i];
        }
    }
    assert(fsize != NULL && ftoken != NULL && fnext != NULL && frec != NULL);
    assert(lo->limit >= 1 && lo->limit <= KYUFU_CTL_LIST_RECORDS_MAX);
    /* A page holds at least one record, so this many pages always reach
     * the limit. */
    enum { PAGES_MAX = 2 * (KYUFU_CTL_LIST_RECORDS_MAX / KYUFU_CTL_LIST_PAGE_RECORDS) + 2 };
    ProtobufCMessage *pages[PAGES_MAX];
    size_t n_pages = 0, n_rec = 0;
    char *token = NULL;
    if (lo->page_token != NULL && (token = strdup(lo->page_token)) == NULL) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
    }
    bool truncated = false;
    int rv = 0;
    for (;;) {
        size_t want = lo->limit - n_rec;
        *(uint32_t *)(void *)((char *)req + fsize->offset) =
            (uint32_t)(want < KYUFU_CTL_LIST_PAGE_RECORDS ? want : KYUFU_CTL_LIST_PAGE_RECORDS);
        *(const char **)(void *)((char *)req + ftoken->offset) = token != NULL ? token : "";
        struct kyufu_client_result res;
        int crv = kyufu_client_call(c, m->name, req, m->output, opts, &res);
        rv = ctl__call_exit(r, crv, &res);
        if (rv != 0) {
            break;
        }
        size_t got = *(size_t *)(void *)((char *)res.response + frec->quantifier_offset);
        if (got > want) {
            /* The server sent more than asked: the token would skip the
             * extra records, so this answer cannot be paged honestly. */
            kyufu_client_response_free(res.response);
            rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL,
                           "the server sent %zu records for a page of %zu", got, want);
            break;
        }
        pages[n_pages++] = res.response;
        n_rec += got;
        const char *next = *(char **)(void *)((char *)res.response + fnext->offset);
        free(token);
        token = NULL;
        if (next == NULL || next[0] == '\0') {
            break;
        }
        token = strdup(next);
        if (token == NULL) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
            break;
        }
        if (n_rec >= lo->limit || n_pages == PAGES_MAX || got == 0) {
            truncated = true;
            break;
        }
    }
    if (rv == 0) {
        const ProtobufCMessage **all = calloc(n_rec + 1, sizeof *all);
        size_t k = 0;
        for (size_t p = 0; p < n_pages && all != NULL; p++) {
            size_t n = *(size_t *)(void *)((char *)pages[p] + frec->quantifier_offset);
            ProtobufCMessage **recs = *(ProtobufCMessage ***)(void *)((char *)pages[p] + frec->offset);
            for (size_t i = 0; i < n; i++) {
                all[k++] = recs[i];
            }
        }
        if (all == NULL) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
        } else if (r->json) {
            json_t *arr = json_array();
            for (size_t i = 0; i < k && arr != NULL; i++) {
                json_array_append_new(arr, kyufu_ctl_to_json(all[i]));
            }
            rv = ctl__emit_json(r, arr != NULL ? json_pack("{s:o,s:b,s:s}", frec->name, arr,
                                                           "truncated", truncated,
                                                           "next_page_token",
                                                           truncated ? token : "")
                                               : NULL);
        } else {
            kyufu_ctl_print_table(r->out, all, k, cmd->columns);
            if (truncated) {
                fprintf(r->err,
                        "kyufuctl: more records: stopped after %zu (--limit %zu); continue "
                        "with --page-token %s\n",
                        n_rec, lo->limit, token);
            }
        }
        free(all);
    }
    free(token);
    for (size_t p = 0; p < n_pages; p++) {
        kyufu_client_response_free(pages[p]);
    }
    return rv;
}

static bool is_required(const struct ledger_cmd *cmd, const char *name)
{
    const char *p = strstr(cmd->required, name);
    size_t nl = strlen(name);
    return p != NULL && (p[nl] == ',' || p[nl] == '\0') && (p == cmd->required || p[-1] == ',');
}

static void command_usage(FILE *out, const struct ledger_cmd *cmd)
{
    const struct kyufu_client_method *m = kyufu_client_method_find(cmd->method);
    assert(m != NULL);
    struct flags fl;
    flags_of(&fl, m->input);
    fprintf(out, "  %s %s", cmd->noun, cmd->verb);
    for (unsigned i = 0; i < fl.n; i++) {
        fprintf(out, is_required(cmd, fl.f[i].name) ? " --%s V" : " [--%s V]", fl.f[i].name);
    }
    if (cmd->columns != NULL) {
        fprintf(out, " [--limit N] [--page-token T]");
    }
    fputc('\n', out);
}

/* What a value of field f looks like, for help. */
static void value_help(const ProtobufCFieldDescriptor *f, char *buf, size_t len)
{
    size_t nl = strlen(f->name);
    if (f->type == PROTOBUF_C_TYPE_ENUM) {
        char choices[256];
        enum_choices(f->descriptor, choices, sizeof choices);
        snprintf(buf, len, "one of: %s (case-insensitive)", choices);
    } else if (f->type == PROTOBUF_C_TYPE_UINT32 && strcmp(f->name, "roles") == 0) {
        snprintf(buf, len, "comma list of: id_admin, clerk, approver, auditor, operator");
    } else if (strcmp(f->name, "transfer_date") == 0) {
        snprintf(buf, len, "date: YYYYMMDD or YYYY-MM-DD");
    } else if (nl > 3 && strcmp(f->name + nl - 3, "_ms") == 0) {
        snprintf(buf, len, "time: ms since the epoch, or YYYY-MM-DD (00:00 in the --tz zone)");
    } else if (f->type == PROTOBUF_C_TYPE_STRING) {
        snprintf(buf, len, "text");
    } else if (f->type == PROTOBUF_C_TYPE_BOOL) {
        snprintf(buf, len, "true or false");
    } else if (f->type == PROTOBUF_C_TYPE_INT64 || f->type == PROTOBUF_C_TYPE_INT32 ||
               f->type == PROTOBUF_C_TYPE_SINT64 || f->type == PROTOBUF_C_TYPE_SINT32) {
        snprintf(buf, len, "integer%s", strstr(f->name, "amount") != NULL ||
                                               strcmp(f->name, "budget") == 0 ||
                                               strcmp(f->name, "delta") == 0
                                           ? " (yen)" : "");
    } else {
        snprintf(buf, len, "integer >= 0");
    }
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = strlen(buf);
        snprintf(buf + n, len - n, "; several as a comma list or a repeated option");
    }
}

/* kyufuctl NOUN VERB --help / kyufuctl help NOUN VERB. */
static void command_help(FILE *out, const struct ledger_cmd *cmd)
{
    const struct kyufu_client_method *m = kyufu_client_method_find(cmd->method);
    assert(m != NULL);
    struct flags fl;
    flags_of(&fl, m->input);
    fprintf(out, "usage: kyufuctl [common options]");
    command_usage(out, cmd);
    fprintf(out, "\nRPC: Ledger.%s (%s)\nrole needed: %s\n\noptions:\n", cmd->method,
            m->kind == KYUFU_CLIENT_WRITE ? "a write: the signed-in account acts"
            : m->kind == KYUFU_CLIENT_SETTLE ? "settles a write: --idempotency-key required"
                                              : "a read",
            cmd->role);
    for (unsigned i = 0; i < fl.n; i++) {
        char v[512];
        value_help(fl.f[i].path[fl.f[i].depth - 1], v, sizeof v);
        fprintf(out, "  --%-22s %s%s\n", fl.f[i].name, v,
                is_required(cmd, fl.f[i].name) ? " (required)" : "");
    }
    if (cmd->columns != NULL) {
        fprintf(out,
                "  --%-22s at most N records (1..%u, default %u); --json says \"truncated\"\n"
                "  %-24s and gives next_page_token when more remain\n"
                "  --%-22s continue a list from a next_page_token\n",
                "limit N", KYUFU_CTL_LIST_RECORDS_MAX, KYUFU_CTL_LIST_RECORDS_MAX, "",
                "page-token T");
    }
    fprintf(out, "\nShown in the --tz zone (default %s), yen as ¥1,234, states by name;\n"
                 "--json keeps proto names, epoch ms and plain integers.\n",
            KYUFU_CTL_TZ_DEFAULT);
}

void ctl__ledger_usage(FILE *out)
{
    for (size_t i = 0; i < N_CMDS; i++) {
        command_usage(out, &cmds[i]);
    }
}

int ctl__ledger(struct ctl__run *r, const char *noun, const char *verb, int argc,
                char **argv)
{
    const struct ledger_cmd *cmd = NULL;
    for (size_t i = 0; i < N_CMDS; i++) {
        if (strcmp(cmds[i].noun, noun) == 0 && strcmp(cmds[i].verb, verb) == 0) {
            cmd = &cmds[i];
        }
    }
    if (cmd == NULL) {
        return -1;
    }
    const struct kyufu_client_method *m = kyufu_client_method_find(cmd->method);
    assert(m != NULL);
    struct flags fl;
    flags_of(&fl, m->input);
    struct option opts[CTL__COMMON_OPTS_N + FLAGS_MAX + 4];
    memcpy(opts, ctl__common_opts, sizeof ctl__common_opts);
    unsigned no = CTL__COMMON_OPTS_N;
    for (unsigned i = 0; i < fl.n; i++) {
        opts[no++] = (struct option){ fl.f[i].name, required_argument, NULL, 0x200 + (int)i };
    }
    if (cmd->columns != NULL) {
        opts[no++] = (struct option){ "limit", required_argument, NULL, OPT_LIMIT };
        opts[no++] = (struct option){ "page-token", required_argument, NULL, OPT_PAGE_TOKEN };
    }
    opts[no++] = (struct option){ "help", no_argument, NULL, 'h' };
    opts[no] = (struct option){ 0 };

    /* Values are parsed once every option is known: --tz (anywhere on the
     * line) and the config's time_zone decide what a YYYY-MM-DD means. */
    struct
    {
        unsigned flag;
        const char *value;
    } pending[PENDING_MAX];
    unsigned n_pending = 0;
    struct list_opts lo = { .limit = KYUFU_CTL_LIST_RECORDS_MAX, .page_token = NULL };
    struct arena a = { .n = 0 };
    ProtobufCMessage *req = new_msg(&a, m->input);
    int rv = req == NULL ? ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory") : 0;
    optind = 0;
    opterr = 0;
    int c;
    while (rv == 0 && (c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        if (c == 'h') {
            command_help(r->out, cmd);
            arena_free(&a);
            return 0;
        }
        if (c == '?' || c == ':') {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                           "%s %s: unknown option or missing value in '%s'", noun, verb,
                           argv[optind - 1]);
        } else if (c == OPT_LIMIT) {
            uint64_t v;
            if (parse_u64(optarg, KYUFU_CTL_LIST_RECORDS_MAX, &v) != 0 || v == 0) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--limit: an integer in [1, %u]",
                               KYUFU_CTL_LIST_RECORDS_MAX);
            }
            lo.limit = (size_t)v;
        } else if (c == OPT_PAGE_TOKEN) {
            if (optarg[0] == '\0' || strlen(optarg) > KYUFU_CTL_PAGE_TOKEN_BYTES_MAX) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                               "--page-token: a next_page_token of 1..%u bytes",
                               KYUFU_CTL_PAGE_TOKEN_BYTES_MAX);
            }
            lo.page_token = optarg;
        } else if (c >= 0x200) {
            if (n_pending == PENDING_MAX) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s %s: more than %u options", noun,
                               verb, PENDING_MAX);
            } else {
                pending[n_pending].flag = (unsigned)(c - 0x200);
                pending[n_pending++].value = optarg;
            }
        } else {
            rv = ctl__common_opt(r, c, optarg);
        }
    }
    if (rv == 0 && optind < argc) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s %s: unexpected argument '%s'", noun, verb,
                       argv[optind]);
    }
    for (unsigned i = 0; rv == 0 && i < n_pending; i++) {
        fl.f[pending[i].flag].seen = true;
    }
    for (unsigned i = 0; rv == 0 && i < fl.n; i++) {
        if (is_required(cmd, fl.f[i].name) && !fl.f[i].seen) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s %s: --%s is required", noun, verb,
                           fl.f[i].name);
        }
    }
    struct kyufu_client *client = NULL;
    if (rv == 0) {
        rv = ctl__client(r, &client);
    }
    for (unsigned i = 0; i < fl.n; i++) {
        fl.f[i].seen = false;
    }
    for (unsigned i = 0; rv == 0 && i < n_pending; i++) {
        rv = set_flag(r, &a, req, &fl.f[pending[i].flag], pending[i].value);
    }
    /* Who acts is the session's account (the node sets it); --as only
     * asserts it (the node refuses a header naming anyone else). */
    bool keyed = m->kind == KYUFU_CLIENT_WRITE || m->kind == KYUFU_CLIENT_SETTLE;
    if (rv == 0 && r->stale) {
        const ProtobufCFieldDescriptor *fr =
            protobuf_c_message_descriptor_get_field_by_name(m->input, "read");
        if (fr == NULL) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--stale applies to reads only");
        } else {
            Kyufu__V1__ReadOptions *ro = (void *)new_msg(&a, &kyufu__v1__read_options__descriptor);
            if (ro == NULL) {
                rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "out of memory");
            } else {
                ro->stale = 1;
                *(Kyufu__V1__ReadOptions **)(void *)((char *)req + fr->offset) = ro;
            }
        }
    }
    if (rv == 0 && r->key_seq != 0 && !keyed) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "--idempotency-key applies to writes only");
    }
    if (rv == 0 && r->key_seq == 0 && m->kind == KYUFU_CLIENT_SETTLE) {
        rv = ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                       "%s %s: --idempotency-key CLIENT_ID:SEQUENCE (the write's key) is "
                       "required", noun, verb);
    }
    /* An explicit key: libkyufu keeps a header that has one (and fills in
     * the actor and terminal), so every attempt and every rerun of this
     * command with the same key is one write. */
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if (rv == 0 && r->key_seq == 0 && m->kind == KYUFU_CLIENT_WRITE) {
        /* Take the key here, not in libkyufu, so that a write whose outcome
         * stays unknown can name it (below) for a later settle. */
        Kyufu__V1__IdempotencyKey next = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
        if (kyufu_client_key_next(client, &next) != 0) {
            rv = ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "cannot take an idempotency key");
        } else {
            snprintf(r->key_id, sizeof r->key_id, "%s", next.client_id);
            r->key_seq = next.sequence;
        }
    }
    if (rv == 0 && r->key_seq != 0) {
        const ProtobufCFieldDescriptor *fh =
            protobuf_c_message_descriptor_get_field_by_name(m->input, "header");
        assert(fh != NULL && fh->type == PROTOBUF_C_TYPE_MESSAGE);
        key.client_id = r->key_id;
        key.sequence = r->key_seq;
        hdr.key = &key;
        hdr.actor = (char *)r->actor;
        *(Kyufu__V1__RequestHeader **)(void *)((char *)req + fh->offset) = &hdr;
    }
    if (rv != 0) {
        arena_free(&a);
        return rv;
    }
    struct kyufu_client_call_opts copts = { .deadline_ms = r->deadline_ms, .endpoint = -1 };
    if (m->input == &kyufu__v1__create_staff_request__descriptor) {
        /* The node hashes the temporary password before proposing (PBKDF2,
         * seconds on a loaded node) and only the first answer of the key
         * carries it: one long attempt, not a repeat that would answer
         * without it. */
        copts.attempt_ms = KYUFU_CTL_AUTH_DEADLINE_MS;
        if (copts.deadline_ms == 0) {
            copts.deadline_ms = KYUFU_CTL_AUTH_DEADLINE_MS;
        }
    }
    if (cmd->columns != NULL) {
        rv = run_list(r, client, cmd, m, req, &copts, &lo);
        arena_free(&a);
        return rv;
    }
    struct kyufu_client_result res;
    int crv = kyufu_client_call(client, m->name, req, m->output, &copts, &res);
    arena_free(&a);
    bool unknown = m->kind == KYUFU_CLIENT_WRITE &&
                   (crv == KYUFU_CLIENT_EUNAVAILABLE || crv == KYUFU_CLIENT_EDEADLINE);
    if (unknown) {
        ctl__repeat_command(r); /* also into the --json error document */
    }
    rv = ctl__call_exit(r, crv, &res);
    if (unknown) {
        fprintf(r->err,
                "kyufuctl: the write may or may not have been applied; its idempotency key "
                "is %s:%llu\n"
                "learn which with\n"
                "  kyufuctl write settle --idempotency-key %s:%llu\n"
                "or repeat it safely (applied at most once) with\n"
                "  %s\n",
                r->key_id, (unsigned long long)r->key_seq, r->key_id,
                (unsigned long long)r->key_seq,
                r->repeat[0] != '\0' ? r->repeat : "(command too long: add the key above)");
    }
    if (rv != 0) {
        kyufu_client_response_free(res.response);
        return rv;
    }
    if (r->json) {
        rv = ctl__emit_json(r, kyufu_ctl_to_json(res.response));
        if (rv == 0 && m->output == &kyufu__v1__settle_write_response__descriptor) {
            rv = settle_exit((const Kyufu__V1__SettleWriteResponse *)res.response);
        }
    } else if (m->output == &kyufu__v1__write_response__descriptor) {
        print_write(r, (const Kyufu__V1__WriteResponse *)res.response);
    } else if (m->output == &kyufu__v1__settle_write_response__descriptor) {
        rv = print_settle(r, (const Kyufu__V1__SettleWriteResponse *)res.response);
    } else if (m->output == &kyufu__v1__verify_audit_response__descriptor) {
        const Kyufu__V1__VerifyAuditResponse *v = (const void *)res.response;
        fprintf(r->out, "audit chain %s: %llu records%s%s\n", v->ok ? "ok" : "BROKEN",
                (unsigned long long)v->records, v->message[0] != '\0' ? ": " : "",
                v->message);
    } else {
        kyufu_ctl_print_record(r->out, res.response, 0);
    }
    if (rv == 0 && m->output == &kyufu__v1__verify_audit_response__descriptor &&
        !((const Kyufu__V1__VerifyAuditResponse *)(const void *)res.response)->ok) {
        fprintf(r->err, "kyufuctl: the audit chain does not verify\n");
        rv = KYUFU_CTL_EXIT_CHECK;
    }
    kyufu_client_response_free(res.response);
    return rv;
}
