// Package checks runs the health checks that decide whether this node may
// hold a standalone FailoverIP (a database's address): TCP, HTTP, a
// MySQL/MariaDB role check and exec scripts, each with keepalived's
// track_script timing (interval, timeout, rise, fall). The hysteresis
// (Tracker) is pure; the probes reach the node's own services.
package checks
