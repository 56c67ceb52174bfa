/* See staff_batch.h. */
#include "staff_batch.h"

#include <stdlib.h>

#include "check.h"
#include "kyufu/v1/ledger.pb-c.h"

static uint8_t *pack_one(Kyufu__V1__Command *c, size_t *len)
{
    Kyufu__V1__CommandBatch b = KYUFU__V1__COMMAND_BATCH__INIT;
    b.n_commands = 1;
    b.commands = &c;
    *len = kyufu__v1__command_batch__get_packed_size(&b);
    uint8_t *p = malloc(*len);
    CHECK(p != NULL);
    kyufu__v1__command_batch__pack(&b, p);
    return p;
}

/* The header both batches carry: key (client_id, seq), terminal "t", time
 * 1775001600000 + seq ms. */
static void header(Kyufu__V1__CommandHeader *h, Kyufu__V1__IdempotencyKey *key,
                   const char *client_id, const char *actor, uint64_t seq)
{
    key->client_id = (char *)client_id;
    key->sequence = seq;
    h->actor = (char *)actor;
    h->terminal = "t";
    h->time_ms = 1775001600000 + (int64_t)seq;
    h->key = key;
}

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
    header(&h, &key, client_id, actor, seq);
    cs.staff_id = (char *)id;
    cs.display_name = (char *)id;
    cs.roles_mask = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_CREATE_STAFF;
    c.create_staff = &cs;
    return pack_one(&c, len);
}

uint8_t *test_versions_batch(uint64_t seq, uint32_t command_version,
                             size_t *len)
{
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    Kyufu__V1__CommandHeader h = KYUFU__V1__COMMAND_HEADER__INIT;
    Kyufu__V1__NodeVersion v[3];
    Kyufu__V1__NodeVersion *vp[3];
    Kyufu__V1__RecordVersions rv = KYUFU__V1__RECORD_VERSIONS__INIT;
    Kyufu__V1__Command c = KYUFU__V1__COMMAND__INIT;
    for (unsigned i = 0; i < 3; i++) {
        kyufu__v1__node_version__init(&v[i]);
        v[i].node_id = i + 1;
        v[i].command_version = command_version;
        vp[i] = &v[i];
    }
    rv.voters = vp;
    rv.n_voters = 3;
    header(&h, &key, "kyufu-node-1", "kyufu-node-1", seq);
    c.header = &h;
    c.body_case = KYUFU__V1__COMMAND__BODY_RECORD_VERSIONS;
    c.record_versions = &rv;
    return pack_one(&c, len);
}
