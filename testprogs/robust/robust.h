#ifndef ROBUST_H
#define ROBUST_H

#include <stddef.h>

int robust_threads(int n);
void robust_close_fds(void);
void *robust_c_leak(size_t n);
int robust_daemonize(int n, int delay_ms);
long robust_churn_for(int ms);

#endif
