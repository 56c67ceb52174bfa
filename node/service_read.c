/* Reads.  Linearizable by default: on the leader, after a Raft barrier
 * (every entry committed before the call is applied here, and leadership
 * was confirmed by a quorum after it); a follower forwards the call to the
 * leader.  ReadOptions.stale = true serves this node's state at once.
 *
 * Queries run in the storage's own short read transactions; records come
 * back owned by us and are freed after packing.  Pagination tokens are the
 * storage's continuation keys, passed through unchanged.
 *
 * Personal data (issue 8; docs/identity.md "The operation log"): the
 * answers of GetHousehold, ListHouseholds, GetApplication,
 * ListApplications, GetStaff, ListStaff and ListAudit leave the node only
 * once a RecordAccess naming what they return is committed (oplog.h).
 * Only the leader can propose it, so a follower forwards these reads even
 * when they ask for a stale answer (the leader then serves its state at
 * once, without a barrier).  Programs and payment batches (codes, amounts,
 * application ids, staff ids of their makers) hold no personal data: their
 * reads leave no record. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kyufu/v1/service.pb-c.h"
#include "log.h"
#include "offload.h"
#include "oplog.h"
#include "service.h"

/* The caller, for the access record (service.c authenticated it). */
#define PRINCIPAL(c) ((const struct kyufu_principal *)&(c)->principal)

static bool personal(const struct kyufu_node_method *m);

/* ListRequest.page_size: 0 means 100, the storage clamps to [1, max]. */
enum { PAGE_SIZE_DEFAULT = 100 };

static bool wants_stale(const ProtobufCMessage *request)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(request->descriptor,
                                                        "read");
    if (f == NULL) {
        return false;
    }
    const Kyufu__V1__ReadOptions *ro =
        *(Kyufu__V1__ReadOptions *const *)((const char *)request + f->offset);
    return ro != NULL && ro->stale;
}

static void on_barrier(struct kyufu_glue_barrier *req, int status)
{
    struct kyufu_node_call *c = req->data;
    if (status != 0) {
        struct kyufu_node *n = c->node;
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(status));
        kyufu_node__check_fatal(n, status);
        return;
    }
    c->method->read(c);
}

void kyufu_node__read(struct kyufu_node_call *c)
{
    struct kyufu_node *n = c->node;
    bool leader = kyufu_glue_is_leader(n->glue);
    if (wants_stale(c->request) && (leader || !personal(c->method))) {
        c->method->read(c);
        return;
    }
    if (!leader) {
        kyufu_node__forward(c);
        return;
    }
    c->req.barrier.data = c;
    int rv = kyufu_glue_barrier(n->glue, &c->req.barrier, on_barrier);
    if (rv == KYUFU_GLUE_ENOTLEADER) {
        kyufu_node__forward(c);
        return;
    }
    if (rv != 0) {
        kyufu_node__call_unavailable(c, kyufu_glue_strerror(rv));
        kyufu_node__check_fatal(n, rv);
    }
}

/* ------------------------------------------------------------------ gets */

/* Room for one object name, "household/H-001" (storage_limits.h). */
typedef char object_name[KYUFU_OBJECT_BYTES_MAX + 1];

/* Answer with `msg`: at once for a read without personal data (objects
 * NULL), else once the access record naming objects[0..n) committed. */
static void answer(struct kyufu_node_call *c,
                   const ProtobufCMessage *msg,
                   const object_name *objects,
                   size_t n)
{
    if (objects == NULL) {
        kyufu_node__call_done_msg(c, msg);
        return;
    }
    const char *p[KYUFU_LIST_PAGE_SIZE_MAX];
    assert(n <= KYUFU_LIST_PAGE_SIZE_MAX);
    for (size_t i = 0; i < n; i++) {
        p[i] = objects[i];
    }
    kyufu_node__oplog_answer(c, PRINCIPAL(c), msg, p, n);
}

/* A read of personal data that found nothing is a failure the operation
 * log keeps too (issue 8 item 7: someone looked for this person): a
 * RecordAccess with outcome NOT_FOUND naming the object asked for, rate
 * limited as refusals are (oplog.h), proposed without holding the answer,
 * which carries nothing. */
