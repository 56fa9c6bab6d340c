// Command webserver is the sample farm's web server in the local cluster: a
// hostNetwork pod on every front, on the farm's webPort, as nginx is on the
// testbed's fronts. It answers with its node's name, in the body and in the
// X-Front header, so a client can tell which front served it, and serves the
// farm's health check path.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	node := os.Getenv("NODE_NAME")
	addr := os.Getenv("LISTEN")
	if addr == "" {
		addr = ":5380"
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/check.txt", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Front", node)
		fmt.Fprintln(w, node)
	})
	log.Printf("webserver of %s on %s", node, addr)
	log.Fatal(http.ListenAndServe(addr, mux))
}
