package vip

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestRecord(t *testing.T) {
	v4, v6 := netip.MustParseAddr("10.77.0.100"), netip.MustParseAddr("fd00:77::100")
	tests := []struct {
		name  string
		steps func(r record) error
		want  []netip.Addr
	}{
		{"missing file is empty", func(record) error { return nil }, nil},
		{"add twice keeps one", func(r record) error {
			if err := r.add(v4); err != nil {
				return err
			}
			return r.add(v4)
		}, []netip.Addr{v4}},
		{"add both families", func(r record) error {
			if err := r.add(v4); err != nil {
				return err
			}
			return r.add(v6)
		}, []netip.Addr{v4, v6}},
		{"remove one", func(r record) error {
			for _, ip := range []netip.Addr{v4, v6} {
				if err := r.add(ip); err != nil {
					return err
				}
			}
			return r.remove(v4)
		}, []netip.Addr{v6}},
		{"remove absent", func(r record) error { return r.remove(v4) }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := record{path: filepath.Join(t.TempDir(), "run", "webfarm", "vip.json")}
			if err := tt.steps(r); err != nil {
				t.Fatal(err)
			}
			got, err := r.load()
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("record holds %v, want %v", got, tt.want)
			}
		})
	}
}

func TestRecordErrors(t *testing.T) {
	dir := t.TempDir()
	corrupt := filepath.Join(dir, "corrupt.json")
	if err := os.WriteFile(corrupt, []byte("{"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := (record{path: corrupt}).load(); err == nil {
		t.Error("loading a corrupt record: no error")
	}
	if err := (record{}).add(netip.MustParseAddr("10.77.0.100")); err == nil {
		t.Error("adding to a record without path: no error")
	}
}
