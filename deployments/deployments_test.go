// Package deployments holds the compose file, Kubernetes manifests, systemd
// units and example configurations. Its test parses every one of them and
// checks their structure; it has no Go code of its own.
package deployments

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/meridian-obs/meridian/internal/app"
	"github.com/meridian-obs/meridian/internal/config"
	"github.com/meridian-obs/meridian/probes/agent"
)

// docs decodes every document of a (multi-document) YAML file.
func docs(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var d map[string]any
		err := dec.Decode(&d)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(out)+1, err)
		}
		if d != nil {
			out = append(out, d)
		}
	}
	return out
}

func get(m any, path ...string) any {
	for _, p := range path {
		mm, ok := m.(map[string]any)
		if !ok {
			return nil
		}
		m = mm[p]
	}
	return m
}

func str(m any, path ...string) string { s, _ := get(m, path...).(string); return s }

func list(m any, path ...string) []any { l, _ := get(m, path...).([]any); return l }

// image references must name a registry path and a tag (never an implicit
// :latest in a pinned component, but our own image may float).
var imageRe = regexp.MustCompile(`^[a-z0-9.\-/]+(:[A-Za-z0-9._\-]+)$`)

// secretPaths are the in-container secret files the configurations name; the
// test points them at a temporary file so that `meridian check` can read them.
var secretPaths = regexp.MustCompile(`(/run/secrets|/etc/meridian/secrets|/etc/meridian-agent/secrets)/[A-Za-z0-9_\-]+`)

// checkServerConfig validates a server configuration text as `meridian check`
// does, with its secret files replaced by a temporary one.
func checkServerConfig(t *testing.T, name, text string) {
	t.Helper()
	f := writeWithSecrets(t, text)
	if _, err := app.LoadConfig(f); err != nil {
		t.Errorf("%s: server configuration rejected: %v", name, err)
	}
}

func checkAgentConfig(t *testing.T, name, text string) {
	t.Helper()
	text = strings.NewReplacer("${NODE_NAME}", "node-1", "${REGION}", "default").Replace(text)
	f := writeWithSecrets(t, text)
	c := agent.DefaultConfig()
	if err := config.Load(f, &c); err != nil {
		t.Errorf("%s: agent configuration rejected: %v", name, err)
	}
}

func writeWithSecrets(t *testing.T, text string) string {
	dir := t.TempDir()
	sec := filepath.Join(dir, "secret")
	if err := os.WriteFile(sec, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	text = secretPaths.ReplaceAllString(text, sec)
	f := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestExampleConfigsPassCheck(t *testing.T) {
	// As CI runs `meridian check`: from the repository root, where the
	// examples' relative paths (SLO and runbook files) resolve.
	t.Chdir("..")
	files, _ := filepath.Glob("deployments/examples/*.yaml")
	if len(files) < 2 {
		t.Fatalf("expected a small and a large example, found %v", files)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			if _, err := app.LoadConfig(f); err != nil {
				t.Errorf("meridian check %s: %v", f, err)
			}
		})
	}
}

type k8sObject struct {
	file, kind, name, namespace string
	doc                         map[string]any
}

var knownKinds = map[string]string{
	"Namespace": "v1", "ConfigMap": "v1", "Secret": "v1", "Service": "v1", "PersistentVolumeClaim": "v1",
	"Deployment": "apps/v1", "DaemonSet": "apps/v1", "StatefulSet": "apps/v1",
}

func TestKubernetesManifests(t *testing.T) {
	files, _ := filepath.Glob("kubernetes/*.yaml")
	var objs []k8sObject
	for _, f := range files {
		for i, d := range docs(t, f) {
			o := k8sObject{file: f, kind: str(d, "kind"), name: str(d, "metadata", "name"), namespace: str(d, "metadata", "namespace"), doc: d}
			if api, ok := knownKinds[o.kind]; !ok || str(d, "apiVersion") != api {
				t.Errorf("%s doc %d: kind %q apiVersion %q: expected one of %v with its apiVersion", f, i+1, o.kind, str(d, "apiVersion"), knownKinds)
			}
			if o.name == "" {
				t.Errorf("%s doc %d: no metadata.name", f, i+1)
			}
			if o.kind != "Namespace" && o.namespace == "" {
				t.Errorf("%s: %s/%s has no namespace", f, o.kind, o.name)
			}
			objs = append(objs, o)
		}
	}
	have := map[string]bool{}
	kinds := map[string]int{}
	for _, o := range objs {
		have[o.kind+"/"+o.namespace+"/"+o.name] = true
		kinds[o.kind]++
	}
	for _, k := range []string{"Deployment", "DaemonSet", "Service", "ConfigMap", "Secret", "Namespace"} {
		if kinds[k] == 0 {
			t.Errorf("no %s in the manifests", k)
		}
	}
	for _, o := range objs {
		if o.namespace != "" && !have["Namespace//"+o.namespace] {
			t.Errorf("%s/%s: namespace %q is not defined", o.kind, o.name, o.namespace)
		}
		switch o.kind {
		case "Deployment", "DaemonSet", "StatefulSet":
			checkWorkload(t, o, have)
		case "Service":
			checkService(t, o, objs)
		case "ConfigMap":
			for key, v := range get(o.doc, "data").(map[string]any) {
				switch key {
				case "meridian.yaml":
					checkServerConfig(t, o.file+": ConfigMap "+o.name, v.(string))
				case "agent.yaml":
					checkAgentConfig(t, o.file+": ConfigMap "+o.name, v.(string))
				}
			}
		}
	}
}

