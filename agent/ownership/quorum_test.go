package ownership

import "testing"

func TestQuorumAlwaysOverlaps(t *testing.T) {
	for others := 0; others <= 600; others++ {
		c, r := ConfirmationsNeeded(others), ReportsNeeded(others)
		if c+r != others+1 {
			t.Errorf("%d other voters: %d confirmations + %d reports, want %d: a voter must be on both sides", others, c, r, others+1)
		}
		// The owner and its confirmations: the smallest strict majority
		// of the voters and the API server.
		if n := others + 2; others > 0 && (r < 1 || 2*(c+1) <= n || 2*c > n) {
			t.Errorf("%d other voters: %d confirmations (with the owner, not the smallest majority of %d) or %d reports", others, c, n, r)
		}
	}
}

func TestQuorumSizes(t *testing.T) {
	for _, tc := range []struct{ others, confirmations, reports int }{
		{0, 1, 0},
		{1, 1, 1},
		{2, 2, 1},
		{3, 2, 2},
		{4, 3, 2},
		{6, 4, 3},
		{499, 250, 250},
	} {
		if c, r := ConfirmationsNeeded(tc.others), ReportsNeeded(tc.others); c != tc.confirmations || r != tc.reports {
			t.Errorf("%d other voters: %d confirmations and %d reports, want %d and %d", tc.others, c, r, tc.confirmations, tc.reports)
		}
	}
}
