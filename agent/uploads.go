package agent

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/webfarm/webfarm/agent/uploads"
	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

// syncUploads runs the rsync daemon and the directory Syncers of this
// node's farms that declare uploads, and reports them. A farm whose
// Secret cannot be read syncs nothing; the status says why.
func (a *Agent) syncUploads(ctx context.Context, snap *snapshot) {
	farms, problems := a.uploadFarms(ctx, snap)
	if err := a.uploads.Apply(ctx, farms); err != nil {
		problems = append(problems, err.Error())
	}
	for _, p := range problems {
		logr.FromContextOrDiscard(ctx).Error(fmt.Errorf("%s", p), "Syncing uploads")
	}
	a.uploadProblems = problems
	a.reportUploads()
}

// uploadFarms is what the farms of this node ask of its uploads.
func (a *Agent) uploadFarms(ctx context.Context, snap *snapshot) ([]uploads.Farm, []string) {
	if snap.self == nil {
		return nil, nil
	}
	self, err := netip.ParseAddr(snap.self.Spec.Address)
	if err != nil {
		return nil, []string{fmt.Sprintf("uploads: spec.address %q: %v", snap.self.Spec.Address, err)}
	}
	var farms []uploads.Farm
	var problems []string
	for _, key := range snap.farmKeys() {
		wf := snap.farms[key]
		spec := wf.Spec.Uploads
		if spec == nil {
			continue
		}
		name := webfarmv1.UploadsSecretName(wf.Name, spec)
		data, err := a.refs.secret(ctx, wf.Namespace, name)
		password := string(data[webfarmv1.UploadsSecretKey])
		if err == nil && password == "" {
			err = fmt.Errorf("Secret %s/%s has no key %q", wf.Namespace, name, webfarmv1.UploadsSecretKey)
		}
		if err != nil {
			problems = append(problems, fmt.Sprintf("farm %s: uploads not synced: %v", key, err))
			continue
		}
		dirs, err := uploadModules(spec)
		if err != nil {
			problems = append(problems, fmt.Sprintf("farm %s: %v", key, err))
			continue
		}
		farms = append(farms, uploads.Farm{
			Key: key, Address: self, Port: int(spec.Port), Password: password,
			Peers: uploadPeers(snap, key), Directories: dirs, BwLimitKiBps: int(spec.BandwidthLimitKiBps),
		})
	}
	return farms, problems
}

// uploadPeers are the farm's other fronts that are not Down: a front that
// is down catches up by itself when it returns.
func uploadPeers(snap *snapshot, farm string) []uploads.Peer {
	var peers []uploads.Peer
	for _, f := range snap.frontsOf(farm) {
		if f.Name == snap.node || f.Status.Phase == webfarmv1.FrontDown {
			continue
		}
		if addr, err := netip.ParseAddr(f.Spec.Address); err == nil {
			peers = append(peers, uploads.Peer{Name: f.Name, Addr: addr})
		}
	}
	return peers
}

func uploadModules(spec *webfarmv1.UploadsSpec) ([]uploads.Module, error) {
	var mods []uploads.Module
	for _, d := range spec.Directories {
		fileMode, err1 := strconv.ParseUint(cmpOr(d.FileMode, "0644"), 8, 32)
		dirMode, err2 := strconv.ParseUint(cmpOr(d.DirectoryMode, "0755"), 8, 32)
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("spec.uploads.directories[%s]: modes %q, %q: not octal", d.Name, d.FileMode, d.DirectoryMode)
		}
		mods = append(mods, uploads.Module{
			Name: d.Name, Path: d.Path, UID: d.Owner, GID: d.Group,
			FileMode: os.FileMode(fileMode), DirMode: os.FileMode(dirMode),
		})
	}
	return mods, nil
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// reportUploads puts the directories' sync in the report and the
// metrics, and wakes the node loop when this front's catch-up changed:
// its servers leave or enter the drain state.
func (a *Agent) reportUploads() {
	statuses := a.uploads.Statuses()
	var out []webfarmv1.NodeUploadsStatus
	for _, key := range slices.Sorted(mapsKeys(statuses)) {
		st := statuses[key]
		s := webfarmv1.NodeUploadsStatus{Name: key, CaughtUp: st.CaughtUp, Pending: int32(st.Pending), LastError: st.LastError}
		if !st.Oldest.IsZero() {
			s.OldestPendingTime = &metav1.Time{Time: st.Oldest}
		}
		out = append(out, s)
	}
	for _, p := range a.uploadProblems {
		if farm, _, ok := strings.Cut(strings.TrimPrefix(p, "farm "), ":"); ok {
			out = append(out, webfarmv1.NodeUploadsStatus{Name: farm, LastError: p})
		}
	}
	a.reporter.update(func(r *report) { r.Uploads = out })
}

func mapsKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// uploadsHeld tells whether front's servers stay in drain because its
// declared directories have not caught up: from its report, or, for this
// node, from its own Syncers (its report may be the previous agent's).
// The drain trick never takes the last front out: a farm none of whose
// other fronts is caught up and undrained serves from the ones it has.
func (a *Agent) uploadsHeld(snap *snapshot, farm string, front *webfarmv1.FrontNode) bool {
	if snap.farms[farm] == nil || snap.farms[farm].Spec.Uploads == nil || a.uploadsCaughtUp(snap, farm, front) {
		return false
	}
	for _, other := range snap.frontsOf(farm) {
		if other.Name != front.Name && !other.Spec.DrainRequested && other.Status.Phase != webfarmv1.FrontDown &&
			a.uploadsCaughtUp(snap, farm, other) {
			return true
		}
	}
	return false
}

// uploadsCaughtUp tells whether front reports every declared directory
// of farm caught up; a front that reports none yet is not.
func (a *Agent) uploadsCaughtUp(snap *snapshot, farm string, front *webfarmv1.FrontNode) bool {
	if front.Name == snap.node {
		return a.uploads.CaughtUp(farm)
	}
	for _, d := range snap.farms[farm].Spec.Uploads.Directories {
		i := slices.IndexFunc(front.Status.Uploads, func(u webfarmv1.NodeUploadsStatus) bool { return u.Name == farm+"/"+d.Name })
		if i < 0 || !front.Status.Uploads[i].CaughtUp {
			return false
		}
	}
	return true
}

// uploadsTick reports the directories' sync, and wakes the node loop when
// this front's catch-up changed: its servers leave or enter the drain
// state at once.
func (a *Agent) uploadsTick(ctx context.Context) {
	a.reportUploads()
	var b strings.Builder
	for _, key := range slices.Sorted(mapsKeys(a.uploads.Statuses())) {
		fmt.Fprintf(&b, "%s=%v ", key, a.uploads.Statuses()[key].CaughtUp)
	}
	if b.String() != a.uploadsCaughtUpSeen {
		a.uploadsCaughtUpSeen = b.String()
		logr.FromContextOrDiscard(ctx).V(1).Info("Uploads catch-up changed", "directories", b.String())
		a.poke()
	}
}
