/* kyufuctl output: protobuf messages as JSON (jansson) or human text, by
 * reflection over the generated descriptors, so every record type and every
 * field added to the schema prints without code here. */
#include <assert.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "kyufu/v1/ledger.pb-c.h"

static const void *field_ptr(const ProtobufCMessage *msg,
                             const ProtobufCFieldDescriptor *f)
{
    return (const char *)msg + f->offset;
}

/* Is a singular field set?  proto3: non-default, or oneof member chosen. */
static bool field_present(const ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *f)
{
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        return *(const size_t *)(const void *)((const char *)msg + f->quantifier_offset) > 0;
    }
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        return *(const uint32_t *)(const void *)((const char *)msg + f->quantifier_offset) ==
               f->id;
    }
    return true;
}

/* The stored form of a staff account's roles: never set in an answer (the
 * node sends `roles`, a list), so never shown. */
static bool hidden(const ProtobufCFieldDescriptor *f)
{
    return strcmp(f->name, "roles_mask") == 0;
}

static const char *enum_name(const ProtobufCFieldDescriptor *f, int v)
{
    const ProtobufCEnumValue *ev =
        protobuf_c_enum_descriptor_get_value(f->descriptor, v);
    return ev != NULL ? ev->name : NULL;
}

/* One scalar element (index into a repeated field, or the single value). */
static json_t *scalar_json(const ProtobufCFieldDescriptor *f, const void *p)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        return json_integer(*(const int32_t *)p);
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        return json_integer(*(const uint32_t *)p);
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        return json_integer(*(const int64_t *)p);
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: {
        uint64_t v = *(const uint64_t *)p;
        if (v > INT64_MAX) {
            char buf[32];
            snprintf(buf, sizeof buf, "%" PRIu64, v);
            return json_string(buf);
        }
        return json_integer((json_int_t)v);
    }
    case PROTOBUF_C_TYPE_FLOAT:
        return json_real(*(const float *)p);
    case PROTOBUF_C_TYPE_DOUBLE:
        return json_real(*(const double *)p);
    case PROTOBUF_C_TYPE_BOOL:
        return json_boolean(*(const protobuf_c_boolean *)p);
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)p;
        const char *name = enum_name(f, v);
        if (name != NULL && f->descriptor == &kyufu__v1__role__descriptor &&
            v > 0 && strncmp(name, "ROLE_", 5) == 0) {
            /* Roles as kyufuctl takes them: "clerk", "id_admin". */
            char low[32];
            size_t k = 0;
            for (const char *q = name + 5; *q != '\0' && k + 1 < sizeof low; q++) {
                low[k++] = (char)(*q >= 'A' && *q <= 'Z' ? *q - 'A' + 'a' : *q);
            }
            low[k] = '\0';
            return json_string(low);
        }
        return name != NULL ? json_string(name) : json_integer(v);
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)p;
        /* Strings are UTF-8 in proto3; jansson refuses invalid UTF-8, so
         * bytes that are not get a marker instead of breaking the output. */
        json_t *j = json_string(s != NULL ? s : "");
        return j != NULL ? j : json_string("<invalid utf-8>");
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *b = p;
        char *hex = malloc(b->len * 2 + 1);
        if (hex == NULL) {
            return NULL;
        }
        ctl__hex(b->data, b->len, hex);
        json_t *j = json_string(hex);
        free(hex);
        return j;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *sub = *(ProtobufCMessage *const *)p;
        return sub != NULL ? kyufu_ctl_to_json(sub) : json_null();
    }
    }
    return json_null();
}

static size_t elem_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        return 8;
    case PROTOBUF_C_TYPE_DOUBLE:
        return sizeof(double);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    case PROTOBUF_C_TYPE_ENUM:
        return sizeof(int);
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    default:
        return 4;
    }
}

json_t *kyufu_ctl_to_json(const ProtobufCMessage *msg)
{
    json_t *o = json_object();
    if (o == NULL) {
        return NULL;
    }
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (hidden(f)) {
            continue;
        }
        if (!field_present(msg, f)) {
            if (f->label == PROTOBUF_C_LABEL_REPEATED) {
                json_object_set_new(o, f->name, json_array());
            }
            continue;
        }
        json_t *v;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)((const char *)msg + f->quantifier_offset);
            const char *arr = *(const char *const *)field_ptr(msg, f);
            v = json_array();
            for (size_t k = 0; k < n && v != NULL; k++) {
                json_array_append_new(v, scalar_json(f, arr + k * elem_size(f)));
            }
        } else {
            if (f->type == PROTOBUF_C_TYPE_MESSAGE &&
                *(ProtobufCMessage *const *)field_ptr(msg, f) == NULL) {
                continue;
            }
            v = scalar_json(f, field_ptr(msg, f));
        }
        if (v == NULL || json_object_set_new(o, f->name, v) != 0) {
            json_decref(o);
            return NULL;
        }
    }
    return o;
}

static const char *field_text(const ProtobufCMessage *msg,
                              const ProtobufCFieldDescriptor *f, char *buf, size_t len);

const char *kyufu_ctl_field_text(const ProtobufCMessage *msg,
                                 const ProtobufCFieldDescriptor *f,
                                 char *buf, size_t len)
{
    field_text(msg, f, buf, len);
    /* A value longer than buf was cut by snprintf, maybe inside a
     * character: drop the partial one. */
    ctl__utf8_trim(buf);
    return buf;
}

