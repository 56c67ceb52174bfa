/* RegisterHousehold, UpdateHousehold: the masked, versioned body and the
 * legacy one (docs/ledger-rules.md, docs/api.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd.h"
#include "storage_limits.h"

#define INVALID KYUFU__V1__CODE__INVALID_ARGUMENT
#define NOTFOUND KYUFU__V1__CODE__NOT_FOUND
#define EXISTS KYUFU__V1__CODE__ALREADY_EXISTS

static bool same_household(const Kyufu__V1__Household *a,
                           const Kyufu__V1__Household *b)
{
    size_t na = kyufu__v1__household__get_packed_size(a);
    size_t nb = kyufu__v1__household__get_packed_size(b);
    if (na != nb) {
        return false;
    }
    uint8_t *pa = malloc(na + 1), *pb = malloc(nb + 1);
    CHECK(pa != NULL && pb != NULL);
    kyufu__v1__household__pack(a, pa);
    kyufu__v1__household__pack(b, pb);
    bool eq = memcmp(pa, pb, na) == 0;
    free(pa);
    free(pb);
    return eq;
}

static void set_members(Kyufu__V1__Household *h, size_t n, const char *name)
{
    for (size_t i = 0; i < h->n_member_names; i++) {
        free(h->member_names[i]);
    }
    free(h->member_names);
    h->member_names = calloc(n + 1, sizeof(char *));
    CHECK(h->member_names != NULL);
    for (size_t i = 0; i < n; i++) {
        h->member_names[i] = strdup(name);
        CHECK(h->member_names[i] != NULL);
    }
    h->n_member_names = n;
}

static void register_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_register_household(&f, "clerk", "H-0099-a");
    Kyufu__V1__Household *in = c->register_household->household;
    /* Client-supplied bookkeeping fields are not trusted. */
    in->registered_ms = 5;
    in->updated_ms = 6;
    in->version = 77;
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "household/H-0099-a");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_HOUSEHOLD);
    const Kyufu__V1__Household *h = r->household;
    CHECK_STR(h->household_no, "H-0099-a");
    CHECK_STR(h->head_name, "山田 太郎");
    CHECK_EQ(h->n_member_names, 2);
    CHECK_STR(h->member_names[0], "山田 花子");
    CHECK_STR(h->member_names[1], "山田 一郎");
    CHECK_STR(h->address, "東京都千代田区千代田1-1");
    CHECK(h->bank != NULL);
    CHECK_STR(h->bank->bank_code, "0001");
    CHECK_STR(h->bank->branch_code, "123");
    CHECK_STR(h->bank->account_type, "ordinary");
    CHECK_STR(h->bank->account_no, "1234567");
    CHECK_STR(h->bank->holder_kana, "ヤマダ タロウ");
    CHECK_EQ(h->registered_ms, t);
    CHECK_EQ(h->updated_ms, t);
    CHECK_EQ(h->version, 1);
    Kyufu__V1__Household *stored = fx_household(&f, "H-0099-a");
    CHECK(same_household(h, stored));
    kyufu__v1__household__free_unpacked(stored, NULL);
    fx_free(r);
    fx_close(&f);
}

static void register_limits_accepted(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_register_household(&f, "clerk", rep('9', 32));
    Kyufu__V1__Household *h = c->register_household->household;
    c_str(&h->head_name, rep('h', 200));
    c_str(&h->address, rep('a', 400));
    set_members(h, 32, rep('m', 200));
    c_str(&h->bank->account_type, "savings");
    c_str(&h->bank->holder_kana, rep('k', 200));
    fx_do(&f, c);
    c = c_register_household(&f, "clerk", "h-lower-1");
    set_members(c->register_household->household, 0, "");
    c_str(&c->register_household->household->bank->account_type, "current");
    fx_do(&f, c);
    fx_close(&f);
}

static void register_exists(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_register_household(&f, "clerk", "H-1"), EXISTS);
    fx_close(&f);
}

/* One bad field at a time, on RegisterHousehold and on UpdateHousehold. */
enum field
{
    F_NO,
    F_HEAD,
    F_ADDRESS,
    F_MEMBER,
    F_BANK_CODE,
    F_BRANCH,
    F_TYPE,
    F_ACCOUNT,
    F_KANA,
};

