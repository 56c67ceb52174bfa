/* kyufuctl's human formatting: display width of UTF-8 text, yen amounts,
 * times in the office's time zone, readable state names, and which record
 * fields are times and amounts.  Contracts in ctl.h ("human formatting").
 *
 * Width is measured with a table of East Asian Wide/Fullwidth ranges
 * (Unicode EastAsianWidth.txt W and F) and zero-width marks, not wcwidth(3):
 * wcwidth depends on a UTF-8 locale being installed and selected, and a
 * clerk's terminal must line up the same on every host.  Ambiguous-width
 * characters count one column (what a UTF-8 terminal shows by default). */
#include <assert.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* ------------------------------------------------------------ width */

struct range
{
    uint32_t lo, hi;
};

/* Two columns: EastAsianWidth W and F, by block (Unicode 15). */
static const struct range wide[] = {
    { 0x1100, 0x115F },   { 0x231A, 0x231B },   { 0x2329, 0x232A },   { 0x23E9, 0x23EC },
    { 0x23F0, 0x23F0 },   { 0x23F3, 0x23F3 },   { 0x25FD, 0x25FE },   { 0x2614, 0x2615 },
    { 0x2648, 0x2653 },   { 0x267F, 0x267F },   { 0x2693, 0x2693 },   { 0x26A1, 0x26A1 },
    { 0x26AA, 0x26AB },   { 0x26BD, 0x26BE },   { 0x26C4, 0x26C5 },   { 0x26CE, 0x26CE },
    { 0x26D4, 0x26D4 },   { 0x26EA, 0x26EA },   { 0x26F2, 0x26F3 },   { 0x26F5, 0x26F5 },
    { 0x26FA, 0x26FA },   { 0x26FD, 0x26FD },   { 0x2705, 0x2705 },   { 0x270A, 0x270B },
    { 0x2728, 0x2728 },   { 0x274C, 0x274C },   { 0x274E, 0x274E },   { 0x2753, 0x2755 },
    { 0x2757, 0x2757 },   { 0x2795, 0x2797 },   { 0x27B0, 0x27B0 },   { 0x27BF, 0x27BF },
    { 0x2B1B, 0x2B1C },   { 0x2B50, 0x2B50 },   { 0x2B55, 0x2B55 },   { 0x2E80, 0x303E },
    { 0x3041, 0x3247 },   { 0x3250, 0x4DBF },   { 0x4E00, 0xA4CF },   { 0xA960, 0xA97F },
    { 0xAC00, 0xD7A3 },   { 0xF900, 0xFAFF },   { 0xFE10, 0xFE19 },   { 0xFE30, 0xFE6F },
    { 0xFF00, 0xFF60 },   { 0xFFE0, 0xFFE6 },   { 0x16FE0, 0x18CFF }, { 0x1B000, 0x1B2FF },
    { 0x1F004, 0x1F004 }, { 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A },
    { 0x1F200, 0x1F251 }, { 0x1F260, 0x1F265 }, { 0x1F300, 0x1F64F }, { 0x1F680, 0x1F6FF },
    { 0x1F7E0, 0x1F7EB }, { 0x1F90C, 0x1F9FF }, { 0x1FA70, 0x1FAFF }, { 0x20000, 0x2FFFD },
    { 0x30000, 0x3FFFD },
};

/* Zero columns: combining marks, joiners, variation selectors, and the
 * combining voiced sound marks of kana (inside a wide block, so checked
 * first). */
static const struct range zero[] = {
    { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05BD }, { 0x1AB0, 0x1AFF },
    { 0x1DC0, 0x1DFF }, { 0x200B, 0x200F }, { 0x2028, 0x202E }, { 0x2060, 0x2064 },
    { 0x20D0, 0x20FF }, { 0x302A, 0x302D }, { 0x3099, 0x309A }, { 0xFE00, 0xFE0F },
    { 0xFE20, 0xFE2F }, { 0xFEFF, 0xFEFF }, { 0xE0100, 0xE01EF },
};