static const char *field_text(const ProtobufCMessage *msg,
                              const ProtobufCFieldDescriptor *f, char *buf, size_t len)
{
    buf[0] = '\0';
    if (!field_present(msg, f)) {
        return buf;
    }
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
        const void *p = field_ptr(msg, f);
        switch (kyufu_ctl_field_kind(msg->descriptor, f)) {
        case KYUFU_CTL_KIND_TIME:
            /* 0 is "not yet" (decided_ms of an undecided application). */
            return *(const int64_t *)p == 0 ? buf : kyufu_ctl_time(*(const int64_t *)p, buf, len);
        case KYUFU_CTL_KIND_YEN:
            return kyufu_ctl_yen(*(const int64_t *)p, buf, len);
        case KYUFU_CTL_KIND_DATE: {
            int32_t d = *(const int32_t *)p;
            if (d >= 10000101 && d <= 99991231) {
                snprintf(buf, len, "%04d-%02d-%02d", (int)(d / 10000), (int)(d / 100 % 100),
                         (int)(d % 100));
            } else if (d != 0) {
                snprintf(buf, len, "%d", (int)d);
            }
            return buf;
        }
        case KYUFU_CTL_KIND_STATE: {
            const char *name = enum_name(f, *(const int *)p);
            const char *label = name != NULL ? kyufu_ctl_state_label(name) : NULL;
            snprintf(buf, len, "%s", label != NULL ? label : name != NULL ? name : "?");
            return buf;
        }
        case KYUFU_CTL_KIND_PLAIN:
            break;
        }
    }
    json_t *j;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
        size_t n = *(const size_t *)(const void *)((const char *)msg + f->quantifier_offset);
        const char *arr = *(const char *const *)field_ptr(msg, f);
        size_t used = 0;
        for (size_t k = 0; k < n && used + 1 < len; k++) {
            json_t *e = scalar_json(f, arr + k * elem_size(f));
            char *s = e == NULL ? NULL
                      : json_is_string(e) ? strdup(json_string_value(e))
                                          : json_dumps(e, JSON_ENCODE_ANY | JSON_COMPACT);
            used += (size_t)snprintf(buf + used, len - used, "%s%s", k > 0 ? "," : "",
                                     s != NULL ? s : "?");
            free(s);
            json_decref(e);
        }
        return buf;
    }
    j = scalar_json(f, field_ptr(msg, f));
    if (j == NULL) {
        return buf;
    }
    if (json_is_string(j)) {
        snprintf(buf, len, "%s", json_string_value(j));
    } else {
        char *s = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
        snprintf(buf, len, "%s", s != NULL ? s : "");
        free(s);
    }
    json_decref(j);
    return buf;
}

void kyufu_ctl_print_record(FILE *out, const ProtobufCMessage *msg, int indent)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (hidden(f)) {
            continue;
        }
        if (f->type == PROTOBUF_C_TYPE_MESSAGE && f->label != PROTOBUF_C_LABEL_REPEATED) {
            const ProtobufCMessage *sub = *(ProtobufCMessage *const *)field_ptr(msg, f);
            if (sub != NULL && field_present(msg, f)) {
                fprintf(out, "%*s%s:\n", indent, "", f->name);
                kyufu_ctl_print_record(out, sub, indent + 2);
            }
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && !field_present(msg, f)) {
            continue;
        }
        char buf[1024];
        fprintf(out, "%*s%s: %s\n", indent, "", f->name,
                kyufu_ctl_field_text(msg, f, buf, sizeof buf));
    }
}

/* One cell fitted to its column; the last one unpadded, then the newline. */
static void print_cell(FILE *out, const char *text, size_t width, bool last, char *cell,
                       size_t len)
{
    if (last) {
        fprintf(out, "%s\n", kyufu_ctl_text_clip(text, width, cell, len));
    } else {
        fprintf(out, "%s  ", kyufu_ctl_text_fit(text, width, cell, len));
    }
}

void kyufu_ctl_print_table(FILE *out, const ProtobufCMessage *const *records,
                           size_t n, const char *const *columns)
{
    enum { COLS_MAX = 32 };
    size_t ncol = 0;
    while (columns[ncol] != NULL) {
        ncol++;
    }
    assert(ncol <= COLS_MAX);
    /* Widths in display columns (a kanji counts two), capped. */
    size_t width[COLS_MAX] = { 0 };
    for (size_t c = 0; c < ncol; c++) {
        width[c] = kyufu_ctl_text_width(columns[c]);
    }
    char buf[1024];
    for (size_t r = 0; r < n; r++) {
        for (size_t c = 0; c < ncol; c++) {
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field_by_name(records[r]->descriptor,
                                                                columns[c]);
            size_t w = f == NULL ? 0
                                 : kyufu_ctl_text_width(
                                       kyufu_ctl_field_text(records[r], f, buf, sizeof buf));
            if (w > width[c]) {
                width[c] = w > KYUFU_CTL_COLUMN_WIDTH_MAX ? KYUFU_CTL_COLUMN_WIDTH_MAX : w;
            }
        }
    }
    /* A cell is at most COLUMN_WIDTH_MAX columns of up-to-4-byte
     * characters plus padding. */
    char cell[KYUFU_CTL_COLUMN_WIDTH_MAX * 4 + 8];
    for (size_t c = 0; c < ncol; c++) {
        print_cell(out, columns[c], width[c], c + 1 == ncol, cell, sizeof cell);
    }
    for (size_t r = 0; r < n; r++) {
        for (size_t c = 0; c < ncol; c++) {
            const ProtobufCFieldDescriptor *f =
                protobuf_c_message_descriptor_get_field_by_name(records[r]->descriptor,
                                                                columns[c]);
            const char *t = f == NULL ? "" : kyufu_ctl_field_text(records[r], f, buf, sizeof buf);
            print_cell(out, t, width[c], c + 1 == ncol, cell, sizeof cell);
        }
    }
}

void ctl__hex(const uint8_t *in, size_t n, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}
