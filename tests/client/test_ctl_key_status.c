/* kyufuctl key status, text output, against a scripted node
 * (fake_transport.c): the seal count line (counted: "N of LIMIT"; not:
 * "not counted"), who rotated and where; and the strings a node sends
 * (rotated_by, cursor_db) never reach the terminal with control
 * characters in them (an escape sequence, a bell) nor wider than 64
 * columns. */
#include <string.h>

#include "check.h"
#include "ctl.h"
#include "ctl_run.h"
#include "ctl_fake.h"
#include "fake_transport.h"
#include "kyufu/v1/ledger.pb-c.h"
#include "kyufu/v1/service.pb-c.h"

static char out_buf[65536], err_buf[65536];
static char conf[128];

#define run(...) \
    ctl_run(out_buf, sizeof out_buf, err_buf, sizeof err_buf, conf, __VA_ARGS__)

int main(void)
{
    char dir[] = "/tmp/kyufu-ctl-key-XXXXXX";
    ctl_fake_conf(dir, conf, sizeof conf);
    static struct fake f;

    char long_by[200];
    memset(long_by, 'x', sizeof long_by - 1);
    long_by[sizeof long_by - 1] = '\0';

    Kyufu__V1__KeyRotation rot = KYUFU__V1__KEY_ROTATION__INIT;
    rot.version = 2;
    rot.rotated_by = (char *)"kyufu:seal-limit\x1b[2J";
    rot.rotated_index = 77;
    rot.resealed = 5;
    Kyufu__V1__KeyStatus st = KYUFU__V1__KEY_STATUS__INIT;
    st.encrypted = true;
    st.active_version = 2;
    st.rotation = &rot;
    st.cursor_db = (char *)"households\x07";
    st.applied_index = 80;
    st.seals_counted = true;
    st.seals = 12;
    st.seal_limit = 2147483648u;

    ctl_fake_reset(&f);
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &st.base });
    CHECK_EQ_INT(run("key", "status", NULL), 0);
    CHECK(strstr(out_buf, "seals under version 2: 12 of 2147483648") != NULL);
    CHECK(strstr(out_buf, "in progress in households?") != NULL);
    CHECK(strstr(out_buf, "(rotated by kyufu:seal-limit?[2J at raft index 77)") !=
          NULL);
    CHECK(strchr(out_buf, '\x1b') == NULL && strchr(out_buf, '\x07') == NULL);

    /* Not counted (below cluster version 6); a very long name is cut. */
    st.seals_counted = false;
    st.seals = 0;
    rot.rotated_by = long_by;
    ctl_fake_reset(&f);
    fake_push(&f, (struct fake_reply){ .status = 0, .response = &st.base });
    CHECK_EQ_INT(run("key", "status", NULL), 0);
    CHECK(strstr(out_buf, "seals: not counted below cluster version 6") != NULL);
    CHECK(strstr(out_buf, "seals under version") == NULL);
    CHECK(strstr(out_buf, "xxxxxxxxxx") != NULL);
    CHECK(strstr(out_buf, long_by + sizeof long_by - 1 - 64) == NULL);

    fake_reset_log(&f);
    remove(conf);
    rmdir(dir);
    printf("ctl-key-status: ok\n");
    return 0;
}
