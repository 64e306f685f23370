package app

import (
	"reflect"
	"strings"
	"testing"
)

// The loader reads every KEY_file / KEY_env as a secret of KEY, so no
// configuration field may itself be named so: it could never be set.
func TestNoKeyEndsInFileOrEnv(t *testing.T) {
	seen := map[reflect.Type]bool{}
	var walk func(t2 reflect.Type, path string)
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice || ty.Kind() == reflect.Map {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for i := 0; i < ty.NumField(); i++ {
			f := ty.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" || !f.IsExported() {
				continue
			}
			if strings.HasSuffix(name, "_file") || strings.HasSuffix(name, "_env") {
				t.Errorf("%s.%s: a key ending in _file or _env cannot be set (it is read as a secret); rename it (e.g. _path)", path, name)
			}
			walk(f.Type, path+"."+name)
		}
	}
	walk(reflect.TypeOf(Config{}), "config")
}