static const struct
{
    enum field field;
    const char *value;
} bad_fields[] = {
    {F_NO, ""},          {F_NO, "H_1"},        {F_NO, "H 1"},
    {F_NO, "H-1é"},      {F_NO, "H.1"},        {F_HEAD, ""},
    {F_HEAD, "a\nb"},    {F_HEAD, "\x7f"},     {F_HEAD, "\xff"},
    {F_ADDRESS, ""},     {F_ADDRESS, "a\rb"},  {F_MEMBER, ""},
    {F_MEMBER, "x\x1f"}, {F_BANK_CODE, "001"}, {F_BANK_CODE, "00001"},
    {F_BANK_CODE, "000a"}, {F_BANK_CODE, "０００１"}, {F_BANK_CODE, ""},
    {F_BRANCH, "12"},    {F_BRANCH, "1234"},   {F_BRANCH, "1-2"},
    {F_TYPE, ""},        {F_TYPE, "Ordinary"}, {F_TYPE, "checking"},
    {F_TYPE, "ordinary "}, {F_ACCOUNT, "123456"}, {F_ACCOUNT, "12345678"},
    {F_ACCOUNT, "123456a"}, {F_ACCOUNT, "-123456"}, {F_KANA, ""},
    {F_KANA, "\x01"},
};

static void set_field(Kyufu__V1__Household *h, enum field fd, const char *v)
{
    switch (fd) {
    case F_NO:
        c_str(&h->household_no, v);
        break;
    case F_HEAD:
        c_str(&h->head_name, v);
        break;
    case F_ADDRESS:
        c_str(&h->address, v);
        break;
    case F_MEMBER:
        c_str(&h->member_names[1], v);
        break;
    case F_BANK_CODE:
        c_str(&h->bank->bank_code, v);
        break;
    case F_BRANCH:
        c_str(&h->bank->branch_code, v);
        break;
    case F_TYPE:
        c_str(&h->bank->account_type, v);
        break;
    case F_ACCOUNT:
        c_str(&h->bank->account_no, v);
        break;
    case F_KANA:
        c_str(&h->bank->holder_kana, v);
        break;
    }
}

static void register_bad_fields(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        Kyufu__V1__Command *c = c_register_household(&f, "clerk", "H-9");
        set_field(c->register_household->household, bad_fields[i].field,
                  bad_fields[i].value);
        fx_reject(&f, c, INVALID);
    }
    /* Oversized, list too long, bank account or household missing. */
    Kyufu__V1__Command *c = c_register_household(&f, "clerk", rep('9', 33));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    c_str(&c->register_household->household->head_name, rep('h', 201));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    c_str(&c->register_household->household->address, rep('a', 401));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    c_str(&c->register_household->household->bank->holder_kana,
          rep('k', 201));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    set_members(c->register_household->household, 1, rep('m', 201));
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    set_members(c->register_household->household, 33, "山田");
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    kyufu__v1__bank_account__free_unpacked(c->register_household->household->bank,
                                          NULL);
    c->register_household->household->bank = NULL;
    fx_reject(&f, c, INVALID);
    c = c_register_household(&f, "clerk", "H-9");
    kyufu__v1__household__free_unpacked(c->register_household->household,
                                        NULL);
    c->register_household->household = NULL;
    fx_reject(&f, c, INVALID);
    fx_close(&f);
}

static void update_ok(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Household *orig = fx_household(&f, "H-1");
    CHECK_EQ(orig->version, 1);
    Kyufu__V1__Command *c = c_update_household(&f, "clerk2", "H-1", 1);
    Kyufu__V1__Household *in = c->update_household_fields->household;
    c_str(&in->head_name, "佐藤 次郎");
    c_str(&in->address, "大阪府大阪市北区1-1");
    set_members(in, 1, "佐藤 三郎");
    c_str(&in->bank->account_no, "7654321");
    in->registered_ms = 1;
    in->version = 99;
    int64_t t = c->header->time_ms;
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->object, "household/H-1");
    CHECK_EQ(r->record_case, KYUFU__V1__COMMAND_RESULT__RECORD_HOUSEHOLD);
    const Kyufu__V1__Household *h = r->household;
    CHECK_STR(h->head_name, "佐藤 次郎");
    CHECK_STR(h->address, "大阪府大阪市北区1-1");
    CHECK_EQ(h->n_member_names, 1);
    CHECK_STR(h->member_names[0], "佐藤 三郎");
    CHECK_STR(h->bank->account_no, "7654321");
    CHECK_EQ(h->registered_ms, orig->registered_ms);
    CHECK_EQ(h->updated_ms, t);
    CHECK_EQ(h->version, 2);
    Kyufu__V1__Household *stored = fx_household(&f, "H-1");
    CHECK(same_household(h, stored));
    kyufu__v1__household__free_unpacked(stored, NULL);
    fx_free(r);
    r = fx_ok(&f, c_update_household(&f, "clerk", "H-1", 2));
    CHECK_EQ(r->household->version, 3);
    CHECK_EQ(r->household->registered_ms, orig->registered_ms);
    fx_free(r);
    kyufu__v1__household__free_unpacked(orig, NULL);
    fx_close(&f);
}

