// Command webfarm-testbed runs the whole web farm on one machine (see
// test/testbed): `up` starts it and waits for Ctrl-C, `demo` runs the
// narrated scenarios and prints a summary table. It needs root.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/webfarm/webfarm/test/testbed"
)

const usage = `usage: webfarm-testbed <command> [flags]

commands:
  up                 start the testbed, print how to explore it, wait for Ctrl-C
  demo [--keep]      run the demo scenarios and print a summary table;
                     --keep leaves the testbed running afterwards until Ctrl-C
  bench-failover [--trials N] [--out FILE] [--webfarm-only] [--database-only]
                     compare failover gaps of keepalived (VRRP) and webfarm on
                     the testbed, for the fronts' VIP and for the database's
                     address: N trials of each kind (default 5), the tables
                     printed and written to FILE (default _output/bench-failover.txt);
                     --webfarm-only skips keepalived's trials, --database-only
                     the fronts' 
  trials [--settings defaults|fastest] [--kind handoff|hardloss] [--trials N]
                     webfarm's trials of one kind at one setting, alone (default
                     5 planned hand-offs at the fastest settings), each with its
                     timeline; the table printed
  soak-failover [--duration D] [--cpu-hogs N] [--out FILE]
                     hold the farm at its fastest settings for D (default 30m)
                     under a steady load with N CPU-burning processes (default 2)
                     and fail on any owner change, fence or two answerers; the
                     figures printed and written to FILE (default _output/soak-failover.txt)
  sweep              remove the namespaces an earlier run left behind

flags (up, demo):
  --fronts N         number of fronts (default 3)
  --bin-dir DIR      prebuilt webfarm-controller and webfarm-agent (default: build them)
  --without-farm     (up) start neither the controller nor the agents
  --without-agents   (up) start the controller but no agent
`

func main() {
	if len(os.Args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	err := run(os.Args[1], os.Args[2:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "\nwebfarm-testbed %s FAILED: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func run(command string, args []string) error {
	fs := flag.NewFlagSet(command, flag.ContinueOnError)
	fs.Usage = func() {}
	fronts := fs.Int("fronts", 3, "")
	binDir := fs.String("bin-dir", "", "")
	withoutFarm := fs.Bool("without-farm", false, "")
	withoutAgents := fs.Bool("without-agents", false, "")
	keep := fs.Bool("keep", false, "")
	trials := fs.Int("trials", 5, "")
	out := fs.String("out", "", "")
	duration := fs.Duration("duration", 30*time.Minute, "")
	hogs := fs.Int("cpu-hogs", 2, "")
	settings := fs.String("settings", "fastest", "")
	kind := fs.String("kind", "handoff", "")
	webfarmOnly := fs.Bool("webfarm-only", false, "")
	databaseOnly := fs.Bool("database-only", false, "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	opts := testbed.Options{Fronts: *fronts, BinDir: *binDir, WithoutFarm: *withoutFarm, WithoutAgents: *withoutAgents, Log: os.Stdout}

	// Ctrl-C or SIGTERM cancels ctx; whatever runs then returns, and the
	// deferred Close removes everything the testbed created.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	switch command {
	case "sweep":
		return testbed.Sweep()
	case "up":
		return up(ctx, opts)
	case "demo":
		return demo(ctx, opts, *keep)
	case "bench-failover":
		return benchFailover(ctx, opts, *trials, orDefault(*out, "_output/bench-failover.txt"), benchOnly{webfarm: *webfarmOnly, database: *databaseOnly})
	case "trials":
		return webfarmTrials(ctx, opts, *settings, *kind, *trials)
	case "soak-failover":
		return soakFailover(ctx, opts, *duration, *hogs, orDefault(*out, "_output/soak-failover.txt"))
	default:
		return flag.ErrHelp
	}
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// withTestbed starts a testbed, runs fn with it, and always closes it —
// also after an error, a panic in fn, or Ctrl-C.
func withTestbed(ctx context.Context, opts testbed.Options, fn func(*testbed.Testbed) error) (err error) {
	fmt.Println("Starting the testbed (control plane, network namespaces, web servers, farm)...")
	tb, err := testbed.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Println("\nRemoving the testbed (processes, namespaces, files)...")
		err = errors.Join(err, tb.Close())
	}()
	return fn(tb)
}

func up(ctx context.Context, opts testbed.Options) error {
	return withTestbed(ctx, opts, func(tb *testbed.Testbed) error {
		explain(tb)
		<-ctx.Done()
		return nil
	})
}

// explain tells a person how to look at the running testbed.
func explain(tb *testbed.Testbed) {
	fmt.Printf(`
The testbed is running. In another terminal:

  export KUBECONFIG=%s
  %s get wf,fn,fip -A
  %s annotate node front1 webfarm.io/drain=true     # drain front1
  %s annotate node front1 webfarm.io/drain-         # undrain it

  ip netns exec %s curl -si http://%s/                   # a request to the VIP
  ip netns exec %s curl -si -u admin:change-me-please 'http://%s/haproxy?stats'
  ip netns exec %s ip addr show dev eth0                # who holds the VIP

Files (logs, kubeconfigs, nginx access logs) are in %s
Press Ctrl-C to stop and remove everything.
`, tb.Kubeconfig(), tb.KubectlPath(), tb.KubectlPath(), tb.KubectlPath(),
		testbed.ClientNS, testbed.VIP, testbed.ClientNS, testbed.VIP,
		tb.Fronts()[0].Namespace, tb.Dir())
}
