/* kyufuctl's human formatting, as a clerk reads it: Japanese text measured
 * in terminal columns and never cut inside a character, yen with
 * separators, times in Japan time with their offset, state names instead of
 * enum names, and a table whose columns line up with kanji in them. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl.h"
#include "kyufu/v1/ledger.pb-c.h"

#define CHECK_STR(a, b)                                                      \
    do {                                                                     \
        const char *a_ = (a), *b_ = (b);                                     \
        if (strcmp(a_, b_) != 0) {                                           \
            fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__, a_, \
                    b_);                                                     \
            exit(1);                                                         \
        }                                                                    \
    } while (0)

static void test_width(void)
{
    CHECK_EQ_INT(kyufu_ctl_text_width(""), 0);
    CHECK_EQ_INT(kyufu_ctl_text_width("abc"), 3);
    CHECK_EQ_INT(kyufu_ctl_text_width("山田太郎"), 8);          /* kanji: 2 each */
    CHECK_EQ_INT(kyufu_ctl_text_width("ヤマダ"), 6);            /* katakana */
    CHECK_EQ_INT(kyufu_ctl_text_width("ﾔﾏﾀﾞ"), 4);              /* half-width kana: 1 */
    CHECK_EQ_INT(kyufu_ctl_text_width("ＡＢ１"), 6);             /* full-width Latin */
    CHECK_EQ_INT(kyufu_ctl_text_width("東京都 1-2"), 10);
    CHECK_EQ_INT(kyufu_ctl_text_width("か\xE3\x82\x99"), 2);    /* + combining dakuten */
    CHECK_EQ_INT(kyufu_ctl_text_width("\xC2\xA5" "100"), 4);    /* yen sign: narrow */
    CHECK_EQ_INT(kyufu_ctl_text_width("𠮷野家"), 6);            /* outside the BMP */
    CHECK_EQ_INT(kyufu_ctl_text_width("a\xFF\xE3\x81"), 4);     /* stray bytes: 1 each */
}

static void test_fit(void)
{
    char buf[256];
    /* Padding to the width, counting a kanji as two columns. */
    CHECK_STR(kyufu_ctl_text_fit("山田", 6, buf, sizeof buf), "山田  ");
    CHECK_STR(kyufu_ctl_text_fit("abc", 3, buf, sizeof buf), "abc");
    /* Cut with an ellipsis in the last column, at a character boundary. */
    CHECK_STR(kyufu_ctl_text_fit("山田太郎", 7, buf, sizeof buf), "山田太…");
    CHECK_EQ_INT(kyufu_ctl_text_width(buf), 7);
    /* A kanji would straddle the edge: left out, the gap padded. */
    CHECK_STR(kyufu_ctl_text_fit("山田太郎", 6, buf, sizeof buf), "山田… ");
    CHECK_EQ_INT(kyufu_ctl_text_width(buf), 6);
    CHECK_STR(kyufu_ctl_text_fit("abcdef", 4, buf, sizeof buf), "abc…");
    CHECK_STR(kyufu_ctl_text_fit("山", 1, buf, sizeof buf), "…");
    CHECK_STR(kyufu_ctl_text_fit("山", 0, buf, sizeof buf), "");
    /* Terminal control and invalid bytes are not passed to the terminal. */
    CHECK_STR(kyufu_ctl_text_fit("a\x1b[2Jb", 6, buf, sizeof buf), "a?[2Jb");
    CHECK_STR(kyufu_ctl_text_fit("x\xE3\x81", 4, buf, sizeof buf), "x?? ");
    /* Whatever the width, the result is whole characters (valid UTF-8). */
    const char *s = "北海道札幌市中央区北一条西";
    for (size_t w = 0; w < 30; w++) {
        kyufu_ctl_text_fit(s, w, buf, sizeof buf);
        CHECK_EQ_INT(kyufu_ctl_text_width(buf), w);
        CHECK(strchr(buf, '?') == NULL);
    }
    /* A buffer too small for the text still ends on a boundary. */
    char tiny[8];
    kyufu_ctl_text_fit("山田太郎", 8, tiny, sizeof tiny);
    CHECK_STR(tiny, "山田 ");
}

