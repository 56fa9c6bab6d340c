package controllers

import (
	"fmt"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	webfarmv1 "github.com/webfarm/webfarm/api/v1alpha1"
)

func fipVersion(uid, rv string, epoch int64) *webfarmv1.FailoverIP {
	return &webfarmv1.FailoverIP{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "vip", UID: types.UID(uid), ResourceVersion: rv},
		Status:     webfarmv1.FailoverIPStatus{Epoch: epoch},
	}
}

// TestWrittenFresher: a reconcile reads what the controller wrote when
// the cache still holds a version that write replaced, and the cache
// otherwise.
func TestWrittenFresher(t *testing.T) {
	tests := []struct {
		name   string
		writes [][2]string // from, to resourceVersion, in order
		cached *webfarmv1.FailoverIP
		wantRV string
	}{
		{"nothing written", nil, fipVersion("u", "10", 1), "10"},
		{"the cache holds the version replaced", [][2]string{{"10", "11"}}, fipVersion("u", "10", 1), "11"},
		{"the cache caught up", [][2]string{{"10", "11"}}, fipVersion("u", "11", 2), "11"},
		{"someone else wrote since", [][2]string{{"10", "11"}}, fipVersion("u", "12", 5), "12"},
		{"two writes, the cache before both", [][2]string{{"10", "11"}, {"11", "12"}}, fipVersion("u", "10", 1), "12"},
		{"two writes, the cache between them", [][2]string{{"10", "11"}, {"11", "12"}}, fipVersion("u", "11", 1), "12"},
		{"a write from a version not recorded starts anew", [][2]string{{"10", "11"}, {"20", "21"}}, fipVersion("u", "10", 1), "10"},
		{"another object of the same name", [][2]string{{"10", "11"}}, fipVersion("v", "10", 1), "10"},
		{"far behind: the oldest versions forgotten", chain(10, 10+maxSuperseded+1), fipVersion("u", "10", 1), "10"},
		{"behind by as many as remembered", chain(10, 10+maxSuperseded), fipVersion("u", "10", 1), fmt.Sprint(10 + maxSuperseded)},
	}
	for _, tt := range tests {
		w := newWritten[*webfarmv1.FailoverIP]()
		for i, wr := range tt.writes {
			w.record(wr[0], fipVersion("u", wr[1], int64(i+2)))
		}
		got := w.fresher(tt.cached)
		if got.ResourceVersion != tt.wantRV {
			t.Errorf("%s: read resourceVersion %s, want %s", tt.name, got.ResourceVersion, tt.wantRV)
		}
		if got.UID != tt.cached.UID {
			t.Errorf("%s: read UID %s, want the cached object's %s", tt.name, got.UID, tt.cached.UID)
		}
	}
}

// TestWrittenForgets: once the cache has moved past a write, or the
// object is gone, the record no longer stands in for the cache, and what
// fresher returns is a copy that the caller may change.
func TestWrittenForgets(t *testing.T) {
	w := newWritten[*webfarmv1.FailoverIP]()
	w.record("10", fipVersion("u", "11", 2))
	got := w.fresher(fipVersion("u", "10", 1))
	got.Status.Epoch = 99
	if again := w.fresher(fipVersion("u", "10", 1)); again.Status.Epoch != 2 {
		t.Errorf("a change to what fresher returned reached the record: epoch %d", again.Status.Epoch)
	}
	w.fresher(fipVersion("u", "11", 2))
	if got := w.fresher(fipVersion("u", "10", 1)); got.ResourceVersion != "10" {
		t.Errorf("after the cache caught up, read %s, want the cache's 10", got.ResourceVersion)
	}
	w.record("10", fipVersion("u", "11", 2))
	w.forget(types.NamespacedName{Namespace: "ns", Name: "vip"})
	if got := w.fresher(fipVersion("u", "10", 1)); got.ResourceVersion != "10" {
		t.Errorf("after forget, read %s, want the cache's 10", got.ResourceVersion)
	}
}

// chain is a run of writes from resourceVersion first to last, one apart.
func chain(first, last int) [][2]string {
	var out [][2]string
	for rv := first; rv < last; rv++ {
		out = append(out, [2]string{fmt.Sprint(rv), fmt.Sprint(rv + 1)})
	}
	return out
}
