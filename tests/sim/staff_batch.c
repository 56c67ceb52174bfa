/* See staff_batch.h. */
#include "staff_batch.h"

#include <stdlib.h>

#include "check.h"
#include "kyufu/v1/ledger.pb-c.h"

uint8_t *test_staff_batch(const char *client_id,
                          const char *actor,
                          const char *id,
                          uint64_t seq,
                          size_t *len)
{
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__CreateStaff cs = KYUFU__V1__CREATE_STAFF__INIT;
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    Kyufu__V1__Command *cp = &c;
    Kyufu__V1__CommandBatch b = KYUFU__V1__COMMAND_BATCH__INIT;
    key.client_id = (char *)client_id;
    key.sequence = seq;
    h.actor = (char *)actor;
    h.terminal = "t";
    h.time_ms = 1775001600000 + (int64_t)seq;
    h.key = &key;
    cs.staff_id = (char *)id;
    cs.display_name = (char *)id;
    cs.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    b.n_commands = 1;
    b.commands = &cp;
    *len = kyufu__v1__command_batch__get_packed_size(&b);
    uint8_t *p = malloc(*len);
    CHECK(p != NULL);
    kyufu__v1__command_batch__pack(&b, p);
    return p;
}
