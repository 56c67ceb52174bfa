/* Payment batch commands: CreatePaymentBatch, ConfirmPaymentBatch.
 * A batch is immutable once created; confirming it pays every application in
 * it (APPROVED → PAID) and moves the total from reserved to paid. */
#include <stdlib.h>
#include <string.h>

#include "internal.h"

#define AS(x) KYUFU__V1__APPLICATION_STATUS__APP_##x
#define BS(x) KYUFU__V1__BATCH_STATUS__BATCH_##x
#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define PRECONDITION KYUFU__V1__CODE__FAILED_PRECONDITION
#define REJECT kyufu_storage__reject

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a;
    uint64_t y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* Field rules of application_ids: 1..1000 entries, each > 0, distinct. */
static const char *check_ids(const uint64_t *ids, size_t n, int *nomem)
{
    uint64_t *sorted;
    const char *why = NULL;
    *nomem = 0;
    if (n == 0 || n > KYUFU_BATCH_APPLICATIONS_MAX) {
        return "application_ids must have 1..1000 entries";
    }
    sorted = malloc(n * sizeof *sorted);
    if (sorted == NULL) {
        *nomem = 1;
        return NULL;
    }
    memcpy(sorted, ids, n * sizeof *sorted);
    qsort(sorted, n, sizeof *sorted, cmp_u64);
    if (sorted[0] == 0) {
        why = "application ids must be > 0";
    }
    for (size_t i = 1; why == NULL && i < n; i++) {
        if (sorted[i] == sorted[i - 1]) {
            why = "application_ids has duplicates";
        }
    }
    free(sorted);
    return why;
}

int kyufu_storage__create_payment_batch(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__CreatePaymentBatch *b = c->cmd->create_payment_batch;
    Kyufu__V1__Application **apps = NULL;
    size_t loaded = 0;
    int64_t total = 0;
    uint64_t id = 0;
    int nomem;
    int rv = 0;
    const char *why;

    if (!kyufu_storage__valid_program_code(b->program_code)) {
        return REJECT(c, INVALID, "program_code must be 1..32 of [A-Za-z0-9_-]");
    }
    if (!kyufu_storage__valid_date(b->transfer_date)) {
        return REJECT(c, INVALID, "transfer_date must be a date YYYYMMDD");
    }
    why = check_ids(b->application_ids, b->n_application_ids, &nomem);
    if (nomem) {
        return KYUFU_STORAGE_ENOMEM;
    }
    if (why != NULL) {
        return REJECT(c, INVALID, "%s", why);
    }
    apps = calloc(b->n_application_ids, sizeof *apps);
    if (apps == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    for (size_t i = 0; i < b->n_application_ids; i++, loaded++) {
        uint64_t aid = b->application_ids[i];
        rv = kyufu_storage__get_application(c->s, c->txn, aid, &apps[i]);
        if (rv == KYUFU_STORAGE_ENOTFOUND) {
            rv = REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no application %llu",
                        (unsigned long long)aid);
            goto out;
        }
        if (rv != 0) {
            goto out;
        }
        const Kyufu__V1__Application *a = apps[i];
        if (strcmp(a->program_code, b->program_code) != 0) {
            rv = REJECT(c, INVALID, "application %llu is not in program %s",
                        (unsigned long long)aid, b->program_code);
            goto out;
        }
        if (a->status != AS(APPROVED) || a->batch_id != 0) {
            rv = REJECT(c, PRECONDITION,
                        "application %llu is not approved or already in a "
                        "batch",
                        (unsigned long long)aid);
            goto out;
        }
        if (!kyufu_storage__add_ok(total, a->amount, &total)) {
            rv = REJECT(c, INVALID, "batch total overflows");
            goto out;
        }
    }
    rv = kyufu_storage__meta_get_u64(c->s, c->txn, KYUFU_META_NEXT_BATCH_ID,
                                     &id);
    if (rv != 0) {
        goto out;
    }
    id = id == 0 ? 1 : id;
    rv = kyufu_storage__meta_put_u64(c->s, c->txn, KYUFU_META_NEXT_BATCH_ID,
                                     id + 1);
    for (size_t i = 0; rv == 0 && i < loaded; i++) {
        Kyufu__V1__Application a = *apps[i];
        a.batch_id = id;
        rv = kyufu_storage__put_application(c->s, c->txn, apps[i], &a);
        if (rv == 0) {
            rv = kyufu_storage__touch_app(c, a.id);
        }
    }
    if (rv != 0) {
        goto out;
    }
    Kyufu__V1__PaymentBatch batch = KYUFU__V1__PAYMENT_BATCH__INIT;
    batch.id = id;
    batch.program_code = b->program_code;
    batch.transfer_date = b->transfer_date;
    batch.n_application_ids = b->n_application_ids;
    batch.application_ids = b->application_ids;
    batch.total_amount = total;
    batch.status = BS(CREATED);
    batch.created_by = (char *)c->actor;
    batch.created_ms = c->now_ms;
    kyufu_storage__set_object(c, "batch/%llu", (unsigned long long)id);
    rv = kyufu_storage__put_batch(c->s, c->txn, &batch);
    if (rv == 0) {
        rv = kyufu_storage__touch_batch(c, id);
    }
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 13, &batch.base);
    }
