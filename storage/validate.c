/* Field rules of docs/ledger-rules.md ("Field rules"): character sets,
 * lengths, UTF-8, dates, role sets, checked arithmetic.  Pure functions. */
#include <string.h>

#include "internal.h"

static bool charset(const char *s, size_t min, size_t max, const char *extra,
                    bool upper)
{
    size_t n;
    if (s == NULL) {
        return min == 0;
    }
    n = strlen(s);
    if (n < min || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (upper && c >= 'A' && c <= 'Z') ||
                  (c != 0 && strchr(extra, c) != NULL);
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool kyufu_storage__valid_program_code(const char *s)
{
    return charset(s, 1, KYUFU_PROGRAM_CODE_BYTES_MAX, "_-", true);
}

bool kyufu_storage__valid_household_no(const char *s)
{
    return charset(s, 1, KYUFU_HOUSEHOLD_NO_BYTES_MAX, "-", true);
}

bool kyufu_storage__valid_staff_id(const char *s)
{
    return charset(s, 1, KYUFU_STAFF_ID_BYTES_MAX, "._-", false);
}

/* Printable ASCII (0x20..0x7e). */
bool kyufu_storage__valid_printable(const char *s, size_t min, size_t max)
{
    size_t n;
    if (s == NULL) {
        return min == 0;
    }
    n = strlen(s);
    if (n < min || n > max) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < 0x20 || s[i] > 0x7e) {
            return false;
        }
    }
    return true;
}

/* Valid UTF-8 (shortest form, no surrogates, ≤ U+10FFFF), no control
 * characters (< 0x20, 0x7f), min..max bytes. */
bool kyufu_storage__valid_text(const char *str, size_t min, size_t max)
{
    const unsigned char *s = (const unsigned char *)str;
    size_t n;
    if (str == NULL) {
        return min == 0;
    }
    n = strlen(str);
    if (n < min || n > max) {
        return false;
    }
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        unsigned cp;
        size_t len;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f) {
                return false;
            }
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            cp = c & 0x1f;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            cp = c & 0x0f;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            cp = c & 0x07;
        } else {
            return false;
        }
        if (i + len > n) {
            return false;
        }
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80) {
                return false;
            }
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
            cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
        i += len;
    }
    return true;
}

bool kyufu_storage__valid_date(int32_t d)
{
    static const int days[12] = {31, 29, 31, 30, 31, 30,
                                 31, 31, 30, 31, 30, 31};
    int y = d / 10000;
    int m = (d / 100) % 100;
    int day = d % 100;
    if (d <= 0 || y < KYUFU_FISCAL_YEAR_MIN || y > KYUFU_FISCAL_YEAR_MAX ||
        m < 1 || m > 12 || day < 1) {
        return false;
    }
    if (day > days[m - 1]) {
        return false;
    }
    if (m == 2 && day == 29) {
        return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    }
    return true;
}

bool kyufu_storage__valid_roles(uint32_t roles)
{
    const uint32_t valid = 0x3e;
    const uint32_t admin = 1u << KYUFU__V1__ROLE__ROLE_ID_ADMIN;
    const uint32_t ledger = (1u << KYUFU__V1__ROLE__ROLE_CLERK) |
                            (1u << KYUFU__V1__ROLE__ROLE_APPROVER);
    if (roles == 0 || (roles & ~valid) != 0) {
        return false;
    }
    return !((roles & admin) != 0 && (roles & ledger) != 0);
}

static bool digits(const char *s, size_t n)
{
    if (s == NULL || strlen(s) != n) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') {
            return false;
        }
    }
    return true;
}

const char *kyufu_storage__check_household_fields(const Kyufu__V1__Household *h)
{
    const Kyufu__V1__BankAccount *b = h->bank;
    if (!kyufu_storage__valid_household_no(h->household_no)) {
        return "household_no must be 1..32 of [A-Za-z0-9-]";
    }
    if (!kyufu_storage__valid_text(h->head_name, 1, KYUFU_NAME_BYTES_MAX)) {
        return "head_name must be 1..200 bytes of text";
    }
    if (h->n_member_names > KYUFU_MEMBER_NAMES_MAX) {
        return "at most 32 member names";
    }
    for (size_t i = 0; i < h->n_member_names; i++) {
        if (!kyufu_storage__valid_text(h->member_names[i], 1,
                                       KYUFU_NAME_BYTES_MAX)) {
            return "member name must be 1..200 bytes of text";
        }
    }
    if (!kyufu_storage__valid_text(h->address, 1, KYUFU_ADDRESS_BYTES_MAX)) {
        return "address must be 1..400 bytes of text";
    }
    if (b == NULL) {
        return "bank account is required";
    }
    if (!digits(b->bank_code, 4)) {
        return "bank_code must be 4 digits";
    }
    if (!digits(b->branch_code, 3)) {
        return "branch_code must be 3 digits";
    }
    if (b->account_type == NULL ||
        (strcmp(b->account_type, "ordinary") != 0 &&
         strcmp(b->account_type, "current") != 0 &&
         strcmp(b->account_type, "savings") != 0)) {
        return "account_type must be ordinary, current or savings";
    }
    if (!digits(b->account_no, 7)) {
        return "account_no must be 7 digits";
    }
    if (!kyufu_storage__valid_text(b->holder_kana, 1, KYUFU_NAME_BYTES_MAX)) {
        return "holder_kana must be 1..200 bytes of text";
    }
    return NULL;
}

bool kyufu_storage__add_ok(int64_t a, int64_t b, int64_t *out)
{
    return !__builtin_add_overflow(a, b, out);
}
