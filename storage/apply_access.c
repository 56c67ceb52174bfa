/* RecordAccess (issue 8; identity.proto, docs/identity.md "The operation
 * log"): an audit record of what is not a write (a read that returned
 * personal data, a refused call, a TLS refusal).  It changes no state but
 * the audit chain.
 *
 * The audit record: command "RecordAccess", actor the principal ("" for an
 * unauthenticated call), object the first object returned (else the method
 * path), outcome the call's Code, message "<method> from <peer> cert
 * <subject> session/<N>: <why>" (cut at the message bound), and the full
 * object list in AuditRecord.objects.  The command's own result is OK when
 * the record is well-formed.
 */
#include <stdio.h>
#include <string.h>

#include "internal.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define REJECT kyufu_storage__reject

static bool valid_code(uint32_t code)
{
    switch (code) {
    case KYUFU__V1__CODE__OK:
    case KYUFU__V1__CODE__INVALID_ARGUMENT:
    case KYUFU__V1__CODE__NOT_FOUND:
    case KYUFU__V1__CODE__ALREADY_EXISTS:
    case KYUFU__V1__CODE__PERMISSION_DENIED:
    case KYUFU__V1__CODE__RESOURCE_EXHAUSTED:
    case KYUFU__V1__CODE__FAILED_PRECONDITION:
    case KYUFU__V1__CODE__ABORTED:
    case KYUFU__V1__CODE__INTERNAL:
        return true;
    default:
        return false;
    }
}

/* A string cut by snprintf may end inside a UTF-8 sequence: drop it. */
static void utf8_trim(char *s)
{
    size_t n = strlen(s);
    size_t i = n;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
    }
    if (i == 0) {
        return;
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t want = lead < 0x80 ? 1 : lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : 2;
    if (n - (i - 1) < want) {
        s[i - 1] = '\0';
    }
}

int kyufu_storage__record_access(struct kyufu_storage__cmd *c)
{
    const Kyufu__V1__RecordAccess *b = c->cmd->record_access;
    if (!kyufu_storage__valid_printable(b->method, 1,
                                        KYUFU_ACCESS_METHOD_BYTES_MAX)) {
        return REJECT(c, INVALID, "method must be 1..128 printable bytes");
    }
    if (b->n_objects > KYUFU_ACCESS_OBJECTS_MAX) {
        return REJECT(c, INVALID, "at most %u objects",
                      KYUFU_ACCESS_OBJECTS_MAX);
    }
    for (size_t i = 0; i < b->n_objects; i++) {
        if (!kyufu_storage__valid_printable(b->objects[i], 1,
                                            KYUFU_OBJECT_BYTES_MAX - 1)) {
            return REJECT(c, INVALID, "object %zu must be 1..95 printable "
                                      "bytes",
                          i);
        }
    }
    if (!valid_code(b->outcome)) {
        return REJECT(c, INVALID, "outcome %u is not a Code", b->outcome);
    }
    if (!kyufu_storage__valid_text(b->message, 0, KYUFU_REASON_BYTES_MAX) ||
        !kyufu_storage__valid_printable(b->peer, 0,
                                        KYUFU_ACCESS_PEER_BYTES_MAX) ||
        !kyufu_storage__valid_text(b->certificate, 0,
                                   KYUFU_ACCESS_CERT_BYTES_MAX)) {
        return REJECT(c, INVALID, "message, peer or certificate too long or "
                                  "not text");
    }
    if (b->cert_sha256.len != 0 && b->cert_sha256.len != KYUFU_SHA256_BYTES) {
        return REJECT(c, INVALID, "cert_sha256 must be empty or 32 bytes");
    }
    kyufu_storage__set_object(c, "%s",
                              b->n_objects > 0 ? b->objects[0] : b->method);
    c->audit_set = true;
    c->audit_code = (Kyufu__V1__Code)b->outcome;
    char session[32] = "";
    if (b->session != 0) {
        snprintf(session, sizeof session, " session/%llu",
                 (unsigned long long)b->session);
    }
    /* Cut at the bound: the method and peer come first, they matter most. */
    snprintf(c->audit_message, sizeof c->audit_message, "%s from %s%s%s%s%s%s",
             b->method, b->peer[0] != '\0' ? b->peer : "?",
             b->certificate[0] != '\0' ? " cert " : "", b->certificate,
             session, b->message[0] != '\0' ? ": " : "", b->message);
    utf8_trim(c->audit_message);
    c->audit_objects = b->objects;
    c->n_audit_objects = b->n_objects;
    return 0;
}
