// Command pause is the sandbox ("pause") container of the deploy tests' node: it holds a pod's
// namespaces and does nothing until it is told to stop. The tests cannot pull
// registry.k8s.io/pause, so hack/node-assets.sh builds this one, statically, from source.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