/* Only the masked fields change, whatever else the request carries. */
static void update_mask_only(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Household *orig = fx_household(&f, "H-1");
    Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1", 1);
    Kyufu__V1__UpdateHousehold *u = c->update_household_fields;
    static const char *const addr[] = {"address"};
    c_mask(u, 1, addr);
    c_str(&u->household->address, "京都府京都市1");
    c_str(&u->household->head_name, "別人");
    c_str(&u->household->bank->account_no, "1111111");
    set_members(u->household, 0, "");
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->household->address, "京都府京都市1");
    CHECK_STR(r->household->head_name, orig->head_name);
    CHECK_STR(r->household->bank->account_no, orig->bank->account_no);
    CHECK_EQ(r->household->n_member_names, orig->n_member_names);
    CHECK_EQ(r->household->version, 2);
    fx_free(r);

    /* One field of the bank account: the others stay. */
    c = c_update_household(&f, "clerk", "H-1", 2);
    u = c->update_household_fields;
    static const char *const acct[] = {"bank.account_no", "bank.holder_kana"};
    c_mask(u, 2, acct);
    c_str(&u->household->bank->account_no, "2222222");
    c_str(&u->household->bank->holder_kana, "ｻﾄｳ ｼﾞﾛｳ");
    c_str(&u->household->bank->bank_code, "9999");
    r = fx_ok(&f, c);
    CHECK_STR(r->household->bank->account_no, "2222222");
    CHECK_STR(r->household->bank->holder_kana, "ｻﾄｳ ｼﾞﾛｳ");
    CHECK_STR(r->household->bank->bank_code, orig->bank->bank_code);
    CHECK_STR(r->household->address, "京都府京都市1");
    fx_free(r);

    /* A masked field of a request without a bank account: empty, refused. */
    c = c_update_household(&f, "clerk", "H-1", 3);
    u = c->update_household_fields;
    c_mask(u, 1, acct);  /* bank.account_no */
    kyufu__v1__bank_account__free_unpacked(u->household->bank, NULL);
    u->household->bank = NULL;
    fx_reject(&f, c, INVALID);
    kyufu__v1__household__free_unpacked(orig, NULL);
    fx_close(&f);
}

/* A stale expected version is FAILED_PRECONDITION naming the current one,
 * and changes nothing. */
static void update_stale_version(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_do(&f, c_update_household(&f, "clerk", "H-1", 1));
    Kyufu__V1__Household *before = fx_household(&f, "H-1");
    CHECK_EQ(before->version, 2);
    static const uint64_t stale[] = {1, 3, 1000, UINT64_MAX};
    for (size_t i = 0; i < sizeof stale / sizeof stale[0]; i++) {
        Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1",
                                                   stale[i]);
        c_str(&c->update_household_fields->household->address, "変更");
        Kyufu__V1__CommandResult *r = fx_apply(&f, c);
        CHECK_EQ(r->code, KYUFU__V1__CODE__FAILED_PRECONDITION);
        CHECK(strstr(r->message, "at version 2") != NULL);
        fx_free(r);
        kyufu__v1__command__free_unpacked(c, NULL);
        Kyufu__V1__Household *after = fx_household(&f, "H-1");
        CHECK(same_household(before, after));
        kyufu__v1__household__free_unpacked(after, NULL);
    }
    /* Two updates read at the same version: the first wins, the second is
     * refused (the lost update the version exists to prevent). */
    Kyufu__V1__Command *a = c_update_household(&f, "clerk", "H-1", 2);
    Kyufu__V1__Command *b = c_update_household(&f, "clerk2", "H-1", 2);
    c_str(&a->update_household_fields->household->address, "A");
    c_str(&b->update_household_fields->household->address, "B");
    fx_do(&f, a);
    fx_reject(&f, b, KYUFU__V1__CODE__FAILED_PRECONDITION);
    Kyufu__V1__Household *after = fx_household(&f, "H-1");
    CHECK_STR(after->address, "A");
    CHECK_EQ(after->version, 3);
    kyufu__v1__household__free_unpacked(after, NULL);
    kyufu__v1__household__free_unpacked(before, NULL);
    fx_close(&f);
}

