package testbed

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/template"
)

// nginxConf is each front's web server, configured as in the original setup:
// the client address from X-Forwarded-For first in the access log (the
// proxy's at the end), /check.txt served but not logged. The page answers
// with the front's name, and every answer carries it in X-Front, so a
// client can tell which front served it. It includes the vhosts the
// front's agent writes for the Sites (--nginx-dir); once it does, their
// default server answers hosts no site names, so the hand-written server
// names the hosts the testbed asks by address. Every file nginx writes
// lives in the front's directory.
var nginxConf = template.Must(template.New("nginx.conf").Parse(`# webfarm testbed: the web server of {{.Name}}
daemon off;
master_process on;
worker_processes 1;
user root root;
pid {{.Dir}}/nginx.pid;
error_log {{.Dir}}/error.log warn;

events {
  worker_connections 1024;
}

http {
  default_type text/plain;
  client_body_temp_path {{.Dir}}/temp/client;
  proxy_temp_path {{.Dir}}/temp/proxy;
  fastcgi_temp_path {{.Dir}}/temp/fastcgi;
  uwsgi_temp_path {{.Dir}}/temp/uwsgi;
  scgi_temp_path {{.Dir}}/temp/scgi;

  log_format main '$http_x_forwarded_for - $remote_user [$time_local] '
                  '"$request" $status $body_bytes_sent "$http_referer" '
                  '"$http_user_agent" "$remote_addr"';
  access_log {{.Dir}}/access.log main;
  add_header X-Front {{.Name}} always;

  include {{.VhostDir}}/*.conf;

  server {
    # Every address of the front: its own, for HAProxy's servers, and
    # keepalived's VIP when the failover bench puts it there.
    listen {{.Port}};
    server_name "~^[0-9.]+$" localhost;
    root {{.Dir}}/www;
    add_header X-Front {{.Name}} always;

    location = /check.txt {
      access_log off;
      expires 30d;
    }
    location / {
      index index.txt;
    }
    # The upload handler: PUT writes the body to a temporary file, then
    # renames it into the uploads directory (uploads.go).
    location /uploads/ {
      dav_methods PUT;
      create_full_put_path on;
      dav_access user:rw group:r all:r;
      client_max_body_size 16m;
    }
  }
}
`))

// webServer is one front's nginx: its files, and its process once started.
type webServer struct {
	name, address, dir string
	proc               *process
}

func newWebServer(name, address, dir string) (*webServer, error) {
	w := &webServer{name: name, address: address, dir: dir}
	for _, d := range []string{"www", "temp", "webfarm"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return nil, err
		}
	}
	files := map[string]string{
		"www/index.txt": name + "\n",
		"www/check.txt": "ok\n",
	}
	for path, content := range files {
		if err := os.WriteFile(filepath.Join(dir, path), []byte(content), 0o644); err != nil {
			return nil, err
		}
	}
	conf, err := os.Create(w.confPath())
	if err != nil {
		return nil, err
	}
	defer conf.Close()
	err = nginxConf.Execute(conf, struct {
		Name, Address, Dir, VhostDir string
		Port                         int
	}{name, address, dir, w.vhostDir(), WebPort})
	if err != nil {
		return nil, fmt.Errorf("rendering nginx.conf of %s: %w", name, err)
	}
	w.proc = &process{
		name: "nginx " + name,
		ns:   FrontPrefix + strings.TrimPrefix(name, "front"),
		argv: []string{"nginx", "-p", dir, "-c", w.confPath(), "-e", filepath.Join(dir, "error.log")},
		log:  filepath.Join(dir, "nginx.out"),
	}
	return w, nil
}

func (w *webServer) confPath() string { return filepath.Join(w.dir, "nginx.conf") }

// vhostDir is the agent's --nginx-dir: the Sites' vhosts.
func (w *webServer) vhostDir() string { return filepath.Join(w.dir, "webfarm") }

// AccessLogPath is the front's nginx access log.
func (w *webServer) AccessLogPath() string { return filepath.Join(w.dir, "access.log") }

// AccessLog returns the lines of the front's access log so far.
func (w *webServer) AccessLog() ([]string, error) {
	f, err := os.Open(w.AccessLogPath())
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	s := bufio.NewScanner(f)
	for s.Scan() {
		lines = append(lines, s.Text())
	}
	return lines, s.Err()
}
