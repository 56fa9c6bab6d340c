package agent

import (
	"slices"
	"strings"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/vip"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// notifyOf is the notify hooks fip names (spec.hooks); nil when none.
func notifyOf(fip *webfarmv1.FailoverIP) *vip.Notify {
	h := fip.Spec.Hooks
	if h == nil {
		return nil
	}
	return &vip.Notify{Master: h.Master, Backup: h.Backup, Fault: h.Fault, Timeout: h.Timeout.Duration, MasterFirst: h.MasterBeforeAnnounce}
}

// maxHookMessage bounds the output a hook run reports (HookRun.message).
const maxHookMessage = 1024

// hookRun is the report of a notify hook's run.
func hookRun(r vip.NotifyRun) webfarmv1.HookRun {
	h := webfarmv1.HookRun{Name: r.FailoverIP, State: webfarmv1.HookState(r.State), Epoch: r.Epoch, Running: r.Running, Succeeded: !r.Running && r.Err == nil}
	msg := strings.TrimSpace(r.Output)
	if r.Err != nil {
		msg = r.Err.Error() + ": " + msg
	}
	if len(msg) > maxHookMessage {
		msg = msg[len(msg)-maxHookMessage:]
	}
	h.Message = msg
	if !r.Running {
		t := metav1.NewTime(r.Finished)
		h.FinishedTime = &t
	}
	return h
}

// notified puts a notify hook's run in the report, one per FailoverIP.
func (a *Agent) notified(r vip.NotifyRun) {
	h := hookRun(r)
	a.reporter.update(func(rep *report) {
		rep.Hooks = slices.DeleteFunc(slices.Clone(rep.Hooks), func(o webfarmv1.HookRun) bool { return o.Name == h.Name })
		rep.Hooks = append(rep.Hooks, h)
		slices.SortFunc(rep.Hooks, func(x, y webfarmv1.HookRun) int { return strings.Compare(x.Name, y.Name) })
	})
	a.publishSoon()
}
