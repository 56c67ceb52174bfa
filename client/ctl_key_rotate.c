/* kyufuctl key rotate and key status (docs/encryption.md "Rotation",
 * docs/kyufuctl.md): an operator's Cluster.RotateKeys, and every node's
 * Cluster.GetKeyStatus (the active data-key version, the re-encryption
 * cursor, and with --census the stored values per version). */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kyufu.h"

enum { OPT_TO = 0x600, OPT_CENSUS, OPT_HELP };

void ctl__key_rotate_usage(FILE *out)
{
    fprintf(out,
            "  key rotate [--to N]\n"
            "               make the next data-key version active at once (N: must be the\n"
            "               next one); older values are re-encrypted in the background\n"
            "  key status [--census]\n"
            "               each node's active data-key version and re-encryption progress;\n"
            "               --census counts its stored values per version (a full scan)\n");
}

static int key_rotate(struct ctl__run *r, uint32_t to)
{
    const char *cmd = "key rotate";
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    Kyufu__V1__RequestHeader hdr = KYUFU__V1__REQUEST_HEADER__INIT;
    Kyufu__V1__IdempotencyKey key = KYUFU__V1__IDEMPOTENCY_KEY__INIT;
    if ((rv = ctl__op_header(r, c, &hdr, &key)) != 0) {
        return rv;
    }
    Kyufu__V1__RotateKeys body = KYUFU__V1__ROTATE_KEYS__INIT;
    body.version = to;
    Kyufu__V1__RotateKeysRequest req = KYUFU__V1__ROTATE_KEYS_REQUEST__INIT;
    req.header = &hdr;
    req.command = &body;
    uint64_t index = 0;
    if ((rv = ctl__op_write(r, c, cmd, "RotateKeys", &req.base, &index)) != 0) {
        return rv;
    }
    if (r->json) {
        return ctl__emit_json(r, json_pack("{s:I}", "raft_index", (json_int_t)index));
    }
    fprintf(r->out,
            "rotated at raft index %llu: new values use the next data-key version now;\n"
            "older ones are re-encrypted in the background (kyufuctl key status)\n",
            (unsigned long long)index);
    return 0;
}

/* A string from a node, shown on the terminal in at most this many
 * columns (control characters as '?'). */
#define KEY_STATUS_TEXT_COLUMNS 64u

static void print_status(struct ctl__run *r, const char *ep, const Kyufu__V1__KeyStatus *st)
{
    char db[256], by[256];
    if (!st->encrypted) {
        fprintf(r->out, "%-22s encryption at rest is off (no [keys])\n", ep);
        return;
    }
    const Kyufu__V1__KeyRotation *x = st->rotation;
    fprintf(r->out, "%-22s %6u %10llu  ", ep, (unsigned)st->active_version,
            (unsigned long long)st->applied_index);
    if (x == NULL) {
        fprintf(r->out, "never rotated\n");
    } else if (x->done) {
        fprintf(r->out, "version %u: done at raft index %llu, %llu values re-sealed",
                (unsigned)x->version, (unsigned long long)x->done_index,
                (unsigned long long)x->resealed);
    } else {
        fprintf(r->out, "version %u: in progress in %s, %llu values re-sealed so far",
                (unsigned)x->version, kyufu_ctl_text_clip(st->cursor_db, KEY_STATUS_TEXT_COLUMNS, db, sizeof db),
                (unsigned long long)x->resealed);
    }
    if (x != NULL) {
        fprintf(r->out, " (rotated by %s at raft index %llu)\n",
                kyufu_ctl_text_clip(x->rotated_by, KEY_STATUS_TEXT_COLUMNS, by, sizeof by), (unsigned long long)x->rotated_index);
    }
    if (st->seals_counted) {
        fprintf(r->out, "%-22s seals under version %u: %llu of %llu (it rotates by itself there)\n",
                "", (unsigned)st->active_version, (unsigned long long)st->seals,
                (unsigned long long)st->seal_limit);
    } else {
        fprintf(r->out, "%-22s seals: not counted below cluster version 6\n", "");
    }
    if (st->n_census > 0) {
        fprintf(r->out, "%-22s census:", "");
        for (size_t i = 0; i < st->n_census; i++) {
            const Kyufu__V1__KeyVersionCount *k = st->census[i];
            if (k->version == 0) {
                fprintf(r->out, " plaintext %llu", (unsigned long long)k->values);
            } else {
                fprintf(r->out, " v%u %llu", (unsigned)k->version,
                        (unsigned long long)k->values);
            }
        }
        fprintf(r->out, "\n");
    }
}

