// service is a server that never exits by itself. At start it fills a cache of 100 blocks and
// keeps them; then every 10 ms a handler leaks 1 KiB and frees another block. It stops cleanly
// on SIGTERM or SIGINT, printing its shutdown line.
//
//	service [-churn]   -churn: the handler frees everything (steady memory, for soak runs)
package main

/*
#include <stdlib.h>
#include <string.h>

void *svc_cache[100];   // globals, not statics: gcc may drop stores to, and then the malloc
void *svc_leaked[1 << 20]; // behind, a static array nothing reads
long nleaked;
void *volatile svc_sink;

static void fill_cache(void) {
	for (int i = 0; i < 100; i++) {
		svc_cache[i] = malloc(256);
		memset(svc_cache[i], 1, 256);
	}
}

static void handle_request(int leak) {
	void *q = malloc(300 + (int)(nleaked % 50));
	svc_sink = q;
	free(q);
	if (leak) {
		void *p = malloc(1024);
		memset(p, 2, 1024);
		svc_leaked[nleaked++ % (1 << 20)] = p;
	}
}
*/
import "C"

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

func main() {
	churn := flag.Bool("churn", false, "free everything (no leak)")
	every := flag.Duration("every", 10*time.Millisecond, "time between requests")
	flag.Parse()
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGTERM, syscall.SIGINT)
	C.fill_cache()
	fmt.Println("service: cache filled, serving")
	tick := time.NewTicker(*every)
	defer tick.Stop()
	requests := 0
	leak := C.int(1)
	if *churn {
		leak = 0
	}
	for {
		select {
		case <-tick.C:
			C.handle_request(leak)
			requests++
		case s := <-stop:
			fmt.Printf("service: %v received, shutting down after %d requests\n", s, requests)
			return
		}
	}
}