static void not_found_record(struct kyufu_node_call *c, const char *kind,
                             const char *asked)
{
    char why[KYUFU_OBJECT_BYTES_MAX + 32];
    snprintf(why, sizeof why, "%s/%s not found", kind, asked);
    kyufu_node__oplog_refused(c->node, c->call, PRINCIPAL(c),
                              KYUFU_GRPC_NOT_FOUND, why);
}

static const char *u64_text(uint64_t v, char out[24])
{
    snprintf(out, 24, "%llu", (unsigned long long)v);
    return out;
}

/* `fix`: 0, or the answer-side conversion of the record (roles).  `kind`:
 * NULL for a record without personal data, else the object's kind and
 * `id_fmt`/`id` its id; `asked`: the id the request named, as a string
 * (for the record of a read that found nothing). */
#define GET(fn, Req, Rec, rec, call_expr, what, fix, kind, id_fmt, id,       \
            asked)                                                           \
    void kyufu_node__##fn(struct kyufu_node_call *c)                         \
    {                                                                        \
        const Req *r = c->request;                                           \
        Rec *rec = NULL;                                                     \
        object_name object;                                                  \
        char asked_id[24];                                                   \
        (void)asked_id;                                                      \
        int rv = (call_expr);                                                \
        if (rv == KYUFU_STORAGE_ENOTFOUND && (kind) != NULL) {               \
            not_found_record(c, (kind), (asked));                            \
        }                                                                    \
        if (rv != 0) {                                                       \
            kyufu_node__call_storage_error(c, rv, (what));                   \
            return;                                                          \
        }                                                                    \
        if ((fix) != 0) {                                                    \
            kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,          \
                                  "out of memory", NULL, 0);                 \
        } else {                                                             \
            const char *k = (kind);                                          \
            if (k != NULL) {                                                 \
                snprintf(object, sizeof object, "%s/" id_fmt, k, (id));      \
            }                                                                \
            answer(c, &rec->base, k != NULL ? &object : NULL, 1);            \
        }                                                                    \
        protobuf_c_message_free_unpacked(&rec->base, NULL);                  \
    }

GET(get_program, Kyufu__V1__GetProgramRequest, Kyufu__V1__Program, p,
    kyufu_storage_get_program(c->node->storage, r->code, &p), "program", 0,
    NULL, "%s", "", "")
GET(get_household, Kyufu__V1__GetHouseholdRequest, Kyufu__V1__Household, h,
    kyufu_storage_get_household(c->node->storage, r->household_no, &h),
    "household", 0, "household", "%s", h->household_no, r->household_no)
GET(get_application, Kyufu__V1__GetApplicationRequest,
    Kyufu__V1__Application, a,
    kyufu_storage_get_application(c->node->storage, r->id, &a),
    "application", 0, "application", "%llu", (unsigned long long)a->id,
    u64_text(r->id, asked_id))
GET(get_batch, Kyufu__V1__GetPaymentBatchRequest, Kyufu__V1__PaymentBatch, b,
    kyufu_storage_get_batch(c->node->storage, r->id, &b), "payment batch", 0,
    NULL, "%s", "", "")
GET(get_staff, Kyufu__V1__GetStaffRequest, Kyufu__V1__StaffAccount, s,
    kyufu_storage_get_staff(c->node->storage, r->staff_id, &s),
    "staff account", kyufu_node__roles_out(s), "staff", "%s", s->staff_id,
    r->staff_id)
#undef GET

/* ----------------------------------------------------------------- lists */

static size_t page_size(uint32_t requested)
{
    return requested == 0 ? PAGE_SIZE_DEFAULT : requested;
}

/* The object names of a page's items (NULL: items without personal
 * data). */
typedef void (*namer_fn)(const void *item, object_name out);

static void name_household(const void *item, object_name out)
{
    const Kyufu__V1__Household *h = item;
    snprintf(out, sizeof(object_name), "household/%s", h->household_no);
}

