// Package uploads keeps declared directories identical on every front of a
// farm, as the original setup's inotify and rsync did, made safe: a
// recursive inotify watch (Watcher), Debian's rsync pushing every settled
// change to every other front's rsync daemon (Daemon, Pusher), a rule that
// makes concurrent writes converge (Wins), deletions carried as tombstone
// files, and a catch-up that a front runs before it serves (Syncer.CatchUp).
// docs/architecture.md has the design and its reasons.
package uploads
