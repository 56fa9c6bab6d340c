// Package serving decides whether this node can serve each FailoverIP it may
// hold: its HAProxy answers on the farms' frontends, the link of the address
// is up and, when the FailoverIP lists ping targets, one of them answers.
// Results go through keepalived's track_script rise/fall hysteresis before
// the agent reports them. The decision (Evaluate, Tracker) is pure; the
// probes reach the node through injectable dialers and netlink handles.
package serving
