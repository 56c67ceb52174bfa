/* Upgrades: the replicated cluster version and the checks that keep an old
 * replica from applying an entry it does not fully know (storage.h
 * "versions"; the rule and the upgrade order in docs/operations.md
 * "Upgrades").
 *
 * Happy path: the leader learns each voter's command-set version and
 * proposes RecordVersions{voters}; apply checks the list, sets the cluster
 * version to max(current, min over voters) and keeps the list for status.
 * Failure modes: a malformed list is rejected (INVALID_ARGUMENT) like any
 * bad body; a list that would raise the cluster version above this build's
 * command set is not a rejection but KYUFU_STORAGE_ENEWER (the node stops
 * with the entry unapplied: its upgraded peers apply it).  The same error
 * comes from check_known for an entry holding a command type or a field
 * this build does not know, and from check_cluster_version for a store or
 * snapshot a newer cluster wrote. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "internal.h"

int kyufu_storage__cluster_version_get(struct kyufu_storage *s,
                                       MDB_txn *txn,
                                       uint32_t *version)
{
    uint64_t v = 0;
    int rv = kyufu_storage__meta_get_u64(s, txn, KYUFU_META_CLUSTER_VERSION,
                                         &v);
    if (rv != 0) {
        return rv;
    }
    if (v > UINT32_MAX) {
        return KYUFU_STORAGE_ECORRUPT;
    }
    /* Absent: no RecordVersions yet; every build that records versions
     * knows command set 1. */
    *version = v == 0 ? 1u : (uint32_t)v;
    KYUFU_ASSERT(*version >= 1);
    return 0;
}

int kyufu_storage__check_cluster_version(struct kyufu_storage *s,
                                         MDB_txn *txn,
                                         char *errmsg,
                                         size_t errmsg_len)
{
    uint32_t cluster = 0;
    int rv = kyufu_storage__cluster_version_get(s, txn, &cluster);
    if (rv != 0) {
        kyufu_storage__errmsg(errmsg, errmsg_len, "read cluster version: %s",
                              kyufu_storage_strerror(rv));
        return rv;
    }
    if (cluster > kyufu_storage_command_version()) {
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "the cluster runs command-set version %u, this "
                              "build knows %u: upgrade this node",
                              (unsigned)cluster,
                              (unsigned)kyufu_storage_command_version());
        return KYUFU_STORAGE_ENEWER;
    }
    return 0;
}

/* ------------------------------------------------------------ known */

/* The first field this build does not know in m or below it: true with
 * its number and message name.  protobuf-c keeps unknown fields aside in
 * each message; a oneof member is looked at only when it is the set one
 * (members share their storage). */
static bool find_unknown(const ProtobufCMessage *m,
                         unsigned depth,
                         uint32_t *field,
                         const char **where)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    if (m->n_unknown_fields > 0) {
        *field = m->unknown_fields[0].tag;
        *where = d->name;
        return true;
    }
    if (depth >= KYUFU_KNOWN_DEPTH_MAX) {
        *field = 0;
        *where = d->name; /* deeper than any message kyufu defines */
        return true;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *base = (const char *)m;
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) {
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            ProtobufCMessage *const *items =
                *(ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t j = 0; j < n; j++) {
                if (find_unknown(items[j], depth + 1, field, where)) {
                    return true;
                }
            }
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0 &&
            *(const uint32_t *)(base + f->quantifier_offset) != f->id) {
            continue;
        }
        const ProtobufCMessage *sub =
            *(const ProtobufCMessage *const *)(base + f->offset);
        if (sub != NULL && find_unknown(sub, depth + 1, field, where)) {
            return true;
        }
    }
    return false;
}

int kyufu_storage__check_known(const Kyufu__V1__CommandBatch *batch,
                               uint64_t index,
                               char *errmsg,
                               size_t errmsg_len)
{
    uint32_t field = 0;
    const char *where = NULL;
    if (batch == NULL) {
        return 0; /* malformed bytes: the same empty batch everywhere */
    }
    for (size_t i = 0; i < batch->n_commands; i++) {
        const Kyufu__V1__Command *cmd = batch->commands[i];
        if (cmd->body_case != KYUFU__V1__COMMAND__BODY__NOT_SET &&
            kyufu_storage_command_since(cmd->body_case) == 0) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "entry %llu command %zu: command type %u is "
                                  "not in this build's command set (version "
                                  "%u)",
                                  (unsigned long long)index, i,
                                  (unsigned)cmd->body_case,
                                  (unsigned)kyufu_storage_command_version());
            return KYUFU_STORAGE_ENEWER;
        }
        if (find_unknown(&cmd->base, 0, &field, &where)) {
            kyufu_storage__errmsg(errmsg, errmsg_len,
                                  "entry %llu command %zu: field %u of %s is "
                                  "unknown to this build (command-set version "
                                  "%u)",
                                  (unsigned long long)index, i,
                                  (unsigned)field, where,
                                  (unsigned)kyufu_storage_command_version());
            return KYUFU_STORAGE_ENEWER;
        }
    }
    if (batch->base.n_unknown_fields > 0) { /* its commands are done */
        kyufu_storage__errmsg(errmsg, errmsg_len,
                              "entry %llu: field %u of CommandBatch is "
                              "unknown to this build",
                              (unsigned long long)index,
                              (unsigned)batch->base.unknown_fields[0].tag);
        return KYUFU_STORAGE_ENEWER;
    }
    return 0;
}

