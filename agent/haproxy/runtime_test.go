package haproxy

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
)

// showStat is HAProxy 2.6's answer to `show stat`, cut after the columns
// Stats reads.
const showStat = `# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail
farm_default_web,FRONTEND,,,3,5,2000,9,,,,,,,,,,OPEN,,,,
farm_default_web,front1,0,0,2,3,,7,0,0,,0,,0,0,0,0,UP,1,1,0,0
farm_default_web,front1-backup,0,0,0,0,,0,0,0,,0,,0,0,0,0,DRAIN,1,0,1,0
farm_default_web,front2,0,0,0,0,,0,0,0,,0,,0,0,0,0,"no check",0,1,0,0
farm_default_web,BACKEND,0,0,2,3,,7,0,0,,0,,0,0,0,0,UP,2,2,1,0
`

func TestParseStat(t *testing.T) {
	got, err := parseStat(showStat)
	if err != nil {
		t.Fatal(err)
	}
	want := []ServerStat{
		{Backend: "farm_default_web", Server: "front1", Status: "UP", Weight: 1, Sessions: 2},
		{Backend: "farm_default_web", Server: "front1-backup", Status: "DRAIN", Weight: 1, Backup: true},
		{Backend: "farm_default_web", Server: "front2", Status: "no check"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseStat =\n%+v\nwant\n%+v", got, want)
	}
	for _, bad := range []string{"", "Unknown command\n", "# pxname,svname\nx,y\n", strings.Replace(showStat, ",2,3,,7", ",x,3,,7", 1)} {
		if _, err := parseStat(bad); err == nil {
			t.Errorf("parseStat(%q) accepted it", bad)
		}
	}
}

func TestParseShowProc(t *testing.T) {
	out := `#<PID>          <type>          <reloads>       <uptime>        <version>
3929            master          2 [failed: 1]   0d00h00m20s     2.6.12-1+deb12u4
# workers
4241            worker          0               0d00h00m11s     2.6.12-1+deb12u4
# old workers
4100            worker          1               0d00h00m15s     2.6.12-1+deb12u4
# programs

`
	got, err := parseShowProc(out)
	if err != nil {
		t.Fatal(err)
	}
	want := procList{reloads: 2, failedReloads: 1, workers: []int{4241}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseShowProc = %+v, want %+v", got, want)
	}
	if _, err := parseShowProc("Unknown command.\n"); err == nil {
		t.Error("parseShowProc accepted an answer without master")
	}
}

func TestErrorResponse(t *testing.T) {
	cases := []struct {
		name string
		page string
		want string // "" when refused
	}{
		{"html body", "<p>down</p>",
			"HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html; charset=utf-8\r\nCache-Control: no-cache\r\nContent-Length: 11\r\nConnection: close\r\n\r\n<p>down</p>"},
		{"full response keeps its headers, not its framing",
			"HTTP/1.0 503 Busy\r\nRetry-After: 9\r\ncontent-type: text/plain\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nbusy",
			"HTTP/1.1 503 Service Unavailable\r\nRetry-After: 9\r\ncontent-type: text/plain\r\nCache-Control: no-cache\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbusy"},
		{"status differs from the key", "HTTP/1.1 502 Bad Gateway\r\n\r\n", ""},
		{"bare LF in headers", "HTTP/1.1 503 Busy\r\nA: b\nC: d\r\n\r\n", ""},
		{"header without colon", "HTTP/1.1 503 Busy\r\nnot a header\r\n\r\n", ""},
		{"chunked", "HTTP/1.1 503 Busy\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", ""},
		{"no end of headers", "HTTP/1.1 503 Busy\r\nA: b\r\n", ""},
		{"too large", strings.Repeat("x", maxErrorBody+1), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := errorResponse(503, []byte(tc.page))
			if tc.want == "" {
				if err == nil {
					t.Fatalf("accepted:\n%q", got)
				}
				return
			}
			if err != nil || string(got) != tc.want {
				t.Fatalf("errorResponse = %q, %v\nwant %q", got, err, tc.want)
			}
		})
	}
	if _, err := errorResponse(418, []byte("teapot")); err == nil {
		t.Error("status 418, which HAProxy does not serve from files, was accepted")
	}
}

