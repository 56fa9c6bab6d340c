package prestop

import (
	"context"
	"errors"
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
	done := answerer(dir)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := Await(ctx, dir, time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestAwaitWithoutAnAgentEndsWithItsContext(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := Await(ctx, dir, time.Millisecond)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Await = %v, want the context's deadline", err)
	}
	if requested, _ := Requested(dir); !requested {
		t.Fatal("no request left for an agent that starts later")
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
	if err := Await(ctx, dir, time.Millisecond); err != nil {
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
