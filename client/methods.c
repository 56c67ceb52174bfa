/* libkyufu: the method table, derived from the generated service
 * descriptors so that it can never drift from service.proto.  A Ledger
 * method whose input has a `header` field is a write (it carries an
 * idempotency key), except SettleWrite, whose key names the write to settle;
 * the other Ledger methods are reads; Cluster methods are node-local
 * administration; Auth methods are sign-in and account calls (those with a
 * header, an ID administrator's, are keyed writes). */
#include <assert.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "kyufu.h"

#define METHODS_MAX 96u

static struct kyufu_client_method table[METHODS_MAX];
static char paths[METHODS_MAX][96];
static unsigned n_table;
static pthread_once_t once = PTHREAD_ONCE_INIT;

enum service_kind { SVC_LEDGER, SVC_CLUSTER, SVC_AUTH };

static void add_service(const ProtobufCServiceDescriptor *svc, enum service_kind sk)
{
    for (unsigned i = 0; i < svc->n_methods; i++) {
        const ProtobufCMethodDescriptor *m = &svc->methods[i];
        assert(n_table < METHODS_MAX);
        struct kyufu_client_method *e = &table[n_table];
        int n = snprintf(paths[n_table], sizeof paths[n_table], "/%s/%s",
                         svc->name, m->name);
        assert(n > 0 && (size_t)n < sizeof paths[n_table]);
        (void)n;
        e->name = m->name;
        e->path = paths[n_table];
        e->input = m->input;
        e->output = m->output;
        bool has_header =
            protobuf_c_message_descriptor_get_field_by_name(m->input, "header") != NULL;
        if (sk == SVC_CLUSTER) {
            e->kind = KYUFU_CLIENT_ADMIN;
        } else if (sk == SVC_AUTH) {
            /* ResetPassword, UnlockStaff, ResetTotp are keyed writes. */
            e->kind = has_header ? KYUFU_CLIENT_WRITE : KYUFU_CLIENT_AUTH;
        } else if (m->output == &kyufu__v1__settle_write_response__descriptor) {
            e->kind = KYUFU_CLIENT_SETTLE;
        } else if (has_header) {
            e->kind = KYUFU_CLIENT_WRITE;
        } else {
            e->kind = KYUFU_CLIENT_READ;
        }
        n_table++;
    }
}

static void build(void)
{
    add_service(&kyufu__v1__ledger__descriptor, SVC_LEDGER);
    add_service(&kyufu__v1__cluster__descriptor, SVC_CLUSTER);
    add_service(&kyufu__v1__auth__descriptor, SVC_AUTH);
}

const struct kyufu_client_method *kyufu_client_method_find(const char *name)
{
    if (name == NULL) {
        return NULL;
    }
    pthread_once(&once, build);
    for (unsigned i = 0; i < n_table; i++) {
        if (strcmp(table[i].name, name) == 0 ||
            strcmp(table[i].path, name) == 0) {
            return &table[i];
        }
    }
    return NULL;
}
