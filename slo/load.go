package slo

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/meridian-obs/meridian/internal/config"
)

// Validate implements config.Validator: every SLO of the file, with errors
// that name the SLO and the field.
func (f *File) Validate(r *config.Reporter) {
	seen := map[string]int{}
	for i := range f.SLOs {
		s := &f.SLOs[i]
		s.ApplyDefaults()
		sub := config.NewReporter()
		s.Validate(sub)
		name := s.Name
		if name == "" {
			name = fmt.Sprintf("#%d", i+1)
		}
		if err := sub.Err(); err != nil {
			for _, e := range err.(config.Errors) {
				r.Index("slos", i).Errorf(e.Path, "SLO %q: %s", name, e.Msg)
			}
		}
		if j, dup := seen[s.Name]; dup && s.Name != "" {
			r.Index("slos", i).Errorf("name", "SLO %q: name already used by slos[%d]", name, j)
		}
		seen[s.Name] = i
	}
	if len(f.SLOs) == 0 {
		r.Errorf("slos", "expected at least one SLO")
	}
}

// LoadFile reads one SLO file: Meridian's format (a document with a slos
// list) or OpenSLO v1 (one or more documents with apiVersion openslo/v1).
// Every SLO is validated; any problem rejects the whole file with errors
// naming the file, the SLO and the field.
func LoadFile(path string) ([]*Spec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, &config.Error{File: path, Msg: fmt.Sprintf("cannot read SLO file: %v", errors.Unwrap(err))}
	}
	return Parse(path, data)
}

// Parse is LoadFile on bytes; name is used in errors.
func Parse(name string, data []byte) ([]*Spec, error) {
	if isOpenSLO(data) {
		return parseOpenSLO(name, data)
	}
	var f File
	if err := config.Decode(name, data, &f); err != nil {
		return nil, err
	}
	out := make([]*Spec, len(f.SLOs))
	for i := range f.SLOs {
		s := f.SLOs[i]
		s.File = name
		out[i] = &s
	}
	return out, nil
}

func isOpenSLO(data []byte) bool {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var head struct {
			APIVersion string `yaml:"apiVersion"`
		}
		if err := dec.Decode(&head); err != nil {
			return false
		}
		if strings.HasPrefix(head.APIVersion, "openslo/") {
			return true
		}
	}
}

// LoadFiles loads every file. It returns the SLOs of the valid files and,
// for the invalid ones, one error per file (joined): an invalid file never
// stops the others from loading. SLO names must be unique across files.
func LoadFiles(paths []string) ([]*Spec, error) {
	var out []*Spec
	var errs []error
	owner := map[string]string{}
	for _, p := range paths {
		specs, err := LoadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		var dup error
		for _, s := range specs {
			if f, ok := owner[s.Name]; ok {
				dup = &config.Error{File: p, Path: "name", Msg: fmt.Sprintf("SLO %q: already defined in %s", s.Name, f)}
				break
			}
		}
		if dup != nil {
			errs = append(errs, dup)
			continue
		}
		for _, s := range specs {
			owner[s.Name] = p
		}
		out = append(out, specs...)
	}
	sortSpecs(out)
	return out, errors.Join(errs...)
}

// CheckFiles validates SLO files for `meridian slo check`: nil when every
// file is valid.
func CheckFiles(paths []string) error {
	if len(paths) == 0 {
		return errors.New("no SLO file given")
	}
	_, err := LoadFiles(paths)
	return err
}
