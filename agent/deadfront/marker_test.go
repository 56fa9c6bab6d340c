package deadfront

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
)

// fakeRuntime records the servers marked down and fails for those in fail.
type fakeRuntime struct {
	calls []string
	fail  map[string]bool
}

func (f *fakeRuntime) SetHealthDown(_ context.Context, backend, server string) error {
	name := backend + "/" + server
	f.calls = append(f.calls, name)
	if f.fail[name] {
		return errors.New("No such server.")
	}
	return nil
}

func servers(front string) []Server {
	return []Server{{"farm_a_web", front}, {"farm_a_web", front + "-backup"}}
}

func TestMarker(t *testing.T) {
	rt := &fakeRuntime{fail: map[string]bool{}}
	m := &Marker{Runtime: rt}
	ctx := context.Background()
	steps := []struct {
		name      string
		dead      []string
		fail      []string
		reload    bool
		wantCalls []string
		wantNewly []string
		wantErr   string
	}{
		{"nobody dead", nil, nil, false, nil, nil, ""},
		{"front2 dies: both its servers", []string{"front2"}, nil, false,
			[]string{"farm_a_web/front2", "farm_a_web/front2-backup"}, []string{"front2"}, ""},
		{"still dead: marked once per death", []string{"front2"}, nil, false, nil, nil, ""},
		{"front3 dies, its backup twin refused: tried again", []string{"front2", "front3"}, []string{"farm_a_web/front3-backup"}, false,
			[]string{"farm_a_web/front3", "farm_a_web/front3-backup"}, nil, "front front3: No such server."},
		{"front3 again", []string{"front2", "front3"}, nil, false,
			[]string{"farm_a_web/front3", "farm_a_web/front3-backup"}, []string{"front3"}, ""},
		{"front2 heard again: nothing sent, the checks bring it back", []string{"front3"}, nil, false, nil, nil, ""},
		{"front2 dies again: marked again", []string{"front2", "front3"}, nil, false,
			[]string{"farm_a_web/front2", "farm_a_web/front2-backup"}, []string{"front2"}, ""},
		{"after a reload every dead front is marked again", []string{"front2", "front3"}, nil, true,
			[]string{"farm_a_web/front2", "farm_a_web/front2-backup", "farm_a_web/front3", "farm_a_web/front3-backup"}, []string{"front2", "front3"}, ""},
	}
	for _, s := range steps {
		rt.calls = nil
		clear(rt.fail)
		for _, f := range s.fail {
			rt.fail[f] = true
		}
		if s.reload {
			m.Forget()
		}
		dead := map[string][]Server{}
		for _, f := range s.dead {
			dead[f] = servers(f)
		}
		newly, err := m.Sync(ctx, dead)
		if !slices.Equal(rt.calls, s.wantCalls) {
			t.Errorf("%s: marked %v, want %v", s.name, rt.calls, s.wantCalls)
		}
		if !slices.Equal(newly, s.wantNewly) {
			t.Errorf("%s: newly %v, want %v", s.name, newly, s.wantNewly)
		}
		if (err == nil) != (s.wantErr == "") || err != nil && !strings.Contains(err.Error(), s.wantErr) {
			t.Errorf("%s: err %v, want %q", s.name, err, s.wantErr)
		}
	}
}
