#ifndef CGOSCOPE_COMMANDS_H
#define CGOSCOPE_COMMANDS_H

#include <stddef.h>

int cmd_run(int argc, char **argv);
int cmd_report(int argc, char **argv);
int cmd_env(int argc, char **argv);
int cmd_inspect(int argc, char **argv);
int cmd_diff(int argc, char **argv);
int cmd_test(int argc, char **argv);

#endif
