package zktest

import (
	"testing"
)

func TestStartKillRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts ZooKeeper")
	}
	s := Start(t)
	if !s.Ruok() {
		t.Fatal("started server does not answer ruok")
	}
	s.Kill()
	if s.Ruok() {
		t.Fatal("killed server still answers")
	}
	if err := s.Restart(); err != nil {
		t.Fatal(err)
	}
	if !s.Ruok() {
		t.Fatal("restarted server does not answer ruok")
	}
}
