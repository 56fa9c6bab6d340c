// Package nginx keeps the same vhosts on every front, the part of the
// original setup that puppet did: it renders one nginx server block per
// Site into a directory it owns (Render), checks the whole candidate
// configuration with `nginx -t` and reloads nginx gracefully
// (Process.Apply). A configuration nginx refuses is never loaded.
package nginx
