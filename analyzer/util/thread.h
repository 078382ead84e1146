/* Helper threads of the analyzer. */
#ifndef CGOSCOPE_THREAD_H
#define CGOSCOPE_THREAD_H

#include <pthread.h>

/* pthread_create with every signal blocked in the new thread, so that signals stay with the
 * threads that have them unblocked (SIGINT and SIGTERM must interrupt the run loop's sleep).
 * Returns 0, or pthread_create's error. */
int thread_start_quiet(pthread_t *t, void *(*fn)(void *), void *arg);

#endif
