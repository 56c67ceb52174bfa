/* kyufuctl against one scripted node (fake_transport.c), for the ctl
 * tests: a temporary folder with a client config naming one endpoint, and
 * the fake installed as kyufuctl's transport.  Header only: the tests that
 * use it link fake_transport.c and ctl_run.c. */
#ifndef KYUFU_TEST_CTL_FAKE_H
#define KYUFU_TEST_CTL_FAKE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "ctl.h"
#include "fake_transport.h"

/* mkdtemp(dir) (a template ending in XXXXXX), then dir/c.conf with one
 * endpoint (nothing listens: every call goes to the fake) into conf. */
static inline void ctl_fake_conf(char *dir, char *conf, size_t conf_len)
{
    CHECK(mkdtemp(dir) != NULL);
    snprintf(conf, conf_len, "%s/c.conf", dir);
    FILE *cf = fopen(conf, "w");
    CHECK(cf != NULL);
    fputs("[client]\nendpoints = 127.0.0.1:1\nca = /nonexistent/ca.pem\n", cf);
    fclose(cf);
}

/* A fresh script and log, installed as kyufuctl's transport. */
static inline void ctl_fake_reset(struct fake *f)
{
    fake_reset_log(f);
    memset(f, 0, sizeof *f);
    ctl__set_transport(fake_factory, f);
}

#endif
