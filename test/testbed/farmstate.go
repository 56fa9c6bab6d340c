package testbed

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// The sample objects the scenarios look at.
const (
	FailoverIPName = "failover"
	WebFarmName    = "webfarm"
	// StatsUser and StatsPassword are the sample stats Secret's credentials.
	StatsUser     = "admin"
	StatsPassword = "change-me-please"
	// StatsPath is the sample's stats URI.
	StatsPath = "/haproxy?stats"
)

// FailoverIP reads the sample FailoverIP.
func (tb *Testbed) FailoverIP(ctx context.Context) (*webfarmv1.FailoverIP, error) {
	var fip webfarmv1.FailoverIP
	key := client.ObjectKey{Namespace: SamplesNamespace, Name: FailoverIPName}
	if err := tb.KubeClient().Get(ctx, key, &fip); err != nil {
		return nil, fmt.Errorf("reading FailoverIP %s: %w", key, err)
	}
	return &fip, nil
}

// Owner is the front that owns the VIP according to the FailoverIP status
// (empty when none).
func (tb *Testbed) Owner(ctx context.Context) (string, error) {
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return "", err
	}
	return fip.Status.Owner, nil
}

// ownerFront reads the sample FailoverIP and returns it with the front
// that owns the VIP; it fails when no front does.
func (tb *Testbed) ownerFront(ctx context.Context) (*webfarmv1.FailoverIP, *Front, error) {
	fip, err := tb.FailoverIP(ctx)
	if err != nil {
		return nil, nil, err
	}
	owner := tb.Front(fip.Status.Owner)
	if owner == nil {
		return fip, nil, fmt.Errorf("FailoverIP %s has no owner", FailoverIPName)
	}
	return fip, owner, nil
}

// FrontNode reads the FrontNode of a front.
func (tb *Testbed) FrontNode(ctx context.Context, name string) (*webfarmv1.FrontNode, error) {
	var fn webfarmv1.FrontNode
	if err := tb.KubeClient().Get(ctx, client.ObjectKey{Name: name}, &fn); err != nil {
		return nil, fmt.Errorf("reading FrontNode %s: %w", name, err)
	}
	return &fn, nil
}

// Phase is the phase of a front's FrontNode.
func (tb *Testbed) Phase(ctx context.Context, name string) (webfarmv1.FrontPhase, error) {
	fn, err := tb.FrontNode(ctx, name)
	if err != nil {
		return "", err
	}
	return fn.Status.Phase, nil
}

// Drain sets (true) or removes (false) the drain annotation of a front's
// Node with kubectl, as a person would.
func (tb *Testbed) Drain(name string, drain bool) error {
	arg := webfarmv1.DrainAnnotation + "=true"
	if !drain {
		arg = webfarmv1.DrainAnnotation + "-"
	}
	_, err := tb.Kubectl("annotate", "--overwrite", "node", name, arg)
	return err
}

// Holders lists the fronts that have the VIP on their link right now.
func (tb *Testbed) Holders() ([]string, error) {
	var out []string
	for _, f := range tb.fronts {
		held, err := f.HoldsVIP()
		if err != nil {
			return nil, err
		}
		if held {
			out = append(out, f.Name)
		}
	}
	return out, nil
}

// WaitReady waits until the farm serves: every front Active, the VIP owned
// and held by exactly its owner, and a request to the VIP answered by a
// web server.
func (tb *Testbed) WaitReady(ctx context.Context, timeout time.Duration) error {
	var why string
	err := tb.WaitFor(func() (bool, error) {
		why = tb.notReady(ctx)
		return why == "", nil
	}, timeout)
	if err != nil {
		return fmt.Errorf("farm not ready after %s: %s", timeout, why)
	}
	return nil
}

// notReady says why the farm does not serve yet ("" when it does).
func (tb *Testbed) notReady(ctx context.Context) string {
	for _, f := range tb.fronts {
		phase, err := tb.Phase(ctx, f.Name)
		if err != nil {
			return err.Error()
		}
		if phase != webfarmv1.FrontActive {
			return fmt.Sprintf("front %s is %q, not Active", f.Name, phase)
		}
	}
	owner, err := tb.Owner(ctx)
	if err != nil {
		return err.Error()
	}
	holders, err := tb.Holders()
	if err != nil {
		return err.Error()
	}
	if owner == "" || len(holders) != 1 || holders[0] != owner {
		return fmt.Sprintf("FailoverIP owner %q, VIP on %v%s", owner, holders, tb.reportedVIPs(ctx, owner))
	}
	if why := tb.serversNotUp(ctx, owner); why != "" {
		return why
	}
	return tb.visitorsNotSpread(ctx)
}

// visitorsNotSpread sends two rounds of new visitors to the VIP and says
// which front none of them reached ("" when every front served one): the
// proof, from outside, that HAProxy balances over every front.
func (tb *Testbed) visitorsNotSpread(ctx context.Context) string {
	c := NewClient(ClientOptions{Timeout: time.Second})
	landed := map[string]int{}
	for range 2 * len(tb.fronts) {
		resp, err := Get(ctx, c, VIPURL("/"))
		if err != nil {
			return fmt.Sprintf("GET %s: %v", VIPURL("/"), err)
		}
		if resp.Status != http.StatusOK || resp.Front == "" {
			return fmt.Sprintf("GET %s: %d %q", VIPURL("/"), resp.Status, resp.Body)
		}
		landed[resp.Front]++
	}
	for _, f := range tb.fronts {
		if landed[f.Name] == 0 {
			return fmt.Sprintf("no new visitor reaches %s (%s)", f.Name, formatCounts(landed))
		}
	}
	return ""
}

// serversNotUp says which main server the owner's HAProxy does not see UP
// ("" when all are): until then, new visitors are not spread over every
// front.
func (tb *Testbed) serversNotUp(ctx context.Context, owner string) string {
	fn, err := tb.FrontNode(ctx, owner)
	if err != nil {
		return err.Error()
	}
	up := map[string]bool{}
	for _, s := range fn.Status.Servers {
		if s.Role == webfarmv1.ServerMain && s.State == "UP" {
			up[s.Front] = true
		}
	}
	for _, f := range tb.fronts {
		if !up[f.Name] {
			return fmt.Sprintf("the HAProxy of %s does not report %s's main server UP (servers %v)", owner, f.Name, fn.Status.Servers)
		}
	}
	return ""
}

// reportedVIPs is what the owner's agent reports about its failover
// addresses, for error messages.
func (tb *Testbed) reportedVIPs(ctx context.Context, owner string) string {
	if owner == "" {
		return ""
	}
	fn, err := tb.FrontNode(ctx, owner)
	if err != nil {
		return ""
	}
	return fmt.Sprintf("; %s reports %+v", owner, fn.Status.FailoverIPs)
}