static bool in(const struct range *t, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < t[mid].lo) {
            hi = mid;
        } else if (c > t[mid].hi) {
            lo = mid + 1;
        } else {
            return true;
        }
    }
    return false;
}

/* Decode one UTF-8 character at s; returns its length (1..4), with *cp the
 * code point, or 1 with *cp = U+FFFD for a byte that starts no valid
 * sequence (overlong, surrogate, truncated, above U+10FFFF). */
static size_t decode(const unsigned char *s, uint32_t *cp)
{
    unsigned char b = s[0];
    size_t n;
    uint32_t c, min;
    if (b < 0x80) {
        *cp = b;
        return 1;
    } else if (b >= 0xC2 && b <= 0xDF) {
        n = 2, c = b & 0x1Fu, min = 0x80;
    } else if (b >= 0xE0 && b <= 0xEF) {
        n = 3, c = b & 0x0Fu, min = 0x800;
    } else if (b >= 0xF0 && b <= 0xF4) {
        n = 4, c = b & 0x07u, min = 0x10000;
    } else {
        *cp = 0xFFFD;
        return 1;
    }
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xC0) != 0x80) {
            *cp = 0xFFFD;
            return 1;
        }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) {
        *cp = 0xFFFD;
        return 1;
    }
    *cp = c;
    return n;
}

static unsigned cp_width(uint32_t c)
{
    if (c < 0x20 || (c >= 0x7F && c < 0xA0)) {
        return 1; /* shown as '?' */
    }
    if (in(zero, sizeof zero / sizeof zero[0], c)) {
        return 0;
    }
    return in(wide, sizeof wide / sizeof wide[0], c) ? 2 : 1;
}

size_t kyufu_ctl_text_width(const char *s)
{
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        uint32_t c;
        p += decode(p, &c);
        w += cp_width(c);
    }
    return w;
}

void ctl__utf8_trim(char *s)
{
    size_t n = strlen(s);
    /* Back over at most 3 continuation bytes to the last lead byte. */
    size_t i = n;
    while (i > 0 && n - i < 4 && ((unsigned char)s[i - 1] & 0xC0) == 0x80) {
        i--;
    }
    if (i == 0 || ((unsigned char)s[i - 1] & 0x80) == 0) {
        return; /* ASCII at the end (or only continuation bytes: not ours) */
    }
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (i - 1) < need) {
        s[i - 1] = '\0';
    }
}

/* Append bytes to buf (room for the terminator kept); false when full. */
static bool append(char *buf, size_t len, size_t *used, const void *src, size_t n)
{
    if (*used + n + 1 > len) {
        return false;
    }
    memcpy(buf + *used, src, n);
    *used += n;
    buf[*used] = '\0';
    return true;
}

static const char ellipsis[] = "\xE2\x80\xA6"; /* U+2026, one column */

const char *kyufu_ctl_text_fit(const char *s, size_t width, char *buf, size_t len)
{
    assert(len > 0);
    size_t used = 0;
    buf[0] = '\0';
    bool cut = kyufu_ctl_text_width(s) > width;
    /* Columns for text: one is kept for the ellipsis when cutting. */
    size_t room = cut ? (width > 0 ? width - 1 : 0) : width;
    size_t w = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p != 0) {
        uint32_t c;
        size_t n = decode(p, &c);
        unsigned cw = cp_width(c);
        if (w + cw > room) {
            break;
        }
        bool ok;
        if (c == 0xFFFD && n == 1) {
            ok = append(buf, len, &used, "?", 1); /* a stray byte */
        } else if (c < 0x20 || c == 0x7F) {
            ok = append(buf, len, &used, "?", 1); /* no terminal control */
        } else {
            ok = append(buf, len, &used, p, n);
        }
        if (!ok) {
            break;
        }
        w += cw;
        p += n;
    }
    if (cut && width > 0 && append(buf, len, &used, ellipsis, sizeof ellipsis - 1)) {
        w++;
    }
    while (w < width && append(buf, len, &used, " ", 1)) {
        w++;
    }
    return buf;
}

const char *kyufu_ctl_text_clip(const char *s, size_t width, char *buf, size_t len)
{
    size_t w = kyufu_ctl_text_width(s);
    return kyufu_ctl_text_fit(s, w < width ? w : width, buf, len);
}

