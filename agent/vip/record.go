package vip

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
)

// DefaultRecordPath is where the agent keeps its record. /run lives exactly
// as long as the addresses themselves: both are gone after a reboot.
const DefaultRecordPath = "/run/webfarm/vip-addresses.json"

// record is the file listing the addresses the agent added, so that Cleanup
// finds them after a restart even where the kernel keeps no mark (IPv6
// addresses have no label). An address is written to it before it is added,
// so a crash in between leaves at worst a name without an address.
type record struct {
	path string
}

type recordFile struct {
	Addresses []netip.Addr `json:"addresses"`
}

func (r record) load() ([]netip.Addr, error) {
	b, err := os.ReadFile(r.path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading address record: %w", err)
	}
	var f recordFile
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("reading address record %s: %w", r.path, err)
	}
	return f.Addresses, nil
}

func (r record) add(ip netip.Addr) error {
	ips, err := r.load()
	if err != nil {
		return err
	}
	if slices.Contains(ips, ip) {
		return nil
	}
	return r.save(append(ips, ip))
}

func (r record) remove(ip netip.Addr) error {
	ips, err := r.load()
	if err != nil {
		return err
	}
	if !slices.Contains(ips, ip) {
		return nil
	}
	return r.save(slices.DeleteFunc(ips, func(x netip.Addr) bool { return x == ip }))
}

// save replaces the file atomically: a crash leaves the old or the new list.
func (r record) save(ips []netip.Addr) error {
	if r.path == "" {
		return errors.New("writing address record: no path configured")
	}
	b, err := json.Marshal(recordFile{Addresses: ips})
	if err != nil {
		return fmt.Errorf("writing address record: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(r.path), 0o755); err != nil {
		return fmt.Errorf("writing address record: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(r.path), ".vip-record-*")
	if err != nil {
		return fmt.Errorf("writing address record: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return fmt.Errorf("writing address record: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing address record: %w", err)
	}
	if err := os.Rename(tmp.Name(), r.path); err != nil {
		return fmt.Errorf("writing address record: %w", err)
	}
	return nil
}
