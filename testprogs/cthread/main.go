// cthread starts a thread from C (pthread_create) that leaks three blocks; no Go frame leads
// to them.
package main

/*
#cgo LDFLAGS: -lpthread
#include <pthread.h>
#include <stdlib.h>

void *volatile ct_keep[3];
void *volatile ct_sink;

__attribute__((noinline)) void thread_leak(int i) {
	ct_keep[i] = malloc(100 + i);
}

static void *thread_main(void *arg) {
	(void)arg;
	for (int i = 0; i < 3; i++) {
		thread_leak(i);
		void *p = malloc(4000);
		ct_sink = p;
		free(p);
	}
	return NULL;
}

static int start_and_join(void) {
	pthread_t t;
	if (pthread_create(&t, NULL, thread_main, NULL) != 0)
		return -1;
	return pthread_join(t, NULL);
}
*/
import "C"

import (
	"fmt"
	"os"

	"cgoscope.test/testprogs/internal/truth"
)

func main() {
	if C.start_and_join() != 0 {
		fmt.Fprintln(os.Stderr, "cthread: pthread_create failed")
		os.Exit(1)
	}
	for i := 0; i < 3; i++ {
		truth.HeldC("thread_leak", int64(100+i))
	}
	fmt.Println("cthread: thread joined")
	truth.Write()
}