static void test_yen(void)
{
    char buf[64];
    CHECK_STR(kyufu_ctl_yen(0, buf, sizeof buf), "¥0");
    /* A value cut by a short buffer never ends inside a character. */
    Kyufu__V1__Household h = KYUFU__V1__HOUSEHOLD__INIT;
    h.head_name = "山田太郎";
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(&kyufu__v1__household__descriptor,
                                                        "head_name");
    for (size_t len = 1; len <= 13; len++) {
        char small[16];
        kyufu_ctl_field_text(&h.base, f, small, len);
        CHECK_EQ_INT(strlen(small) % 3, 0);
        CHECK(strncmp(small, "山田太郎", strlen(small)) == 0);
    }
    CHECK_STR(kyufu_ctl_yen(999, buf, sizeof buf), "¥999");
    CHECK_STR(kyufu_ctl_yen(1000, buf, sizeof buf), "¥1,000");
    CHECK_STR(kyufu_ctl_yen(1234567, buf, sizeof buf), "¥1,234,567");
    CHECK_STR(kyufu_ctl_yen(-100000, buf, sizeof buf), "-¥100,000");
    CHECK_STR(kyufu_ctl_yen(INT64_MAX, buf, sizeof buf), "¥9,223,372,036,854,775,807");
    CHECK_STR(kyufu_ctl_yen(INT64_MIN, buf, sizeof buf), "-¥9,223,372,036,854,775,808");
}

static void test_time(void)
{
    char buf[64], err[256];
    kyufu_ctl_tz_reset();
    /* 2026-12-05 00:00:00 UTC is 09:00 in Tokyo: the default zone. */
    CHECK_STR(kyufu_ctl_time(1796428800000LL, buf, sizeof buf), "2026-12-05T09:00:00+09:00");
    CHECK_STR(kyufu_ctl_tz(), "Asia/Tokyo");
    CHECK_STR(kyufu_ctl_time(1796428800999LL, buf, sizeof buf), "2026-12-05T09:00:00+09:00");
    int64_t ms;
    CHECK(kyufu_ctl_date_ms("2026-12-05", &ms) == 0);
    CHECK_EQ_INT(ms, 1796428800000LL - 9 * 3600 * 1000LL); /* 00:00 JST */
    CHECK(kyufu_ctl_date_ms("2026-02-30", &ms) != 0);
    CHECK(kyufu_ctl_date_ms("2026-12-5", &ms) != 0);
    CHECK(kyufu_ctl_date_ms("2026-12-05x", &ms) != 0);
    /* Another zone, with daylight time: the offset follows the date. */
    CHECK(kyufu_ctl_tz_set("America/New_York", err, sizeof err) == 0);
    CHECK_STR(kyufu_ctl_time(1796428800000LL, buf, sizeof buf), "2026-12-04T19:00:00-05:00");
    CHECK_STR(kyufu_ctl_time(1783296000000LL, buf, sizeof buf), "2026-07-05T20:00:00-04:00");
    CHECK(kyufu_ctl_tz_set("UTC", err, sizeof err) == 0);
    CHECK_STR(kyufu_ctl_time(0, buf, sizeof buf), "1970-01-01T00:00:00+00:00");
    CHECK_STR(kyufu_ctl_time(-1, buf, sizeof buf), "1969-12-31T23:59:59+00:00");
    /* Bad names change nothing. */
    CHECK(kyufu_ctl_tz_set("Asia/Tokio", err, sizeof err) != 0);
    CHECK(strstr(err, "unknown") != NULL);
    CHECK(kyufu_ctl_tz_set("../../etc/passwd", err, sizeof err) != 0);
    CHECK(kyufu_ctl_tz_set("/etc/localtime", err, sizeof err) != 0);
    CHECK(kyufu_ctl_tz_set("", err, sizeof err) != 0);
    CHECK(kyufu_ctl_tz_set("Asia/Tokyo;rm", err, sizeof err) != 0);
    CHECK(kyufu_ctl_tz_set("zone.tab", err, sizeof err) != 0); /* not a TZif file */
    CHECK_STR(kyufu_ctl_tz(), "UTC");
    kyufu_ctl_tz_reset();
}

/* Every value of every state enum has a clerk's name (no APP_APPROVED on a
 * screen), and the table does not invent values. */
