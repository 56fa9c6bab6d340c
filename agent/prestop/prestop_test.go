package prestop

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// answerer plays the agent: it answers the first request it sees in dir.
func answerer(dir string) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- wait.PollUntilContextTimeout(context.Background(), time.Millisecond, 10*time.Second, true,
			func(context.Context) (bool, error) {
				requested, err := Requested(dir)
				if err != nil || !requested {
					return false, err
				}
				return true, Answer(dir)
			})
	}()
	return done
}

func TestAwaitReturnsOnTheAnswer(t *testing.T) {
	dir := t.TempDir()
	running(t, dir)
	done := answerer(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Await(ctx, dir, time.Millisecond, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// running marks dir as an agent that runs would, until the test ends.
func running(t *testing.T, dir string) io.Closer {
	t.Helper()
	mark, err := Running(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mark.Close() })
	return mark
}

// TestAwaitWithoutAnAgentStopsWaiting: an agent that died without exiting
// (SIGKILL, a crash) never answers; the hook waits only its patience.
func TestAwaitWithoutAnAgentStopsWaiting(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	err := Await(ctx, dir, time.Millisecond, 50*time.Millisecond)
	if !errors.Is(err, ErrNoAgent) {
		t.Fatalf("Await = %v, want ErrNoAgent", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Fatalf("Await gave up after %s, before its patience (50ms)", waited)
	}
	if requested, _ := Requested(dir); !requested {
		t.Fatal("no request left for an agent that starts later")
	}
}

// TestAwaitWaitsWhileAnAgentRuns: an agent that runs but has not answered
// yet is waited for, until the context ends; once its mark is gone (its
// process ended), the hook stops waiting.
func TestAwaitWaitsWhileAnAgentRuns(t *testing.T) {
	dir := t.TempDir()
	mark := running(t, dir)
	if runs, err := AgentRuns(dir); err != nil || !runs {
		t.Fatalf("AgentRuns = %t, %v with the mark held, want true", runs, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := Await(ctx, dir, time.Millisecond, 10*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await with an agent running = %v, want the context's deadline", err)
	}
	if err := mark.Close(); err != nil {
		t.Fatal(err)
	}
	if runs, err := AgentRuns(dir); err != nil || runs {
		t.Fatalf("AgentRuns = %t, %v once the mark is dropped, want false", runs, err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Await(ctx, dir, time.Millisecond, 10*time.Millisecond); !errors.Is(err, ErrNoAgent) {
		t.Fatalf("Await once the agent is gone = %v, want ErrNoAgent", err)
	}
}

// TestTwoAgentsShareTheMark: a new agent starts while the old one stops.
func TestTwoAgentsShareTheMark(t *testing.T) {
	dir := t.TempDir()
	old := running(t, dir)
	running(t, dir)
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}
	if runs, err := AgentRuns(dir); err != nil || !runs {
		t.Fatalf("AgentRuns = %t, %v with the new agent's mark held, want true", runs, err)
	}
}

// TestAnExitedAgentsAnswerStands: an agent that exits holds no address and
// answers a request to come; one that starts takes the answer back.
func TestAnExitedAgentsAnswerStands(t *testing.T) {
	dir := t.TempDir()
	if err := Answer(dir); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Await(ctx, dir, time.Millisecond, time.Millisecond); err != nil {
		t.Fatalf("Await with no agent running, after its exit: %v", err)
	}
	if err := Revoke(dir); err != nil {
		t.Fatal(err)
	}
	if answered, err := Answered(dir); err != nil || answered {
		t.Fatalf("Answered = %t, %v after Revoke, want false", answered, err)
	}
	if requested, err := Requested(dir); err != nil || !requested {
		t.Fatalf("Requested = %t, %v after Revoke, want the request kept for the new agent", requested, err)
	}
}

func TestWithdraw(t *testing.T) {
	dir := t.TempDir()
	if err := Request(dir); err != nil {
		t.Fatal(err)
	}
	if err := Answer(dir); err != nil {
		t.Fatal(err)
	}
	if err := Withdraw(dir); err != nil {
		t.Fatal(err)
	}
	requested, err1 := Requested(dir)
	answered, err2 := Answered(dir)
	if requested || answered || err1 != nil || err2 != nil {
		t.Fatalf("after Withdraw: requested %t (%v), answered %t (%v)", requested, err1, answered, err2)
	}
	if err := Withdraw(dir); err != nil {
		t.Fatalf("Withdraw with nothing to withdraw: %v", err)
	}
}
