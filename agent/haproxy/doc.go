// Package haproxy is everything webfarm's node agent needs from the local
// HAProxy: it renders the configuration of the farms that select the node
// (Render, ErrorFiles), validates it with `haproxy -c` and loads it into a
// master-worker HAProxy that it starts, adopts after an agent restart and
// reloads hitlessly (Process.Apply), and reads or changes server states
// through the runtime API (Process.Stats, Process.SetDrain).
//
// Error files: Render refers to each farm's error pages by a path relative to
// the configuration file (errors/<backend>/<code>.http; the global section sets
// `default-path config`), and ErrorFiles returns those paths with the complete
// HTTP responses to write there. The agent passes both to Process.Apply, which
// writes them into a staging copy, validates that copy and only then moves it
// into Process.Dir:
//
//	cfg, err := haproxy.Render(c)
//	...
//	reloaded, err := proc.Apply(ctx, cfg, haproxy.ErrorFiles(c))
//
// HAProxy runs in master-worker mode (-W) in a session of its own, so that it survives the
// agent; Process.Dir holds everything needed to find it again. With
// Process.Beside, its master runs in a container of its own (ExecBeside) and
// outlives the agent's container too: the agent then only installs,
// validates and reloads. Draining is
// not part of the configuration, so that draining a front reloads no HAProxy:
// the agent puts the front's main server in the runtime drain state
// (SetDrain, DRAIN in Stats), which the server-state file carries over
// reloads.
package haproxy
