package haproxy

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// largeConfig is farms farms of fronts fronts each, every farm on its own
// port, with the sample farm's settings, stats page and error pages.
func largeConfig(b testing.TB, farms, fronts int) Config {
	sample := sampleFarm(b)
	c := Config{RuntimeSocket: testSocket}
	for i := range farms {
		f := sample
		f.Key = fmt.Sprintf("ns%d/farm%d", i, i)
		spec := sample.Spec
		spec.Frontend.Port = int32(10000 + i)
		f.Spec = spec
		f.Fronts = make([]Front, fronts)
		for j := range fronts {
			f.Fronts[j] = Front{
				Name:    fmt.Sprintf("front%04d", j),
				Address: netip.AddrFrom4([4]byte{10, 99, byte(j / 250), byte(1 + j%250)}),
				Cookie:  fmt.Sprintf("c%04d", j),
			}
		}
		c.Farms = append(c.Farms, f)
	}
	return c
}

func BenchmarkRender(b *testing.B) {
	c := largeConfig(b, 50, 500)
	var size int
	for b.Loop() {
		cfg, err := Render(c)
		if err != nil {
			b.Fatal(err)
		}
		size = len(cfg)
	}
	b.ReportMetric(float64(size), "config-bytes")
	b.ReportMetric(float64(len(c.Farms)*len(c.Farms[0].Fronts)*2), "servers")
}

// BenchmarkValidate measures `haproxy -c` on the rendering of 50 farms of 500
// fronts: the fixed cost every changed configuration pays before it loads.
func BenchmarkValidate(b *testing.B) {
	bin, err := exec.LookPath("haproxy")
	if err != nil {
		b.Skip("haproxy is not installed")
	}
	c := largeConfig(b, 50, 500)
	cfg, err := Render(c)
	if err != nil {
		b.Fatal(err)
	}
	dir := b.TempDir()
	if err := writeTree(dir, cfg, ErrorFiles(c)); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := validate(context.Background(), bin, filepath.Join(dir, ConfigFile)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkNodeApply measures render + validate + hitless reload of a real
// HAProxy in a throwaway namespace, one changed configuration per iteration.
func BenchmarkNodeApply(b *testing.B) {
	ns := newNamespace(b)
	tools, err := ns.Tools(b.TempDir(), "haproxy")
	if err != nil {
		b.Fatal(err)
	}
	p := &Process{Binary: tools["haproxy"], Dir: b.TempDir()}
	b.Cleanup(func() { _ = p.Stop(context.Background()) })
	apply(b, p, nodeConfig(p, 2000))
	i := 0
	start := time.Now()
	for b.Loop() {
		i++
		if !apply(b, p, nodeConfig(p, int32(2000+i%2+1))) {
			b.Fatal("a changed configuration was not reloaded")
		}
	}
	b.ReportMetric(float64(time.Since(start).Milliseconds())/float64(i), "ms/apply")
}
