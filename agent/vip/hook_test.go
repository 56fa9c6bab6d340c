package vip

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeScript writes an executable shell script into dir.
func writeScript(t *testing.T, dir, body string) string {
	t.Helper()
	path := filepath.Join(dir, "hook.sh")
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHookRun(t *testing.T) {
	a := Address{IP: netip.MustParseAddr("fd00:77::100"), FailoverIP: "shop/www", Epoch: 7}
	tests := []struct {
		name     string
		body     string
		action   HookAction
		timeout  time.Duration
		wantArgs string
		wantErr  error
	}{
		{name: "takeover", body: `echo "$@" > "$(dirname "$0")/args"`, action: HookTakeover,
			wantArgs: "takeover fd00:77::100 eth0 shop/www 7"},
		{name: "release", body: `echo "$@" > "$(dirname "$0")/args"`, action: HookRelease,
			wantArgs: "release fd00:77::100 eth0 shop/www 7"},
		{name: "failure", body: `echo "$@" > "$(dirname "$0")/args"; echo api refused >&2; exit 3`, action: HookTakeover,
			wantArgs: "takeover fd00:77::100 eth0 shop/www 7", wantErr: errors.New("exit status 3")},
		// The timeout leaves a loaded machine time to start the shell.
		{name: "timeout kills the group", body: `echo "$@" > "$(dirname "$0")/args"; sleep 30 & wait`, action: HookRelease,
			timeout: 2 * time.Second, wantArgs: "release fd00:77::100 eth0 shop/www 7", wantErr: context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			h := &Hook{Path: writeScript(t, dir, tt.body), Timeout: tt.timeout}
			err := h.Run(context.Background(), tt.action, a, "eth0")
			switch {
			case tt.wantErr == nil && err != nil:
				t.Fatalf("Run: %v", err)
			case tt.wantErr != nil && err == nil:
				t.Fatalf("Run: no error, want %v", tt.wantErr)
			case tt.wantErr != nil && !errors.Is(err, tt.wantErr) && !strings.Contains(err.Error(), tt.wantErr.Error()):
				t.Fatalf("Run: %v, want %v", err, tt.wantErr)
			}
			got, err := os.ReadFile(filepath.Join(dir, "args"))
			if err != nil {
				t.Fatal(err)
			}
			if strings.TrimSpace(string(got)) != tt.wantArgs {
				t.Errorf("hook ran with %q, want %q", strings.TrimSpace(string(got)), tt.wantArgs)
			}
		})
	}
}

func TestNewHook(t *testing.T) {
	dir := t.TempDir()
	exe := writeScript(t, dir, "exit 0")
	plain := filepath.Join(dir, "plain")
	if err := os.WriteFile(plain, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, path string
		wantErr    bool
	}{
		{"absolute executable", exe, false},
		{"relative", "hook.sh", true},
		{"missing", filepath.Join(dir, "missing"), true},
		{"not executable", plain, true},
		{"directory", dir, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewHook(tt.path, time.Second)
			if (err != nil) != tt.wantErr {
				t.Errorf("NewHook(%q) = %v, want error %v", tt.path, err, tt.wantErr)
			}
		})
	}
}
