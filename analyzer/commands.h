#ifndef CGOSCOPE_COMMANDS_H
#define CGOSCOPE_COMMANDS_H

#include <stddef.h>

int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_env(int argc, char **argv);
/* The shim libcgoscope.so: $CGOSCOPE_SHIM, or ../lib/cgoscope/ beside the cgoscope binary. */
int cgoscope_find_shim(char *out, size_t outlen);
int cmd_inspect(int argc, char **argv);
int cmd_diff(int argc, char **argv);

#endif