func checkWorkload(t *testing.T, o k8sObject, have map[string]bool) {
	t.Helper()
	spec := get(o.doc, "spec", "template", "spec")
	sel, _ := get(o.doc, "spec", "selector", "matchLabels").(map[string]any)
	lbl, _ := get(o.doc, "spec", "template", "metadata", "labels").(map[string]any)
	if len(sel) == 0 {
		t.Errorf("%s/%s: no spec.selector.matchLabels", o.kind, o.name)
	}
	for k, v := range sel {
		if lbl[k] != v {
			t.Errorf("%s/%s: selector %s=%v does not match the pod template's labels", o.kind, o.name, k, v)
		}
	}
	volumes := map[string]bool{}
	for _, v := range list(spec, "volumes") {
		volumes[str(v, "name")] = true
		if cm := str(v, "configMap", "name"); cm != "" && !have["ConfigMap/"+o.namespace+"/"+cm] {
			t.Errorf("%s/%s: volume %s uses ConfigMap %q, not defined", o.kind, o.name, str(v, "name"), cm)
		}
		if s := str(v, "secret", "secretName"); s != "" && !have["Secret/"+o.namespace+"/"+s] {
			t.Errorf("%s/%s: volume %s uses Secret %q, not defined", o.kind, o.name, str(v, "name"), s)
		}
		if c := str(v, "persistentVolumeClaim", "claimName"); c != "" && !have["PersistentVolumeClaim/"+o.namespace+"/"+c] {
			t.Errorf("%s/%s: volume %s uses PVC %q, not defined", o.kind, o.name, str(v, "name"), c)
		}
	}
	containers := append(list(spec, "initContainers"), list(spec, "containers")...)
	if len(list(spec, "containers")) == 0 {
		t.Errorf("%s/%s: no containers", o.kind, o.name)
	}
	for _, c := range containers {
		if img := str(c, "image"); !imageRe.MatchString(img) {
			t.Errorf("%s/%s: container %s: image %q: expected REPO:TAG", o.kind, o.name, str(c, "name"), img)
		}
		for _, m := range list(c, "volumeMounts") {
			if !volumes[str(m, "name")] {
				t.Errorf("%s/%s: container %s mounts volume %q, not declared", o.kind, o.name, str(c, "name"), str(m, "name"))
			}
		}
		for _, e := range list(c, "env") {
			if s := str(e, "valueFrom", "secretKeyRef", "name"); s != "" && !have["Secret/"+o.namespace+"/"+s] {
				t.Errorf("%s/%s: env %s uses Secret %q, not defined", o.kind, o.name, str(e, "name"), s)
			}
			if s := str(e, "valueFrom", "configMapKeyRef", "name"); s != "" && !have["ConfigMap/"+o.namespace+"/"+s] {
				t.Errorf("%s/%s: env %s uses ConfigMap %q, not defined", o.kind, o.name, str(e, "name"), s)
			}
		}
	}
}

func checkService(t *testing.T, o k8sObject, objs []k8sObject) {
	t.Helper()
	sel, _ := get(o.doc, "spec", "selector").(map[string]any)
	if len(sel) == 0 {
		t.Errorf("Service %s: no selector", o.name)
		return
	}
	for _, w := range objs {
		if w.namespace != o.namespace || (w.kind != "Deployment" && w.kind != "DaemonSet" && w.kind != "StatefulSet") {
			continue
		}
		lbl, _ := get(w.doc, "spec", "template", "metadata", "labels").(map[string]any)
		match := true
		for k, v := range sel {
			if lbl[k] != v {
				match = false
			}
		}
		if !match {
			continue
		}
		// Every targetPort name must be a port of the workload's containers.
		ports := map[string]bool{}
		for _, c := range list(w.doc, "spec", "template", "spec", "containers") {
			for _, p := range list(c, "ports") {
				ports[str(p, "name")] = true
			}
		}
		for _, p := range list(o.doc, "spec", "ports") {
			if tp := str(p, "targetPort"); tp != "" && !ports[tp] {
				t.Errorf("Service %s: targetPort %q is no port of %s/%s", o.name, tp, w.kind, w.name)
			}
		}
		return
	}
	t.Errorf("Service %s: selector %v matches no workload", o.name, sel)
}

