package risefall

import "testing"

// TestCounter feeds results ('+' pass, '-' failure) and checks the trend
// after each.
func TestCounter(t *testing.T) {
	const H, U, D = Hold, Up, Down
	for _, tt := range []struct {
		name       string
		rise, fall int
		results    string
		want       []Trend
	}{
		{"hold until rise", 3, 2, "+++", []Trend{H, H, U}},
		{"hold until fall", 2, 3, "---", []Trend{H, H, D}},
		{"up stays up", 2, 2, "+++", []Trend{H, U, U}},
		{"a failure starts the rise over", 3, 3, "++-+++", []Trend{H, H, H, H, H, U}},
		{"a pass starts the fall over", 3, 2, "-+--", []Trend{H, H, H, D}},
		{"flapping holds", 2, 2, "+-+-+-", []Trend{H, H, H, H, H, H}},
		{"rise and fall of 1 follow every result", 1, 1, "+-+", []Trend{U, D, U}},
		{"zero counts act as 1", 0, 0, "-+", []Trend{D, U}},
		{"negative counts act as 1", -1, -5, "+-", []Trend{U, D}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var c Counter
			for i, r := range tt.results {
				if got := c.Observe(r == '+', tt.rise, tt.fall); got != tt.want[i] {
					t.Fatalf("after %q: %v, want %v", tt.results[:i+1], got, tt.want[i])
				}
			}
		})
	}
}
