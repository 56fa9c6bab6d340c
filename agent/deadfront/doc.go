// Package deadfront tells this node's HAProxy at once that another front is
// dead, as soon as the failover protocol considers it dead, rather than
// after HAProxy's own checks have failed fall times: Dead decides, Marker
// marks the front's servers down through the runtime API, once per death,
// and leaves their return to the checks.
package deadfront
