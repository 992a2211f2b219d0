// The pod sandbox's "pause" process: it holds the pod's namespaces open and does nothing
// else. Built locally (a tiny static binary) because this test node pulls no images from
// the internet; only the signals a sandbox receives are handled.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		// As PID 1 of the pod it must reap the orphans that are re-parented to it.
		chld := make(chan os.Signal, 16)
		signal.Notify(chld, syscall.SIGCHLD)
		for range chld {
			for {
				pid, err := syscall.Wait4(-1, nil, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}()
	<-sigs
}
