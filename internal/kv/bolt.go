package kv

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// bucket is the single bucket holding every key. Values are stored as an
// 8-byte big-endian version followed by the payload.
var bucket = []byte("meridian")

// Bolt is the single-node Store: one bbolt file, one fsync per commit.
type Bolt struct {
	db *bolt.DB
}

// OpenBolt opens (creating it when absent) the bbolt file at path. A file
// that is not a valid bbolt database is an error naming the path: the
// caller must not silently start from empty state.
func OpenBolt(path string) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return nil, fmt.Errorf("kv: state directory: %w", err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("kv: open %s: %w", path, err)
	}
	return &Bolt{db: db}, nil
}

func decode(raw []byte) (int64, []byte, error) {
	if len(raw) < 8 {
		return 0, nil, errors.New("kv: stored value shorter than its version header")
	}
	v := int64(binary.BigEndian.Uint64(raw[:8]))
	out := make([]byte, len(raw)-8)
	copy(out, raw[8:])
	return v, out, nil
}

func encode(version int64, val []byte) []byte {
	raw := make([]byte, 8+len(val))
	binary.BigEndian.PutUint64(raw[:8], uint64(version))
	copy(raw[8:], val)
	return raw
}

// Get implements Store.
func (b *Bolt) Get(_ context.Context, key string) ([]byte, int64, bool, error) {
	if err := CheckKey(key); err != nil {
		return nil, 0, false, err
	}
	var (
		val     []byte
		version int64
		ok      bool
	)
	err := b.db.View(func(tx *bolt.Tx) error {
		raw := tx.Bucket(bucket).Get([]byte(key))
		if raw == nil {
			return nil
		}
		var err error
		version, val, err = decode(raw)
		if err != nil {
			return fmt.Errorf("%w (key %q)", err, key)
		}
		ok = true
		return nil
	})
	return val, version, ok, err
}

func (b *Bolt) put(key string, val []byte, check func(cur int64, exists bool) error) (int64, error) {
	if err := CheckKey(key); err != nil {
		return 0, err
	}
	var next int64
	err := b.db.Update(func(tx *bolt.Tx) error {
		bk := tx.Bucket(bucket)
		var cur int64
		raw := bk.Get([]byte(key))
		if raw != nil {
			v, _, err := decode(raw)
			if err != nil {
				return fmt.Errorf("%w (key %q)", err, key)
			}
			cur = v
		}
		if check != nil {
			if err := check(cur, raw != nil); err != nil {
				return err
			}
		}
		next = cur + 1
		return bk.Put([]byte(key), encode(next, val))
	})
	return next, err
}

// Put implements Store.
func (b *Bolt) Put(_ context.Context, key string, val []byte) (int64, error) {
	return b.put(key, val, nil)
}

// CompareAndPut implements Store.
func (b *Bolt) CompareAndPut(_ context.Context, key string, val []byte, version int64) (int64, error) {
	return b.put(key, val, func(cur int64, exists bool) error {
		if (!exists && version != 0) || (exists && cur != version) {
			return ErrConflict
		}
		return nil
	})
}

// Delete implements Store.
func (b *Bolt) Delete(_ context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).Delete([]byte(key))
	})
}

// List implements Store.
func (b *Bolt) List(_ context.Context, prefix string) ([]string, error) {
	if err := CheckKey(prefix); err != nil {
		return nil, err
	}
	p := []byte(prefix + "/")
	var keys []string
	err := b.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucket).Cursor()
		for k, _ := c.Seek(p); k != nil && strings.HasPrefix(string(k), string(p)); k, _ = c.Next() {
			keys = append(keys, string(k))
		}
		return nil
	})
	sort.Strings(keys)
	return keys, err
}

// Close implements Store.
func (b *Bolt) Close() error { return b.db.Close() }