out:
    for (size_t i = 0; i < b->n_application_ids; i++) {
        if (apps[i] != NULL) {
            kyufu__v1__application__free_unpacked(apps[i], NULL);
        }
    }
    free(apps);
    return rv;
}

int kyufu_storage__confirm_payment_batch(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__ConfirmPaymentBatch *b = c->cmd->confirm_payment_batch;
    Kyufu__V1__PaymentBatch *old = NULL;
    Kyufu__V1__Program *p = NULL;
    int64_t sum = 0;
    int rv;
    if (b->id == 0) {
        return REJECT(c, INVALID, "id must be > 0");
    }
    rv = kyufu_storage__get_batch(c->s, c->txn, b->id, &old);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no batch %llu",
                      (unsigned long long)b->id);
    }
    if (rv != 0) {
        return rv;
    }
    if (strcmp(old->created_by, c->actor) == 0) {
        rv = REJECT(c, KYUFU__V1__CODE__PERMISSION_DENIED,
                    "the creator of a batch cannot confirm it");
        goto out;
    }
    if (old->status != BS(CREATED)) {
        rv = REJECT(c, PRECONDITION, "batch %llu is already confirmed",
                    (unsigned long long)b->id);
        goto out;
    }
    for (size_t i = 0; i < old->n_application_ids; i++) {
        Kyufu__V1__Application *a = NULL;
        rv = kyufu_storage__get_application(c->s, c->txn,
                                            old->application_ids[i], &a);
        if (rv != 0) {
            rv = rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
            goto out;
        }
        /* Immutable batch: its applications are approved and ours. */
        KYUFU_ASSERT(a->status == AS(APPROVED) && a->batch_id == b->id);
        Kyufu__V1__Application na = *a;
        na.status = AS(PAID);
        na.paid_ms = c->now_ms;
        sum += a->amount;
        rv = kyufu_storage__put_application(c->s, c->txn, a, &na);
        if (rv == 0) {
            rv = kyufu_storage__touch_app(c, na.id);
        }
        kyufu__v1__application__free_unpacked(a, NULL);
        if (rv != 0) {
            goto out;
        }
    }
    KYUFU_ASSERT(sum == old->total_amount);
    rv = kyufu_storage__get_program(c->s, c->txn, old->program_code, &p);
    if (rv != 0) {
        rv = rv == KYUFU_STORAGE_ENOTFOUND ? KYUFU_STORAGE_ECORRUPT : rv;
        goto out;
    }
    Kyufu__V1__Program np = *p;
    KYUFU_ASSERT(np.reserved >= sum);
    np.reserved -= sum;
    np.paid += sum;
    rv = kyufu_storage__put_program(c->s, c->txn, &np);
    if (rv == 0) {
        rv = kyufu_storage__touch_program(c, np.code);
    }
    if (rv != 0) {
        goto out;
    }
    Kyufu__V1__PaymentBatch nb = *old;
    KYUFU_ASSERT(kyufu_storage__batch_transition_ok(old->status,
                                                    BS(CONFIRMED)));
    nb.status = BS(CONFIRMED);
    nb.confirmed_by = (char *)c->actor;
    nb.confirmed_ms = c->now_ms;
    rv = kyufu_storage__put_batch(c->s, c->txn, &nb);
    if (rv == 0) {
        rv = kyufu_storage__touch_batch(c, nb.id);
    }
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 13, &nb.base);
    }
out:
    if (p != NULL) {
        kyufu__v1__program__free_unpacked(p, NULL);
    }
    kyufu__v1__payment_batch__free_unpacked(old, NULL);
    return rv;
}
