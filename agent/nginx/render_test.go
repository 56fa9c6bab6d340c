package nginx

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// goldenConfigs are kept rendered under testdata/<name>/.
var goldenConfigs = map[string]Config{
	"static": {
		Vhosts: []Vhost{{Key: "default/www", Port: 5380, Hostnames: []string{"www.example.com", "example.com"},
			Root: "/srv/www/example.com", Index: []string{"index.html", "index.htm"}, ClientMaxBodySize: "1m"}},
		CheckPaths: map[int32]string{5380: "/check.txt"},
		AccessLog:  "/var/log/nginx/access.log",
		Hidden:     []string{".webfarm"},
	},
	"proxy": {
		Vhosts: []Vhost{
			{Key: "shop/app", Port: 5080, Hostnames: []string{"shop.example.com", "*.shop.example.com"}, ProxySocket: "/run/shop/puma.sock", ClientMaxBodySize: "10m"},
			{Key: "shop/api", Port: 5080, Hostnames: []string{"api.example.com"}, ProxyPort: 3000},
			{Key: "blog/www", Port: 8000, Hostnames: []string{"blog.example.org"}, Root: "/srv/blog"},
		},
		CheckPaths: map[int32]string{5080: "/check.txt", 8000: "/healthz?full=1"},
		AccessLog:  "/var/log/nginx/access.log",
		Hidden:     []string{".webfarm"},
	},
}

func TestRenderGolden(t *testing.T) {
	for name, c := range goldenConfigs {
		t.Run(name, func(t *testing.T) {
			files, errs := Render(c)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			dir := filepath.Join("testdata", name)
			if *update {
				if err := os.RemoveAll(dir); err != nil {
					t.Fatal(err)
				}
				if err := writeDir(dir, files); err != nil {
					t.Fatal(err)
				}
			}
			got, err := readDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			if !same(got, files) {
				t.Errorf("%s differs from the rendering (run go test -update and review the diff)", dir)
			}
			checkWithNginx(t, dir)
		})
	}
}

// checkWithNginx runs `nginx -t` on dir, included by a minimal main
// configuration, when nginx is installed and the test runs as root (nginx
// opens the access log as it checks).
func checkWithNginx(t *testing.T, dir string) {
	t.Helper()
	if _, err := exec.LookPath("nginx"); err != nil || os.Geteuid() != 0 {
		t.Log("nginx not installed or not root: configuration not checked by nginx -t")
		return
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	p := &Process{Dir: abs, Prefix: t.TempDir()}
	p.MainConfig = writeMainConfig(t, p.Prefix, abs, false)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.run(ctx, "-t"); err != nil {
		t.Fatalf("%s: %v", dir, err)
	}
}

// writeMainConfig writes prefix/nginx.conf: everything nginx writes under
// prefix, and the vhosts of dir included in http {}.
func writeMainConfig(t testing.TB, prefix, dir string, daemon bool) string {
	t.Helper()
	for _, d := range []string{"logs", "temp"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	on := "off"
	if daemon {
		on = "on"
	}
	conf := fmt.Sprintf(`daemon %s;
user root root;
worker_processes 1;
pid %[2]s/nginx.pid;
error_log %[2]s/logs/error.log warn;
events { worker_connections 256; }
http {
    client_body_temp_path %[2]s/temp/client;
    proxy_temp_path %[2]s/temp/proxy;
    fastcgi_temp_path %[2]s/temp/fastcgi;
    uwsgi_temp_path %[2]s/temp/uwsgi;
    scgi_temp_path %[2]s/temp/scgi;
    include %[3]s/*.conf;
}
`, on, prefix, dir)
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// FuzzRenderVhost: whatever a Site's fields hold, a rendered vhost holds
// them only as the plain values the renderer accepts — no quote, brace,
// semicolon, '$', '#', space or line break that would start a directive.
func FuzzRenderVhost(f *testing.F) {
	f.Add("www.example.com", "/srv/www", "index.html", "", "1m")
	f.Add("*.example.com", "", "", "/run/app.sock", "")
	f.Add("a.example.com;\n}", "/srv/www; include /etc/passwd", "x y", "/run/a.sock {", "1m;")
	f.Fuzz(func(t *testing.T, host, root, index, socket, size string) {
		v := Vhost{Key: "ns/site", Port: 5080, Hostnames: []string{host}, Root: root, ProxySocket: socket, ClientMaxBodySize: size}
		if index != "" {
			v.Index = []string{index}
		}
		files, errs := Render(Config{Vhosts: []Vhost{v}, AccessLog: "/var/log/nginx/access.log"})
		text, ok := files[VhostFile(v.Key)]
		if !ok {
			if len(errs) == 0 {
				t.Fatal("a vhost left out without an error")
			}
			return
		}
		for _, field := range []string{host, root, index, socket, size} {
			if strings.ContainsAny(field, ";{}\"'$# \t\r\n\\") {
				t.Fatalf("rendered a field holding a special character: %q\n%s", field, text)
			}
		}
		if n := bytes.Count(text, []byte("{")); n != bytes.Count(text, []byte("}")) {
			t.Fatalf("unbalanced braces:\n%s", text)
		}
	})
}

func TestRenderRefusesBadVhosts(t *testing.T) {
	good := Vhost{Key: "ns/site", Port: 5080, Hostnames: []string{"www.example.com"}, Root: "/srv/www"}
	for name, edit := range map[string]func(*Vhost){
		"root with ..":          func(v *Vhost) { v.Root = "/srv/../etc" },
		"root and proxy":        func(v *Vhost) { v.ProxyPort = 3000 },
		"neither root or proxy": func(v *Vhost) { v.Root = "" },
		"socket relative":       func(v *Vhost) { v.Root, v.ProxySocket = "", "run/a.sock" },
		"hostname upper case":   func(v *Vhost) { v.Hostnames = []string{"WWW.example.com"} },
		"no hostname":           func(v *Vhost) { v.Hostnames = nil },
		"port 0":                func(v *Vhost) { v.Port = 0 },
		"body size in words":    func(v *Vhost) { v.ClientMaxBodySize = "big" },
		"key with a newline":    func(v *Vhost) { v.Key = "ns/site\nx" },
	} {
		v := good
		edit(&v)
		files, errs := Render(Config{Vhosts: []Vhost{good, func() Vhost { v.Key = strings.Replace(v.Key, "site", "bad", 1); return v }()}, AccessLog: "/var/log/nginx/access.log"})
		if len(errs) != 1 {
			t.Errorf("%s: errors %v, want one", name, errs)
		}
		if _, ok := files[VhostFile(good.Key)]; !ok {
			t.Errorf("%s: the good vhost was left out too", name)
		}
	}
}
