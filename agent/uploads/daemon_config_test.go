package uploads

import (
	"net/netip"
	"strings"
	"testing"
)

func TestDaemonConfigRender(t *testing.T) {
	cfg := DaemonConfig{
		Address:  netip.MustParseAddr("10.0.0.1"),
		Port:     8873,
		StateDir: "/run/webfarm/uploads",
		Peers:    []netip.Addr{netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.2"), netip.MustParseAddr("10.0.0.3")},
		Modules:  []Module{{Name: "default.www.media", Path: "/srv/www/media", UID: 33, GID: 33, FileMode: 0o644, DirMode: 0o755}},
	}
	text, err := cfg.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"address = 10.0.0.1\n", "port = 8873\n", "log format = %o %m %a %i %n\n", "socket options = TCP_NODELAY\n",
		"[default.www.media]\n", "\tpath = /srv/www/media\n", "\tuse chroot = yes\n", "\tmunge symlinks = yes\n",
		"\tuid = 33\n", "\tincoming chmod = D0755,F0644\n", "\tauth users = webfarm\n",
		"\tsecrets file = /run/webfarm/uploads/rsyncd.secrets\n",
		"\thosts allow = 10.0.0.2 10.0.0.3\n", "\thosts deny = *\n",
	} {
		if !strings.Contains(string(text), want) {
			t.Errorf("missing %q in:\n%s", want, text)
		}
	}
}

func TestDaemonConfigRefuses(t *testing.T) {
	base := func() DaemonConfig {
		return DaemonConfig{Address: netip.MustParseAddr("10.0.0.1"), Port: 8873, StateDir: "/s",
			Modules: []Module{{Name: "m", Path: "/srv/m"}}}
	}
	for _, tc := range []struct {
		name string
		edit func(*DaemonConfig)
	}{
		{"no address", func(c *DaemonConfig) { c.Address = netip.Addr{} }},
		{"port 0", func(c *DaemonConfig) { c.Port = 0 }},
		{"module name with a bracket", func(c *DaemonConfig) { c.Modules[0].Name = "m]\n[x" }},
		{"relative path", func(c *DaemonConfig) { c.Modules[0].Path = "srv/m" }},
		{"root path", func(c *DaemonConfig) { c.Modules[0].Path = "/" }},
		{"path with ..", func(c *DaemonConfig) { c.Modules[0].Path = "/srv/../etc" }},
		{"path with a newline", func(c *DaemonConfig) { c.Modules[0].Path = "/srv/m\nuid = 0" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := base()
			tc.edit(&c)
			if text, err := c.Render(); err == nil {
				t.Errorf("rendered:\n%s", text)
			}
		})
	}
}

func TestDaemonConfigNoPeersLetsNobodyIn(t *testing.T) {
	c := DaemonConfig{Address: netip.MustParseAddr("10.0.0.1"), Port: 8873, StateDir: "/s", Modules: []Module{{Name: "m", Path: "/srv/m"}}}
	text, err := c.Render()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(text), "hosts allow") || !strings.Contains(string(text), "hosts deny = *") {
		t.Errorf("a daemon without peers must deny everyone:\n%s", text)
	}
}