/* ------------------------------------------------------------ commands */

static const char *check_voters(const Kyufu__V1__RecordVersions *r)
{
    if (r->n_voters == 0 || r->n_voters > KYUFU_VOTERS_MAX) {
        return "voters must name 1..16 nodes";
    }
    for (size_t i = 0; i < r->n_voters; i++) {
        const Kyufu__V1__NodeVersion *v = r->voters[i];
        if (v->node_id == 0 || v->command_version == 0) {
            return "each voter needs a node_id and a command_version > 0";
        }
        if (i > 0 && v->node_id <= r->voters[i - 1]->node_id) {
            return "voters must be in ascending node_id order, once each";
        }
    }
    return NULL;
}

int kyufu_storage__record_versions(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__RecordVersions *r = c->cmd->record_versions;
    uint32_t current = 0;
    uint8_t *packed = NULL;
    size_t len = 0;
    int rv;

    kyufu_storage__set_object(c, "cluster/version");
    const char *bad = check_voters(r);
    if (bad != NULL) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "%s", bad);
    }
    rv = kyufu_storage__cluster_version_get(c->s, c->txn, &current);
    if (rv != 0) {
        return rv;
    }
    uint32_t lowest = UINT32_MAX;
    for (size_t i = 0; i < r->n_voters; i++) {
        if (r->voters[i]->command_version < lowest) {
            lowest = r->voters[i]->command_version;
        }
    }
    /* Never lowered: a cluster that used a command type keeps entries that
     * an older build cannot apply (docs/operations.md, downgrades). */
    uint32_t next = lowest > current ? lowest : current;
    if (next > kyufu_storage_command_version()) {
        /* Every voter knows more than this build: its peers apply this
         * entry, so it must not be rejected here; this replica stops. */
        return KYUFU_STORAGE_ENEWER;
    }
    rv = kyufu_storage__meta_put_u64(c->s, c->txn, KYUFU_META_CLUSTER_VERSION,
                                     next);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__pack(&r->base, &packed, &len);
    if (rv != 0) {
        return rv;
    }
    MDB_val k = {strlen(KYUFU_META_VOTER_VERSIONS),
                 (void *)KYUFU_META_VOTER_VERSIONS};
    MDB_val v = {len, packed};
    int mrv = mdb_put(c->txn, c->s->dbi[KYUFU_DB_META], &k, &v, 0);
    free(packed);
    if (mrv != 0) {
        return kyufu_storage__mdb_error(mrv);
    }
    KYUFU_ASSERT(next >= current && next >= 1);
    return 0;
}

int kyufu_storage__annotate(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__Annotate *a = c->cmd->annotate;
    kyufu_storage__set_object(c, "annotation");
    if (!kyufu_storage__valid_text(a->text, 1, KYUFU_ANNOTATION_BYTES_MAX)) {
        return kyufu_storage__reject(c, KYUFU__V1__CODE__INVALID_ARGUMENT,
                                     "text must be 1..200 bytes of text");
    }
    return 0; /* the audit record is the whole effect */
}

/* ------------------------------------------------------------ cache */

int kyufu_storage__versions_read(struct kyufu_storage *s,
                                 MDB_txn *txn,
                                 struct kyufu_storage__versions *out)
{
    MDB_val v;
    memset(out, 0, sizeof *out);
    int rv = kyufu_storage__cluster_version_get(s, txn, &out->cluster);
    if (rv != 0) {
        return rv;
    }
    rv = kyufu_storage__meta_get(s, txn, KYUFU_META_VOTER_VERSIONS, &v);
    if (rv == KYUFU_STORAGE_ENOTFOUND) {
        return 0;
    }
    if (rv != 0) {
        return rv;
    }
    out->voters = malloc(v.mv_size > 0 ? v.mv_size : 1);
    if (out->voters == NULL) {
        return KYUFU_STORAGE_ENOMEM;
    }
    memcpy(out->voters, v.mv_data, v.mv_size);
    out->voters_len = v.mv_size;
    return 0;
}

void kyufu_storage__versions_set(struct kyufu_storage *s,
                                 struct kyufu_storage__versions *v)
{
    KYUFU_ASSERT(v->cluster >= 1);
    free(s->versions.voters);
    s->versions = *v;
    memset(v, 0, sizeof *v);
}

/* ------------------------------------------------------------ query */

int kyufu_storage_cluster_version(struct kyufu_storage *s,
                                  uint32_t *version,
                                  Kyufu__V1__RecordVersions **voters)
{
    KYUFU_ASSERT(s != NULL && version != NULL);
    KYUFU_ASSERT(s->versions.cluster >= 1);
    *version = s->versions.cluster;
    if (voters == NULL) {
        return 0;
    }
    *voters = NULL;
    if (s->versions.voters == NULL) {
        return 0;
    }
    *voters = kyufu__v1__record_versions__unpack(NULL, s->versions.voters_len,
                                                 s->versions.voters);
    /* It was checked before it was written and read back at the cache's
     * fill: only memory can fail here. */
    return *voters == NULL ? KYUFU_STORAGE_ENOMEM : 0;
}