static void name_application(const void *item, object_name out)
{
    const Kyufu__V1__Application *a = item;
    snprintf(out, sizeof(object_name), "application/%llu",
             (unsigned long long)a->id);
}

static void name_staff(const void *item, object_name out)
{
    const Kyufu__V1__StaffAccount *s = item;
    snprintf(out, sizeof(object_name), "staff/%s", s->staff_id);
}

/* Pack a list response: `items` go into the repeated field named `field` of
 * `resp`, the continuation into next_page_token.  The page keeps ownership
 * of the items (freed with it).  `namer`: see answer(). */
static void done_page(struct kyufu_node_call *c,
                      ProtobufCMessage *resp,
                      const char *field,
                      struct kyufu_storage_page *page,
                      namer_fn namer)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(resp->descriptor,
                                                        field);
    const ProtobufCFieldDescriptor *next =
        protobuf_c_message_descriptor_get_field_by_name(resp->descriptor,
                                                        "next_page_token");
    assert(f != NULL && f->label == PROTOBUF_C_LABEL_REPEATED);
    assert(next != NULL && next->type == PROTOBUF_C_TYPE_STRING);
    assert(page->n <= KYUFU_LIST_PAGE_SIZE_MAX);
    *(size_t *)((char *)resp + f->quantifier_offset) = page->n;
    *(void ***)((char *)resp + f->offset) = page->items;
    *(char **)((char *)resp + next->offset) = page->next;
    if (namer == NULL) {
        kyufu_node__call_done_msg(c, resp);
    } else {
        object_name *objects = calloc(page->n > 0 ? page->n : 1,
                                      sizeof *objects);
        if (objects == NULL) {
            kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                                  "out of memory", NULL, 0);
        } else {
            for (size_t i = 0; i < page->n; i++) {
                namer(page->items[i], objects[i]);
            }
            answer(c, resp, objects, page->n);
            free(objects);
        }
    }
    kyufu_storage_page_free(page);
}

#define LIST(fn, Resp, RESP_INIT, field, query, namer)                       \
    void kyufu_node__##fn(struct kyufu_node_call *c)                         \
    {                                                                        \
        const Kyufu__V1__ListRequest *r = c->request;                        \
        struct kyufu_storage_page page;                                      \
        memset(&page, 0, sizeof page);                                       \
        int rv = query(c->node->storage, r->page_token,                      \
                       page_size(r->page_size), &page);                      \
        if (rv != 0) {                                                       \
            kyufu_node__call_storage_error(c, rv, "page");                   \
            return;                                                          \
        }                                                                    \
        Resp resp = RESP_INIT;                                               \
        done_page(c, &resp.base, field, &page, namer);                       \
    }

LIST(list_programs, Kyufu__V1__ListProgramsResponse,
     KYUFU__V1__LIST_PROGRAMS_RESPONSE__INIT, "programs",
     kyufu_storage_list_programs, NULL)
LIST(list_households, Kyufu__V1__ListHouseholdsResponse,
     KYUFU__V1__LIST_HOUSEHOLDS_RESPONSE__INIT, "households",
     kyufu_storage_list_households, name_household)
LIST(list_batches, Kyufu__V1__ListPaymentBatchesResponse,
     KYUFU__V1__LIST_PAYMENT_BATCHES_RESPONSE__INIT, "batches",
     kyufu_storage_list_batches, NULL)
#undef LIST

/* ListAudit: the records name staff (actors) and the objects they touched;
 * one object names the page's range, "audit/FIRST-LAST" (none for an
 * empty page). */
void kyufu_node__list_audit(struct kyufu_node_call *c)
{
    const Kyufu__V1__ListRequest *r = c->request;
    struct kyufu_storage_page page;
    memset(&page, 0, sizeof page);
    int rv = kyufu_storage_list_audit(c->node->storage, r->page_token,
                                      page_size(r->page_size), &page);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "page");
        return;
    }
    Kyufu__V1__ListAuditResponse resp = KYUFU__V1__LIST_AUDIT_RESPONSE__INIT;
    resp.n_records = page.n;
    resp.records = (Kyufu__V1__AuditRecord **)page.items;
    resp.next_page_token = page.next;
    object_name range;
    if (page.n > 0) {
        snprintf(range, sizeof range, "audit/%llu-%llu",
                 (unsigned long long)resp.records[0]->seq,
                 (unsigned long long)resp.records[page.n - 1]->seq);
    }
    answer(c, &resp.base, &range, page.n > 0 ? 1 : 0);
    kyufu_storage_page_free(&page);
}

