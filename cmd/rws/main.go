// Command rws patches image classifiers with robust weight signatures: it extracts, stores,
// applies and removes them on safetensors checkpoints, trains and evaluates the models, and
// generates the corruption benchmarks. Run "rws help" for the commands.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/rws-project/rws/internal/atomicfile"
)

func main() { os.Exit(run()) }

// run is the whole command; tests call it in a subprocess through testscript.
func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// Commands watch ctx and return; one that does not get there within a grace period,
		// or a second interrupt, still exits with no temporary output left behind.
		<-ctx.Done()
		stop()
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
		select {
		case <-sig:
		case <-time.After(3 * time.Second):
		}
		atomicfile.RemoveAll()
		os.Exit(exitInterrupted)
	}()
	code := runMain(ctx, newApp(), os.Args[1:])
	stop()
	atomicfile.RemoveAll()
	return code
}
