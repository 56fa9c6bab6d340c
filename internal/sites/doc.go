// Package sites holds the rules about Sites that the controller and the
// agent must apply alike: where a site or a farm is served (Endpoints),
// which of two claims on the same name and endpoint is the newcomer
// (Resolve), and whether a certificate may be loaded (CheckCertificate).
// It is pure: no client, no clock.
package sites
