/* kyufuctl entry point; everything else is in ctl_*.c (testable). */
#include <signal.h>
#include <stdio.h>

#include "ctl.h"

int main(int argc, char **argv)
{
    /* A node that dies mid-call must give us an error, not a SIGPIPE. */
    signal(SIGPIPE, SIG_IGN);
    return kyufu_ctl_main(argc, argv, stdout, stderr);
}
