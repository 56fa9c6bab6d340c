// Package failoversim is a deterministic simulation of the failover-IP
// fencing protocol: the real controllers.Elect and the real ownership.Decide
// run together against a modelled API server, network, clocks and kernel,
// under faults drawn from a seed, and a checker asserts that no two nodes
// ever answer for the address and that a healthy majority gets an owner
// within a bound. docs/failover-safety.md gives the argument it checks.
//
// Each part the protocol talks to has its own small model in its own file
// (apiserver.go, controller.go, agent.go, peers.go, kernel.go), so that a
// change of one part of the protocol changes one file here.
package failoversim
