/* grpc.health.v1.Health served by the connection itself from a small table
 * the node sets.  Check answers the status of a known service, NOT_FOUND for
 * an unknown one (health-checking.md), INVALID_ARGUMENT for a request that
 * does not parse.  Watch answers one message with the current status and OK
 * (SERVICE_UNKNOWN for an unknown service): a stock client sees one update
 * and then the end of the stream, and re-watches. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"

#include "grpc.h"
#include "grpc_limits.h"
#include "internal.h"

struct entry
{
    char name[KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX + 1];
    enum kyufu_grpc_health_status status;
};

struct kyufu_grpc_health
{
    struct entry entries[KYUFU_GRPC_HEALTH_SERVICES_MAX];
    size_t n;
};

int kyufu_grpc_health_new(struct kyufu_grpc_health **out)
{
    struct kyufu_grpc_health *h = calloc(1, sizeof *h);
    if (h == NULL) {
        return KYUFU_API_ENOMEM;
    }
    /* The whole server exists from the start, not serving until told. */
    h->entries[0].name[0] = '\0';
    h->entries[0].status = KYUFU_GRPC_HEALTH_NOT_SERVING;
    h->n = 1;
    *out = h;
    return 0;
}

void kyufu_grpc_health_free(struct kyufu_grpc_health *health)
{
    free(health);
}

static struct entry *find(const struct kyufu_grpc_health *h, const char *service)
{
    for (size_t i = 0; i < h->n; i++) {
        if (strcmp(h->entries[i].name, service) == 0) {
            return (struct entry *)&h->entries[i];
        }
    }
    return NULL;
}

int kyufu_grpc_health_set(struct kyufu_grpc_health *health,
                          const char *service,
                          enum kyufu_grpc_health_status status)
{
    assert(health != NULL);
    if (service == NULL || strlen(service) > KYUFU_GRPC_HEALTH_SERVICE_BYTES_MAX ||
        (status != KYUFU_GRPC_HEALTH_SERVING && status != KYUFU_GRPC_HEALTH_NOT_SERVING &&
         status != KYUFU_GRPC_HEALTH_UNKNOWN)) {
        return KYUFU_API_EINVALID;
    }
    struct entry *e = find(health, service);
    if (e == NULL) {
        if (health->n == KYUFU_GRPC_HEALTH_SERVICES_MAX) {
            return KYUFU_API_ELIMIT;
        }
        e = &health->entries[health->n++];
        strcpy(e->name, service);
    }
    e->status = status;
    return 0;
}

enum kyufu_grpc_health_status kyufu_grpc_health_get(const struct kyufu_grpc_health *health,
                                                    const char *service)
{
    const struct entry *e = find(health, service != NULL ? service : "");
    return e != NULL ? e->status : KYUFU_GRPC_HEALTH_UNKNOWN;
}

void api__health_serve(struct kyufu_grpc_health *health, struct kyufu_grpc_call *call)
{
    assert(health != NULL && call != NULL);
    bool watch = strcmp(call->method, API__HEALTH_WATCH) == 0;
    char why[160];
    if (kyufu_pb_check_known(&grpc__health__v1__health_check_request__descriptor,
                             call->request, call->request_len, why,
                             sizeof why) != 0) {
        kyufu_grpc_call_respond(call, KYUFU_GRPC_INVALID_ARGUMENT, why, NULL,
                                0);
        return;
    }
    Grpc__Health__V1__HealthCheckRequest *req =
        grpc__health__v1__health_check_request__unpack(NULL, call->request_len, call->request);
    if (req == NULL) {
        kyufu_grpc_call_respond(call, KYUFU_GRPC_INVALID_ARGUMENT,
                                "HealthCheckRequest does not parse", NULL, 0);
        return;
    }
    const struct entry *e = find(health, req->service);
    grpc__health__v1__health_check_request__free_unpacked(req, NULL);
    if (e == NULL && !watch) {
        kyufu_grpc_call_respond(call, KYUFU_GRPC_NOT_FOUND, "unknown service", NULL, 0);
        return;
    }
    Grpc__Health__V1__HealthCheckResponse resp = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
    resp.status = e != NULL ? (Grpc__Health__V1__HealthCheckResponse__ServingStatus)e->status
                            : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
    uint8_t buf[16];
    size_t n = grpc__health__v1__health_check_response__get_packed_size(&resp);
    assert(n <= sizeof buf);
    grpc__health__v1__health_check_response__pack(&resp, buf);
    kyufu_grpc_call_respond(call, KYUFU_GRPC_OK, NULL, buf, n);
}