static void test_states(void)
{
    const ProtobufCEnumDescriptor *enums[] = {
        &kyufu__v1__application_status__descriptor, &kyufu__v1__program_status__descriptor,
        &kyufu__v1__batch_status__descriptor,       &kyufu__v1__staff_status__descriptor,
        &kyufu__v1__channel__descriptor,            &kyufu__v1__write_outcome__descriptor,
    };
    for (size_t i = 0; i < sizeof enums / sizeof enums[0]; i++) {
        for (unsigned k = 0; k < enums[i]->n_values; k++) {
            const char *label = kyufu_ctl_state_label(enums[i]->values[k].name);
            if (label == NULL) {
                fprintf(stderr, "no label for %s\n", enums[i]->values[k].name);
                exit(1);
            }
            CHECK(strchr(label, '_') == NULL);
        }
    }
    CHECK_STR(kyufu_ctl_state_label("APP_APPROVED"), "approved");
    CHECK_STR(kyufu_ctl_state_label("APPLICATION_STATUS_UNSPECIFIED"), "-");
    CHECK(kyufu_ctl_state_label("NO_SUCH_VALUE") == NULL);
}

/* Records as a clerk sees them: a table of applications with a Japanese
 * name lines up; amounts, dates and states are readable. */
static void test_table(void)
{
    kyufu_ctl_tz_reset();
    Kyufu__V1__Household h1 = KYUFU__V1__HOUSEHOLD__INIT, h2 = KYUFU__V1__HOUSEHOLD__INIT;
    h1.household_no = "H-001";
    h1.head_name = "山田太郎";
    h1.address = "東京都千代田区千代田一丁目一番一号霞が関ビルディング三十六階南側受付前";
    h1.version = 3;
    h2.household_no = "H-002";
    h2.head_name = "Smith";
    h2.address = "Osaka";
    h2.version = 1;
    const ProtobufCMessage *recs[] = { &h1.base, &h2.base };
    static const char *const cols[] = { "household_no", "head_name", "address", "version",
                                        NULL };
    char buf[8192];
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    kyufu_ctl_print_table(f, recs, 2, cols);
    fclose(f);
    /* Every line: the "version" column starts at the same display column. */
    size_t col = 0;
    int lines = 0;
    for (char *save = NULL, *line = strtok_r(buf, "\n", &save); line != NULL;
         line = strtok_r(NULL, "\n", &save), lines++) {
        char *v = strrchr(line, ' ');
        CHECK(v != NULL);
        v[0] = '\0';
        size_t c = kyufu_ctl_text_width(line) + 1;
        if (lines == 0) {
            col = c;
        }
        CHECK_EQ_INT(c, col);
        if (lines == 1) {
            CHECK(strstr(line, "山田太郎") != NULL);
            CHECK(strstr(line, "…") != NULL); /* the long address, cut */
        }
    }
    CHECK_EQ_INT(lines, 3);

    Kyufu__V1__Application a = KYUFU__V1__APPLICATION__INIT;
    a.id = 42;
    a.amount = 1234567;
    a.status = KYUFU__V1__APPLICATION_STATUS__APP_APPROVED;
    a.channel = KYUFU__V1__CHANNEL__CHANNEL_COUNTER;
    a.submitted_ms = 1796428800000LL;
    f = fmemopen(buf, sizeof buf - 1, "w");
    kyufu_ctl_print_record(f, &a.base, 0);
    fclose(f);
    CHECK(strstr(buf, "amount: ¥1,234,567\n") != NULL);
    CHECK(strstr(buf, "status: approved\n") != NULL);
    CHECK(strstr(buf, "channel: counter\n") != NULL);
    CHECK(strstr(buf, "submitted_ms: 2026-12-05T09:00:00+09:00\n") != NULL);
    CHECK(strstr(buf, "decided_ms: \n") != NULL); /* 0: not yet */
    CHECK(strstr(buf, "APP_") == NULL);

    Kyufu__V1__PaymentBatch b = KYUFU__V1__PAYMENT_BATCH__INIT;
    b.transfer_date = 20261210;
    b.total_amount = 50000;
    f = fmemopen(buf, sizeof buf - 1, "w");
    kyufu_ctl_print_record(f, &b.base, 0);
    fclose(f);
    CHECK(strstr(buf, "transfer_date: 2026-12-10\n") != NULL);
    CHECK(strstr(buf, "total_amount: ¥50,000\n") != NULL);

    /* --json keeps the machine forms: enum names, epoch ms, integers. */
    json_t *j = kyufu_ctl_to_json(&a.base);
    CHECK_STR(json_string_value(json_object_get(j, "status")), "APP_APPROVED");
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "amount")), 1234567);
    CHECK_EQ_INT(json_integer_value(json_object_get(j, "submitted_ms")), 1796428800000LL);
    json_decref(j);
}

int main(void)
{
    test_width();
    test_fit();
    test_yen();
    test_time();
    test_states();
    test_table();
    printf("ok\n");
    return 0;
}
