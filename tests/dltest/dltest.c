/* A library that testprogs/dlopen loads with dlopen(), after the program has started: its
 * allocations must be seen, and its frames named, though the shim learned of it late. */
#include <stdlib.h>

void *volatile dltest_sink;

__attribute__((noinline)) void *dltest_leak(size_t n)
{
    void *p = malloc(n);
    dltest_sink = p; /* no tail call: this function stays on the stack */
    return p;
}

void dltest_churn(int n)
{
    for (int i = 0; i < n; i++) {
        void *p = calloc(1, 24 + (size_t)(i % 40));
        dltest_sink = p;
        free(p);
    }
}
