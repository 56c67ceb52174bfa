/* placeholder */ typedef int ctl_sla_placeholder;
