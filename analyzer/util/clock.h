/* The analyzer's clocks: every reading of the time goes through here. */
#ifndef CGOSCOPE_CLOCK_H
#define CGOSCOPE_CLOCK_H

#include <stdint.h>

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t clock_mono_ns(void);
/* CLOCK_MONOTONIC in seconds. */
double clock_mono_s(void);
/* The shim's clock now (the TSC on x86-64, else 0), next to CLOCK_MONOTONIC: with the pair the
 * shim sent at start-up, this gives the TSC's rate. */
void clock_sample(uint64_t *ticks, uint64_t *ns);
/* The TSC, read after every load before it and before every load after it (0 off x86-64): a
 * pass over the channel that begins with it sees everything stamped earlier (reorder.h). */
uint64_t clock_tsc_fenced(void);
/* With CGOSCOPE_PHASES=1 in the analyzer's environment, prints to stderr how long since the
 * last mark (or the first call) and the name of the step that just ended: where the time after
 * a program's end goes (bench/README.md). Costs one getenv the first time, nothing after. */
void clock_phase(const char *what);
/* Sleeps us microseconds. */
void clock_sleep_us(long us);

#endif