void kyufu_node__list_staff(struct kyufu_node_call *c)
{
    const Kyufu__V1__ListRequest *r = c->request;
    struct kyufu_storage_page page;
    memset(&page, 0, sizeof page);
    int rv = kyufu_storage_list_staff(c->node->storage, r->page_token,
                                      page_size(r->page_size), &page);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "page");
        return;
    }
    for (size_t i = 0; i < page.n; i++) {
        if (kyufu_node__roles_out(page.items[i]) != 0) {
            kyufu_storage_page_free(&page);
            kyufu_node__call_done(c, KYUFU_GRPC_RESOURCE_EXHAUSTED,
                                  "out of memory", NULL, 0);
            return;
        }
    }
    Kyufu__V1__ListStaffResponse resp = KYUFU__V1__LIST_STAFF_RESPONSE__INIT;
    done_page(c, &resp.base, "staff", &page, name_staff);
}

void kyufu_node__list_applications(struct kyufu_node_call *c)
{
    const Kyufu__V1__ListApplicationsRequest *r = c->request;
    struct kyufu_storage_app_filter filter = {
        .program_code = r->program_code,
        .household_no = r->household_no,
        .status = r->status,
    };
    struct kyufu_storage_page page;
    memset(&page, 0, sizeof page);
    int rv = kyufu_storage_list_applications(
        c->node->storage, &filter, r->page_token, page_size(r->page_size),
        &page);
    if (rv != 0) {
        kyufu_node__call_storage_error(c, rv, "page");
        return;
    }
    Kyufu__V1__ListApplicationsResponse resp =
        KYUFU__V1__LIST_APPLICATIONS_RESPONSE__INIT;
    done_page(c, &resp.base, "applications", &page, name_application);
}

struct verify_audit
{
    struct kyufu_node_offload o; /* first: offload.c allocates and frees */
    char errmsg[256];
    uint64_t count;
    int rv;
};

static void verify_run(struct kyufu_node_offload *o)
{
    struct verify_audit *v = (struct verify_audit *)o;
    v->rv = kyufu_storage_snapshot_audit_verify(o->snap, &v->count,
                                                v->errmsg, sizeof v->errmsg);
}

static void verify_done(struct kyufu_node_offload *o)
{
    struct verify_audit *v = (struct verify_audit *)o;
    if (v->rv != 0 && v->rv != KYUFU_STORAGE_ECORRUPT) {
        kyufu_node__call_storage_error(o->call, v->rv, "audit chain");
        return;
    }
    Kyufu__V1__VerifyAuditResponse resp =
        KYUFU__V1__VERIFY_AUDIT_RESPONSE__INIT;
    resp.ok = v->rv == 0;
    resp.records = v->count;
    resp.message = v->errmsg;
    kyufu_node__call_done_msg(o->call, &resp.base);
}

/* A walk of the whole chain: off the loop thread (offload.h). */
void kyufu_node__verify_audit(struct kyufu_node_call *c)
{
    kyufu_node__offload(c, sizeof(struct verify_audit), verify_run,
                        verify_done, "audit chain");
}

static bool personal(const struct kyufu_node_method *m)
{
    static void (*const reads[])(struct kyufu_node_call *) = {
        kyufu_node__get_household, kyufu_node__list_households,
        kyufu_node__get_application, kyufu_node__list_applications,
        kyufu_node__get_staff, kyufu_node__list_staff,
        kyufu_node__list_audit,
    };
    for (size_t i = 0; i < sizeof reads / sizeof reads[0]; i++) {
        if (m->read == reads[i]) {
            return true;
        }
    }
    return false;
}