static int key_status(struct ctl__run *r, bool census)
{
    struct kyufu_client *c;
    int rv = ctl__client(r, &c);
    if (rv != 0) {
        return rv;
    }
    unsigned n_ep = kyufu_client_endpoint_count(c);
    Kyufu__V1__GetKeyStatusRequest req = KYUFU__V1__GET_KEY_STATUS_REQUEST__INIT;
    req.census = census;
    int crvs[KYUFU_CLIENT_ENDPOINTS_MAX];
    struct kyufu_client_result results[KYUFU_CLIENT_ENDPOINTS_MAX];
    rv = kyufu_client_call_each(c, "GetKeyStatus", &req.base,
                                &kyufu__v1__key_status__descriptor, r->deadline_ms, crvs,
                                results);
    if (rv != 0) {
        return ctl__fail(r, KYUFU_CTL_EXIT_LOCAL, "key status: %s", kyufu_client_strerror(rv));
    }
    json_t *nodes = json_array();
    unsigned answered = 0;
    int failed = -1; /* the first node that did not answer OK */
    if (!r->json) {
        fprintf(r->out, "%-22s %6s %10s  %s\n", "ENDPOINT", "ACTIVE", "APPLIED",
                "RE-ENCRYPTION");
    }
    for (unsigned i = 0; i < n_ep; i++) {
        const char *ep = kyufu_client_endpoint(c, i);
        struct kyufu_client_result *res = &results[i];
        const Kyufu__V1__KeyStatus *st = NULL;
        if (crvs[i] == 0 && res->grpc_status == KYUFU_GRPC_OK) {
            st = (const Kyufu__V1__KeyStatus *)res->response;
            answered++;
        } else if (failed < 0) {
            failed = (int)i;
        }
        if (r->json) {
            json_t *o = st != NULL ? kyufu_ctl_to_json(&st->base) : json_object();
            if (o != NULL) {
                json_object_set_new(o, "endpoint", json_string(ep));
                json_object_set_new(o, "reachable", json_boolean(st != NULL));
                if (st == NULL) {
                    json_object_set_new(o, "error", json_string(res->message));
                }
                json_array_append_new(nodes, o);
            }
        } else if (st != NULL) {
            print_status(r, ep, st);
        } else {
            fprintf(r->out, "%-22s did not answer: %s\n", ep, res->message);
        }
        kyufu_client_response_free(res->response);
    }
    if (r->json) {
        rv = ctl__emit_json(r, json_pack("{s:o}", "nodes", nodes));
    } else {
        json_decref(nodes);
        rv = 0;
    }
    if (answered == 0 && failed >= 0) {
        /* Why (a refused role, no session, nothing reachable), as for any
         * call; its response, if any, is freed above. */
        results[failed].response = NULL;
        return ctl__call_exit(r, crvs[failed], &results[failed]);
    }
    return rv;
}

int ctl__key_rotate(struct ctl__run *r, const char *verb, int argc, char **argv)
{
    bool rotate = strcmp(verb, "rotate") == 0;
    if (!rotate && strcmp(verb, "status") != 0) {
        return -1;
    }
    const char *cmd = rotate ? "key rotate" : "key status";
    static const struct option extra[] = {
        { "to", required_argument, NULL, OPT_TO },
        { "census", no_argument, NULL, OPT_CENSUS },
        { "help", no_argument, NULL, OPT_HELP },
    };
    enum { N_EXTRA = sizeof extra / sizeof extra[0] };
    struct option opts[CTL__COMMON_OPTS_N + N_EXTRA + 1];
    ctl__opts_join(opts, extra, N_EXTRA);
    uint32_t to = 0;
    bool census = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "+", opts, NULL)) != -1) {
        int rv = 0;
        if ((c == OPT_TO && !rotate) || (c == OPT_CENSUS && rotate)) {
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: '%s' is not an option of %s", cmd,
                             argv[optind - 1], cmd);
        }
        switch (c) {
        case OPT_HELP:
            ctl__key_rotate_usage(r->out);
            return 0;
        case '?':
        case ':':
            return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                             "%s: unknown option or missing value in '%s'", cmd,
                             argv[optind - 1]);
        case OPT_TO: {
            char *end = NULL;
            errno = 0;
            unsigned long v = strtoul(optarg, &end, 10);
            if (optarg[0] < '1' || optarg[0] > '9' || *end != '\0' || errno != 0 ||
                v < 2 || v > UINT32_MAX) {
                return ctl__fail(r, KYUFU_CTL_EXIT_USAGE,
                                 "%s: --to '%s' is not a key version (2..%u)", cmd, optarg,
                                 (unsigned)UINT32_MAX);
            }
            to = (uint32_t)v;
            break;
        }
        case OPT_CENSUS:
            census = true;
            break;
        default:
            rv = ctl__common_opt(r, c, optarg);
        }
        if (rv != 0) {
            return rv;
        }
    }
    if (optind < argc) {
        return ctl__fail(r, KYUFU_CTL_EXIT_USAGE, "%s: unexpected argument '%s'", cmd,
                         argv[optind]);
    }
    return rotate ? key_rotate(r, to) : key_status(r, census);
}