/* ------------------------------------------------------------ yen */

const char *kyufu_ctl_yen(int64_t v, char *buf, size_t len)
{
    char digits[24];
    /* The magnitude as unsigned: INT64_MIN has no positive int64. */
    uint64_t m = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    int nd = snprintf(digits, sizeof digits, "%" PRIu64, m);
    char out[40];
    size_t o = 0;
    if (v < 0) {
        out[o++] = '-';
    }
    memcpy(out + o, "\xC2\xA5", 2); /* U+00A5 YEN SIGN */
    o += 2;
    for (int i = 0; i < nd; i++) {
        if (i > 0 && (nd - i) % 3 == 0) {
            out[o++] = ',';
        }
        out[o++] = digits[i];
    }
    out[o] = '\0';
    snprintf(buf, len, "%s", out);
    return buf;
}

/* ------------------------------------------------------------ time */

static char zone_name[KYUFU_CTL_TZ_BYTES_MAX + 1] = "";

int kyufu_ctl_tz_set(const char *zone, char *errmsg, size_t errmsg_len)
{
    size_t n = strlen(zone);
    bool ok = n > 0 && n <= KYUFU_CTL_TZ_BYTES_MAX && zone[0] != '/' &&
              strstr(zone, "..") == NULL;
    for (size_t i = 0; ok && i < n; i++) {
        char c = zone[i];
        ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
             c == '/' || c == '_' || c == '-' || c == '+';
    }
    if (!ok) {
        snprintf(errmsg, errmsg_len,
                 "time zone '%.80s': not a zone name such as Asia/Tokyo or UTC", zone);
        return -1;
    }
    /* glibc falls back to UTC, silently, for a zone it cannot find: look for
     * the zone file first so a typo is an error, not wrong times. */
    const char *dir = getenv("TZDIR");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir != NULL && dir[0] != '\0' ? dir
                                                                         : "/usr/share/zoneinfo",
             zone);
    FILE *f = fopen(path, "rb");
    char magic[4] = { 0 };
    bool tzif = f != NULL && fread(magic, 1, 4, f) == 4 && memcmp(magic, "TZif", 4) == 0;
    if (f != NULL) {
        fclose(f);
    }
    if (!tzif) {
        snprintf(errmsg, errmsg_len, "time zone '%s': unknown (no zone file %s)", zone, path);
        return -1;
    }
    if (setenv("TZ", zone, 1) != 0) {
        snprintf(errmsg, errmsg_len, "time zone '%s': %s", zone, strerror(errno));
        return -1;
    }
    tzset();
    snprintf(zone_name, sizeof zone_name, "%s", zone);
    return 0;
}

const char *kyufu_ctl_tz(void)
{
    return zone_name;
}

void kyufu_ctl_tz_reset(void)
{
    zone_name[0] = '\0';
}

/* The default zone, once, if none was chosen. */
static void tz_default(void)
{
    if (zone_name[0] == '\0') {
        char err[256];
        if (kyufu_ctl_tz_set(KYUFU_CTL_TZ_DEFAULT, err, sizeof err) != 0) {
            /* No tzdata: Japan has had no daylight time since 1951. */
            setenv("TZ", "JST-9", 1);
            tzset();
            snprintf(zone_name, sizeof zone_name, "JST-9");
        }
    }
}

const char *kyufu_ctl_time(int64_t ms, char *buf, size_t len)
{
    tz_default();
    int64_t sec = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
    time_t t = (time_t)sec;
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL) {
        snprintf(buf, len, "%" PRId64 "ms", ms);
        return buf;
    }
    char date[40];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    long off = tm.tm_gmtoff;
    char sign = off < 0 ? '-' : '+';
    off = off < 0 ? -off : off;
    snprintf(buf, len, "%s%c%02ld:%02ld", date, sign, off / 3600, (off % 3600) / 60);
    return buf;
}