func TestCompose(t *testing.T) {
	ds := docs(t, "compose/compose.yaml")
	if len(ds) != 1 {
		t.Fatalf("compose.yaml: %d documents, want 1", len(ds))
	}
	c := ds[0]
	services, _ := get(c, "services").(map[string]any)
	var names []string
	for n := range services {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, want := range []string{"clickhouse", "alertmanager", "meridian"} {
		if services[want] == nil {
			t.Errorf("no service %q (have %v)", want, names)
		}
	}
	agents := 0
	top := func(kind, name string) bool { return get(c, kind, name) != nil }
	for _, n := range names {
		s := services[n]
		if img := str(s, "image"); !imageRe.MatchString(img) {
			t.Errorf("service %s: image %q: expected REPO:TAG", n, img)
		}
		for _, cmd := range list(s, "entrypoint") {
			if cmd == "/usr/local/bin/meridian-agent" {
				agents++
			}
		}
		for _, ref := range list(s, "configs") {
			src := str(ref, "source")
			if !top("configs", src) {
				t.Errorf("service %s: config %q is not defined", n, src)
			}
		}
		for _, ref := range list(s, "secrets") {
			src, _ := ref.(string)
			if src == "" {
				src = str(ref, "source")
			}
			if !top("secrets", src) {
				t.Errorf("service %s: secret %q is not defined", n, src)
			}
		}
		for _, v := range list(s, "volumes") {
			vs, _ := v.(string)
			if vol, _, ok := strings.Cut(vs, ":"); ok && !strings.HasPrefix(vol, ".") && !strings.HasPrefix(vol, "/") && !top("volumes", vol) {
				t.Errorf("service %s: volume %q is not defined", n, vol)
			}
		}
		switch d := get(s, "depends_on").(type) {
		case []any:
			for _, x := range d {
				if services[x.(string)] == nil {
					t.Errorf("service %s depends on unknown %v", n, x)
				}
			}
		case map[string]any:
			for x := range d {
				if services[x] == nil {
					t.Errorf("service %s depends on unknown %v", n, x)
				}
			}
		}
	}
	if agents < 1 {
		t.Error("no agent service (entrypoint meridian-agent)")
	}
	// The configuration files the compose file mounts exist and are valid.
	for name, cfg := range get(c, "configs").(map[string]any) {
		f := filepath.Join("compose", str(cfg, "file"))
		data, err := os.ReadFile(f)
		if err != nil {
			t.Errorf("config %s: %v", name, err)
			continue
		}
		switch {
		case name == "meridian":
			checkServerConfig(t, f, string(data))
		case strings.HasPrefix(name, "agent"):
			checkAgentConfig(t, f, string(data))
		default:
			var m map[string]any
			if err := yaml.Unmarshal(data, &m); err != nil || m["route"] == nil {
				t.Errorf("%s: expected an Alertmanager configuration with a route (err %v)", f, err)
			}
		}
	}
}

func TestSystemdUnits(t *testing.T) {
	files, _ := filepath.Glob("systemd/*.service")
	if len(files) < 2 {
		t.Fatalf("expected server and agent units, found %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sections := map[string]map[string]string{}
		cur := ""
		sc := bufio.NewScanner(bytes.NewReader(data))
		for n := 1; sc.Scan(); n++ {
			l := strings.TrimSpace(sc.Text())
			switch {
			case l == "" || strings.HasPrefix(l, "#"):
			case strings.HasPrefix(l, "[") && strings.HasSuffix(l, "]"):
				cur = l[1 : len(l)-1]
				sections[cur] = map[string]string{}
			default:
				k, v, ok := strings.Cut(l, "=")
				if !ok || cur == "" {
					t.Errorf("%s:%d: expected KEY=VALUE inside a section, got %q", f, n, l)
					continue
				}
				sections[cur][k] = v
			}
		}
		for _, s := range []string{"Unit", "Service", "Install"} {
			if sections[s] == nil {
				t.Errorf("%s: no [%s] section", f, s)
			}
		}
		exec := strings.Fields(sections["Service"]["ExecStart"])
		if len(exec) < 2 || !strings.HasPrefix(exec[0], "/usr/local/bin/meridian") {
			t.Errorf("%s: ExecStart %q: expected /usr/local/bin/meridian… SUBCOMMAND", f, sections["Service"]["ExecStart"])
		}
		if exec[0] == "/usr/local/bin/meridian" && exec[1] != "serve" {
			t.Errorf("%s: the server unit runs %q, want serve", f, exec[1])
		}
		if sections["Install"]["WantedBy"] == "" {
			t.Errorf("%s: no WantedBy", f)
		}
	}
}
