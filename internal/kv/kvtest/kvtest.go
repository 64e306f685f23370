// Package kvtest is the conformance suite every kv.Store backend passes.
package kvtest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"

	"github.com/meridian-obs/meridian/internal/kv"
)

// Run checks the kv.Store contract on stores made by open. Each subtest
// gets a fresh store (open may return stores sharing a backend as long as
// their key spaces do not overlap: keys are under the given prefix).
func Run(t *testing.T, open func(t *testing.T) kv.Store) {
	ctx := context.Background()
	t.Run("GetAbsent", func(t *testing.T) {
		s := open(t)
		_, _, ok, err := s.Get(ctx, "a/b")
		if err != nil || ok {
			t.Fatalf("Get(absent) = ok %v, err %v; want false, nil", ok, err)
		}
	})
	t.Run("PutGetVersions", func(t *testing.T) {
		s := open(t)
		v1, err := s.Put(ctx, "a/b", []byte("one"))
		if err != nil {
			t.Fatal(err)
		}
		v2, err := s.Put(ctx, "a/b", []byte("two"))
		if err != nil {
			t.Fatal(err)
		}
		if v2 <= v1 || v1 <= 0 {
			t.Fatalf("versions %d then %d; want positive and increasing", v1, v2)
		}
		val, v, ok, err := s.Get(ctx, "a/b")
		if err != nil || !ok || string(val) != "two" || v != v2 {
			t.Fatalf("Get = %q v%d ok %v err %v; want \"two\" v%d", val, v, ok, err, v2)
		}
	})
	t.Run("CompareAndPut", func(t *testing.T) {
		s := open(t)
		v1, err := s.CompareAndPut(ctx, "c/x", []byte("1"), 0)
		if err != nil {
			t.Fatalf("create with version 0: %v", err)
		}
		if _, err := s.CompareAndPut(ctx, "c/x", []byte("again"), 0); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("create over existing: err %v; want ErrConflict", err)
		}
		if _, err := s.CompareAndPut(ctx, "c/x", []byte("stale"), v1+7); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("stale version: err %v; want ErrConflict", err)
		}
		if _, err := s.CompareAndPut(ctx, "c/y", []byte("1"), 3); !errors.Is(err, kv.ErrConflict) {
			t.Fatalf("absent key with version 3: err %v; want ErrConflict", err)
		}
		if _, err := s.CompareAndPut(ctx, "c/x", []byte("2"), v1); err != nil {
			t.Fatalf("current version: %v", err)
		}
		val, _, _, _ := s.Get(ctx, "c/x")
		if string(val) != "2" {
			t.Fatalf("value %q; want \"2\"", val)
		}
	})
	t.Run("ConcurrentCASOneWinner", func(t *testing.T) {
		s := open(t)
		if _, err := s.Put(ctx, "n/ctr", []byte("0")); err != nil {
			t.Fatal(err)
		}
		_, v, _, _ := s.Get(ctx, "n/ctr")
		var wg sync.WaitGroup
		wins := make(chan int, 8)
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				if _, err := s.CompareAndPut(ctx, "n/ctr", []byte(fmt.Sprint(i)), v); err == nil {
					wins <- i
				}
			}(i)
		}
		wg.Wait()
		close(wins)
		if n := len(wins); n != 1 {
			t.Fatalf("%d writers won the same version; want exactly 1", n)
		}
	})
	t.Run("DeleteAndList", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{"l/b", "l/a", "l/sub/c", "lx/d", "m/e"} {
			if _, err := s.Put(ctx, k, []byte(k)); err != nil {
				t.Fatal(err)
			}
		}
		keys, err := s.List(ctx, "l")
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"l/a", "l/b", "l/sub/c"}; !reflect.DeepEqual(keys, want) {
			t.Fatalf("List(l) = %v; want %v", keys, want)
		}
		if err := s.Delete(ctx, "l/a"); err != nil {
			t.Fatal(err)
		}
		if err := s.Delete(ctx, "l/absent"); err != nil {
			t.Fatalf("Delete(absent) = %v; want nil", err)
		}
		keys, _ = s.List(ctx, "l")
		if want := []string{"l/b", "l/sub/c"}; !reflect.DeepEqual(keys, want) {
			t.Fatalf("List(l) after delete = %v; want %v", keys, want)
		}
	})
	t.Run("InvalidKeys", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{"", "/a", "a/", "a//b", "a/../b", "a b"} {
			if _, err := s.Put(ctx, k, nil); err == nil {
				t.Errorf("Put(%q) accepted an invalid key", k)
			}
		}
	})
}