int kyufu_ctl_date_ms(const char *s, int64_t *out)
{
    int y, mo, d;
    char tail;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &mo, &d, &tail) != 3 || strlen(s) != 10 || y < 1970 ||
        y > 9999 || mo < 1 || mo > 12 || d < 1 || d > 31) {
        return -1;
    }
    tz_default();
    struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_isdst = -1 };
    time_t t = mktime(&tm);
    if (t == (time_t)-1 || tm.tm_mday != d) { /* 2026-02-30 normalised away */
        return -1;
    }
    *out = (int64_t)t * 1000;
    return 0;
}

/* ------------------------------------------------------------ states */

/* Every value of the ledger's enums as a clerk reads it (the one table;
 * tests/client/test_ctl_format.c checks that no state enum value is
 * missing).  JSON keeps the proto names: they are the stable interface. */
static const struct
{
    const char *name;
    const char *label;
} labels[] = {
    { "APP_RECEIVED", "received" },
    { "APP_APPROVED", "approved" },
    { "APP_REJECTED", "rejected" },
    { "APP_PAID", "paid" },
    { "APP_CANCELLED", "cancelled" },
    { "APP_RETURNED", "returned by bank" },
    { "PROGRAM_DRAFT", "draft" },
    { "PROGRAM_OPEN", "open" },
    { "PROGRAM_CLOSED", "closed" },
    { "BATCH_CREATED", "created (not sent)" },
    { "BATCH_CONFIRMED", "confirmed (paid)" },
    { "STAFF_ACTIVE", "active" },
    { "STAFF_SUSPENDED", "suspended" },
    { "STAFF_DISABLED", "disabled" },
    { "STAFF_PURGED", "purged" },
    { "CHANNEL_COUNTER", "counter" },
    { "CHANNEL_ONLINE", "online" },
    { "CHANNEL_MAIL", "mail" },
    { "WRITE_APPLIED", "applied" },
    { "WRITE_NOT_APPLIED", "not applied" },
    { "WRITE_EXPIRED", "expired" },
};

const char *kyufu_ctl_state_label(const char *enum_value_name)
{
    for (size_t i = 0; i < sizeof labels / sizeof labels[0]; i++) {
        if (strcmp(labels[i].name, enum_value_name) == 0) {
            return labels[i].label;
        }
    }
    size_t n = strlen(enum_value_name);
    if (n > 12 && strcmp(enum_value_name + n - 12, "_UNSPECIFIED") == 0) {
        return "-";
    }
    return NULL;
}

/* ------------------------------------------------------------ fields */

/* Amounts in yen (ledger.proto says so in each field's comment). */
static const char *const yen_fields[] = { "unit_amount", "budget", "available", "reserved",
                                          "paid", "amount", "total_amount", "delta" };

enum kyufu_ctl_kind kyufu_ctl_field_kind(const ProtobufCMessageDescriptor *d,
                                         const ProtobufCFieldDescriptor *f)
{
    /* Only the ledger's records and commands: NodeStatus and the like have
     * counters, not money or times. */
    if (strncmp(d->package_name, "kyufu.v1", 8) != 0 ||
        strcmp(d->short_name, "NodeStatus") == 0) {
        return KYUFU_CTL_KIND_PLAIN;
    }
    size_t n = strlen(f->name);
    if (f->type == PROTOBUF_C_TYPE_INT64 && n > 3 && strcmp(f->name + n - 3, "_ms") == 0) {
        return KYUFU_CTL_KIND_TIME;
    }
    if (f->type == PROTOBUF_C_TYPE_INT64) {
        for (size_t i = 0; i < sizeof yen_fields / sizeof yen_fields[0]; i++) {
            if (strcmp(yen_fields[i], f->name) == 0) {
                return KYUFU_CTL_KIND_YEN;
            }
        }
    }
    if (f->type == PROTOBUF_C_TYPE_INT32 && strcmp(f->name, "transfer_date") == 0) {
        return KYUFU_CTL_KIND_DATE;
    }
    if (f->type == PROTOBUF_C_TYPE_ENUM) {
        return KYUFU_CTL_KIND_STATE;
    }
    return KYUFU_CTL_KIND_PLAIN;
}
