package command

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name    string
		script  string
		env     []string
		timeout time.Duration
		want    string
		wantErr bool
		timeOut bool
	}{
		{name: "exit 0", script: `echo "hello $WHO"`, env: []string{"WHO=db"}, timeout: 5 * time.Second, want: "hello db\n"},
		{name: "exit 1", script: `echo no; exit 1`, timeout: 5 * time.Second, want: "no\n", wantErr: true},
		// The child's sleep must die with the group, or Run would wait for
		// the pipe it holds.
		{name: "timeout kills the group", script: `sleep 30 & sleep 30`, timeout: 200 * time.Millisecond, wantErr: true, timeOut: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Now()
			out, err := Run(context.Background(), "/bin/sh", []string{"-c", tt.script}, tt.env, tt.timeout)
			t.Logf("took %s", time.Since(start))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.timeOut && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a deadline", err)
			}
			if !tt.timeOut && out != tt.want {
				t.Errorf("output = %q, want %q", out, tt.want)
			}
			if tt.timeOut && time.Since(start) > 5*time.Second {
				t.Errorf("a timed-out run took %s: its group was not killed", time.Since(start))
			}
		})
	}
	out, _ := Run(context.Background(), "/bin/sh", []string{"-c", `head -c 10000 /dev/zero | tr '\0' a; echo END`}, nil, 5*time.Second)
	if len(out) != maxOutput || !strings.HasSuffix(out, "END\n") {
		t.Errorf("long output: %d bytes ending %q, want the last %d", len(out), out[len(out)-4:], maxOutput)
	}
}