static void update_bad_mask(void)
{
    static const char *const bad[][3] = {
        {"household_no", NULL, NULL},  {"version", NULL, NULL},
        {"registered_ms", NULL, NULL}, {"updated_ms", NULL, NULL},
        {"", NULL, NULL},              {"Address", NULL, NULL},
        {"address ", NULL, NULL},      {"bank.", NULL, NULL},
        {"bank.nope", NULL, NULL},     {"address", "address", NULL},
        {"bank", "bank.account_no", NULL},
        {"head_name", "address", "\xff"},
    };
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Household *before = fx_household(&f, "H-1");
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1", 1);
        size_t n = bad[i][2] != NULL ? 3 : bad[i][1] != NULL ? 2 : 1;
        c_mask(c->update_household_fields, n, bad[i]);
        fx_reject(&f, c, INVALID);
    }
    /* Empty mask; too many paths; no expected version. */
    Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1", 1);
    c_mask(c->update_household_fields, 0, NULL);
    fx_reject(&f, c, INVALID);
    const char *many[KYUFU_UPDATE_MASK_PATHS_MAX + 1];
    for (size_t i = 0; i < KYUFU_UPDATE_MASK_PATHS_MAX + 1; i++) {
        many[i] = "address";
    }
    c = c_update_household(&f, "clerk", "H-1", 1);
    c_mask(c->update_household_fields, KYUFU_UPDATE_MASK_PATHS_MAX + 1, many);
    fx_reject(&f, c, INVALID);
    fx_reject(&f, c_update_household(&f, "clerk", "H-1", 0), INVALID);
    Kyufu__V1__Household *after = fx_household(&f, "H-1");
    CHECK(same_household(before, after));
    kyufu__v1__household__free_unpacked(after, NULL);
    kyufu__v1__household__free_unpacked(before, NULL);
    fx_close(&f);
}

/* A mask path echoed in the refusal is cut at a character boundary: a
 * multi-byte character straddling the cut must not leave invalid UTF-8 in
 * the result and the audit record (protobuf-c refuses to unpack it). */
static bool utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        size_t n = *p < 0x80 ? 0 : (*p & 0xe0) == 0xc0 ? 1
                 : (*p & 0xf0) == 0xe0 ? 2 : (*p & 0xf8) == 0xf0 ? 3 : 9;
        if (n == 9) {
            return false;
        }
        p++;
        for (size_t i = 0; i < n; i++, p++) {
            if ((*p & 0xc0) != 0x80) {
                return false;
            }
        }
    }
    return true;
}

static void update_bad_mask_utf8_cut(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    for (size_t pad = 36; pad <= 41; pad++) {
        char path[64];
        memset(path, 'a', pad);
        snprintf(path + pad, sizeof path - pad, "%s", "\xe3\x81\x82\xe3\x81\x82");
        const char *const mask[] = {path};
        Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1", 1);
        c_mask(c->update_household_fields, 1, mask);
        Kyufu__V1__CommandResult *r = fx_apply(&f, c);
        CHECK(r != NULL);
        if (r != NULL) {
            CHECK_EQ(r->code, KYUFU__V1__CODE__INVALID_ARGUMENT);
            CHECK(utf8_valid(r->message));
            fx_free(r);
        }
        kyufu__v1__command__free_unpacked(c, NULL);
    }
    fx_close(&f);
}

static void update_unknown_and_bad(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    fx_reject(&f, c_update_household(&f, "clerk", "H-404", 1), NOTFOUND);
    for (size_t i = 0; i < sizeof bad_fields / sizeof bad_fields[0]; i++) {
        Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1", 1);
        set_field(c->update_household_fields->household, bad_fields[i].field,
                  bad_fields[i].value);
        fx_reject(&f, c, INVALID);
    }
    Kyufu__V1__Command *c = c_update_household(&f, "clerk", "H-1", 1);
    kyufu__v1__bank_account__free_unpacked(
        c->update_household_fields->household->bank, NULL);
    c->update_household_fields->household->bank = NULL;
    fx_reject(&f, c, INVALID);
    c = c_update_household(&f, "clerk", "H-1", 1);
    kyufu__v1__household__free_unpacked(c->update_household_fields->household,
                                        NULL);
    c->update_household_fields->household = NULL;
    fx_reject(&f, c, INVALID);
    fx_close(&f);
}

/* An entry from an older version (whole record, no mask, no version check)
 * applies as it always did, so replicas of any version agree on it. */
static void update_legacy_entry(void)
{
    struct fx f;
    fx_open(&f);
    fx_world(&f);
    Kyufu__V1__Command *c = c_update_household_legacy(&f, "clerk", "H-1");
    Kyufu__V1__Household *in = c->update_household->household;
    c_str(&in->address, "旧形式");
    Kyufu__V1__CommandResult *r = fx_ok(&f, c);
    CHECK_STR(r->household->address, "旧形式");
    CHECK_EQ(r->household->version, 2);
    fx_free(r);
    fx_reject(&f, c_update_household_legacy(&f, "clerk", "H-404"), NOTFOUND);
    fx_close(&f);
}

int main(int argc, char **argv)
{
    static const struct t_case cases[] = {
        T_CASE(register_ok),
        T_CASE(register_limits_accepted),
        T_CASE(register_exists),
        T_CASE(register_bad_fields),
        T_CASE(update_ok),
        T_CASE(update_mask_only),
        T_CASE(update_stale_version),
        T_CASE(update_bad_mask),
        T_CASE(update_bad_mask_utf8_cut),
        T_CASE(update_unknown_and_bad),
        T_CASE(update_legacy_entry),
    };
    return t_main(argc, argv, cases, sizeof cases / sizeof cases[0]);
}
