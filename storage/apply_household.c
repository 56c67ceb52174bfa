/* Household commands: RegisterHousehold, UpdateHousehold.  Personal data:
 * stored only through the household seam in records.c. */
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject

static int check(struct kyufu_storage__cmd *c, const Kyufu__V1__Household *h)
{
    const char *why;
    if (h == NULL) {
        return REJECT(c, INVALID, "household is required");
    }
    why = kyufu_storage__check_household_fields(h);
    if (why != NULL) {
        return REJECT(c, INVALID, "%s", why);
    }
    return 0;
}

static int store(struct kyufu_storage__cmd *c, const Kyufu__V1__Household *h)
{
    int rv = kyufu_storage__put_household(c->s, c->txn, h);
    if (rv == 0) {
        rv = kyufu_storage__set_record(c, 11, &h->base);
    }
    return rv;
}

int kyufu_storage__register_household(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Household *in = c->cmd->register_household->household;
    Kyufu__V1__Household *old = NULL;
    int rv = check(c, in);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    rv = kyufu_storage__get_household(c->s, c->txn, in->household_no, &old);
    if (rv == 0) {
        kyufu__v1__household__free_unpacked(old, NULL);
        return REJECT(c, KYUFU__V1__CODE__ALREADY_EXISTS,
                      "household %s exists", in->household_no);
    }
    if (rv != KYUFU_STORAGE_ENOTFOUND) {
        return rv;
    }
    Kyufu__V1__Household h = *in; /* shallow: borrowed from the command */
    h.registered_ms = c->now_ms;
    h.updated_ms = c->now_ms;
    h.version = 1;
    return store(c, &h);
}

int kyufu_storage__update_household(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Household *in = c->cmd->update_household->household;
    Kyufu__V1__Household *old = NULL;
    int rv = check(c, in);
    if (rv != 0 || c->code != KYUFU__V1__CODE__OK) {
        return rv;
    }
    rv = kyufu_storage__get_household(c->s, c->txn, in->household_no, &old);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return REJECT(c, KYUFU__V1__CODE__NOT_FOUND, "no household %s",
                      in->household_no);
    }
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__Household h = *in;
    h.registered_ms = old->registered_ms;
    h.updated_ms = c->now_ms;
    h.version = old->version + 1;
    rv = store(c, &h);
    kyufu__v1__household__free_unpacked(old, NULL);
    return rv;
}