func TestValidationErrorShowsTheAlerts(t *testing.T) {
	e := &ValidationError{Output: `[NOTICE]   (1) : haproxy version is 2.6.12
[ALERT]    (7) : config : parsing [haproxy.cfg:54] : unknown keyword 'nosuch' in 'listen' section
[ALERT]    (7) : config : Error(s) found in configuration file : haproxy.cfg
[ALERT]    (7) : config : Fatal errors found in configuration.
`}
	want := "haproxy -c refused the configuration: config : parsing [haproxy.cfg:54] : unknown keyword 'nosuch' in 'listen' section"
	if e.Error() != want {
		t.Fatalf("Error() = %q, want %q", e.Error(), want)
	}
}

// TestApplyRefusesWithoutChange needs haproxy but neither root nor a
// namespace: a refused configuration never reaches Dir, and no HAProxy starts.
func TestApplyRefusesWithoutChange(t *testing.T) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		t.Skip("haproxy is not installed")
	}
	p := &Process{Binary: bin, Dir: t.TempDir()}
	cfg := []byte("global\n    master-worker\nlisten x\n    nosuch-keyword\n")
	reloaded, err := p.Apply(context.Background(), cfg, nil)
	var verr *ValidationError
	if !errors.As(err, &verr) || reloaded {
		t.Fatalf("Apply = %v, %v; want a *ValidationError", reloaded, err)
	}
	entries, err := os.ReadDir(p.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		t.Fatalf("a refused configuration left %d files in Dir (first %s)", len(entries), entries[0].Name())
	}
	if p.Running(context.Background()) {
		t.Fatal("Running after a refused configuration")
	}
	for _, path := range []string{"../escape.http", "/etc/passwd", "errors/../../x", "haproxy.cfg"} {
		if _, err := p.Apply(context.Background(), cfg, map[string][]byte{path: nil}); err == nil || !strings.Contains(err.Error(), "under errors/") {
			t.Errorf("Apply with file %q: err = %v", path, err)
		}
	}
}

// showServersState is HAProxy 2.6's answer to `show servers state`: front1
// drained at runtime (admin state 8), front1-backup also in maintenance
// (9), front2 ready.
const showServersState = `1
# be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state srv_uweight srv_iweight srv_time_since_last_change srv_check_status srv_check_result srv_check_health srv_check_state srv_agent_state bk_f_forced_id srv_f_forced_id srv_fqdn srv_port srvrecord srv_use_ssl srv_check_port srv_check_addr srv_agent_addr srv_agent_port
2 farm_default_web 1 front1 127.0.0.1 2 8 1 1 1 1 0 2 0 0 0 0 - 9 - 0 0 - - 0
2 farm_default_web 2 front1-backup 127.0.0.1 2 9 1 1 1 1 0 2 0 0 0 0 - 9 - 0 0 - - 0
2 farm_default_web 3 front2 127.0.0.1 2 0 1 1 1 1 0 2 0 0 0 0 - 9 - 0 0 - - 0
`

func TestParseDrainStates(t *testing.T) {
	got, err := parseDrainStates(showServersState)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]map[string]bool{"farm_default_web": {"front1": true, "front1-backup": true, "front2": false}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("parseDrainStates = %v, want %v", got, want)
	}
	for _, bad := range []string{"", "Unknown command\n", "1\n# be_id srv_id\n", "1\n# be_name srv_name srv_admin_state\nfarm front1 x\n", "1\n# be_name srv_name srv_admin_state\nfarm front1\n"} {
		if _, err := parseDrainStates(bad); err == nil {
			t.Errorf("parseDrainStates(%q) accepted it", bad)
		}
	}
}
