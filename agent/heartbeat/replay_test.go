package heartbeat

import "testing"

// challenges draws predictable challenges 100, 101, ... for table tests.
type challenges struct{ next byte }

func (c *challenges) draw() nonce {
	c.next++
	return testNonce(99 + c.next)
}

type step struct {
	name    string
	nonce   nonce
	seq     uint64
	echo    *nonce
	want    verdict
	wantChl nonce
}

func TestReplayGuard(t *testing.T) {
	bootA, bootB, bootC := testNonce(1), testNonce(2), testNonce(3)
	chlA, chlB, chlC := testNonce(100), testNonce(101), testNonce(102)
	wrong := testNonce(50)
	steps := []step{
		{name: "unknown nonce is challenged", nonce: bootA, seq: 1, want: challenge, wantChl: chlA},
		{name: "again: same challenge", nonce: bootA, seq: 2, want: challenge, wantChl: chlA},
		{name: "wrong echo", nonce: bootA, seq: 3, echo: &wrong, want: challenge, wantChl: chlA},
		{name: "right echo adopts the nonce", nonce: bootA, seq: 4, echo: &chlA, want: accept},
		{name: "next sequence number", nonce: bootA, seq: 5, want: accept},
		{name: "gap is fine", nonce: bootA, seq: 9, want: accept},
		{name: "same number replayed", nonce: bootA, seq: 9, want: replayed},
		{name: "older number replayed", nonce: bootA, seq: 5, want: replayed},
		{name: "handshake replayed", nonce: bootA, seq: 4, echo: &chlA, want: replayed},
		{name: "restarted sender is challenged", nonce: bootB, seq: 1, want: challenge, wantChl: chlB},
		{name: "old boot still accepted until the new one answers", nonce: bootA, seq: 10, want: accept},
		{name: "old boot's challenge does not answer for the new", nonce: bootB, seq: 2, echo: &chlA, want: challenge, wantChl: chlB},
		{name: "new boot answers", nonce: bootB, seq: 3, echo: &chlB, want: accept},
		{name: "old boot now refused", nonce: bootA, seq: 11, want: challenge, wantChl: chlC},
		{name: "old boot's handshake replayed", nonce: bootA, seq: 4, echo: &chlA, want: challenge, wantChl: chlC},
		{name: "new boot continues", nonce: bootB, seq: 4, want: accept},
		{name: "a third boot draws its own challenge", nonce: bootC, seq: 1, want: challenge, wantChl: testNonce(103)},
	}
	var g replayGuard
	var c challenges
	for _, s := range steps {
		hasEcho, echo := s.echo != nil, nonce{}
		if hasEcho {
			echo = *s.echo
		}
		got, chl := g.admit(s.nonce, s.seq, hasEcho, echo, c.draw)
		if got != s.want || (got == challenge && chl != s.wantChl) {
			t.Fatalf("%s: admit = %v %x, want %v %x", s.name, got, chl[:1], s.want, s.wantChl[:1])
		}
	}
}

func TestReplayGuardResync(t *testing.T) {
	var g replayGuard
	var c challenges
	boot := testNonce(1)
	admit := func(seq uint64, echo *nonce) verdict {
		hasEcho, e := echo != nil, nonce{}
		if hasEcho {
			e = *echo
		}
		v, _ := g.admit(boot, seq, hasEcho, e, c.draw)
		return v
	}
	g.admit(boot, 1, false, nonce{}, c.draw) // draws the first challenge
	first := testNonce(100)
	if v := admit(2, &first); v != accept {
		t.Fatalf("handshake: %v", v)
	}
	// A datagram forged with the key, numbered far ahead, silences the
	// sender's real datagrams...
	if v := admit(1<<62, nil); v != accept {
		t.Fatalf("forged number: %v", v)
	}
	if v := admit(3, nil); v != replayed {
		t.Fatalf("real datagram after the forgery: %v, want replayed", v)
	}
	// ...until it answers a resync with its current number.
	resync := g.resync(c.draw)
	if v := admit(4, &resync); v != accept {
		t.Fatalf("resync answer: %v, want accept", v)
	}
	for _, tt := range []struct {
		seq  uint64
		echo *nonce
		want verdict
	}{
		{seq: 5, want: accept},
		{seq: 3, want: replayed},
		{seq: 4, echo: &resync, want: replayed}, // the answer replayed
	} {
		if v := admit(tt.seq, tt.echo); v != tt.want {
			t.Errorf("seq %d after the resync: %v, want %v", tt.seq, v, tt.want)
		}
	}
}

func TestReplayGuardBoundsPendingChallenges(t *testing.T) {
	var g replayGuard
	var c challenges
	for i := range 3 * maxPendingChallenges {
		g.admit(testNonce(byte(10*i)), 1, false, nonce{}, c.draw)
	}
	if len(g.pending) != maxPendingChallenges {
		t.Fatalf("%d pending challenges, want %d", len(g.pending), maxPendingChallenges)
	}
	// The newest survive: the last nonce can still complete its handshake.
	last := g.pending[len(g.pending)-1]
	if v, _ := g.admit(last.nonce, 2, true, last.challenge, c.draw); v != accept {
		t.Errorf("newest pending handshake: %v, want accept", v)
	}
}
