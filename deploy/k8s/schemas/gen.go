//go:build ignore

// gen writes the JSON schemas that kubeconform validates deploy/k8s against,
// so that CI needs no network: one standalone, strict schema per kind the
// manifests use, from the OpenAPI (swagger 2) document of one Kubernetes
// release. Run it with `make k8s-schemas`, which takes that document from the
// k8s.io/kubernetes Go module (api/openapi-spec/swagger.json).
//
// With -crds it writes instead the schemas of the prometheus-operator kinds
// deploy/k8s/monitoring uses (ServiceMonitor, PrometheusRule), from the
// openAPIV3Schema of their CustomResourceDefinitions: `make k8s-crd-schemas`
// takes those from the github.com/prometheus-operator/prometheus-operator Go
// module, whose jsonnet/prometheus-operator/*-crd.json are the same CRDs as its
// example/prometheus-operator-crd/*.yaml, in JSON (no YAML parser needed here).
//
// What it does to each kind, as kubeconform's own schema set does: every
// $ref resolved in place (standalone), additionalProperties false on every
// object that lists its properties (strict: a misspelt field is an error)
// unless a CRD says it keeps unknown fields (x-kubernetes-preserve-unknown-fields),
// IntOrString (in a CRD, x-kubernetes-int-or-string) as string or integer,
// Quantity as string or number, kind and apiVersion fixed. Descriptions and x-kubernetes-* extensions are dropped to
// keep the files small.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// The kinds deploy/k8s uses.
var kinds = []struct{ group, version, kind string }{
	{"apps", "v1", "Deployment"},
	{"apps", "v1", "StatefulSet"},
	{"", "v1", "Namespace"},
	{"", "v1", "Service"},
	{"", "v1", "ConfigMap"},
	{"policy", "v1", "PodDisruptionBudget"},
	{"networking.k8s.io", "v1", "NetworkPolicy"},
}

// The custom resources deploy/k8s/monitoring uses: the file of each one's
// CRD in prometheus-operator's jsonnet/prometheus-operator.
var crds = []string{
	"servicemonitors-crd.json",
	"prometheusrules-crd.json",
}

func main() {
	swagger := flag.String("swagger", "", "path of Kubernetes' api/openapi-spec/swagger.json")
	crdDir := flag.String("crds", "", "path of prometheus-operator's jsonnet/prometheus-operator (instead of -swagger)")
	out := flag.String("out", "deploy/k8s/schemas", "directory to write the schemas to")
	flag.Parse()
	if *crdDir != "" {
		for _, f := range crds {
			writeCRD(filepath.Join(*crdDir, f), *out)
		}
		return
	}
	raw, err := os.ReadFile(*swagger)
	if err != nil {
		fail(err)
	}
	var doc struct {
		Info        struct{ Version string }
		Definitions map[string]map[string]any
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		fail(err)
	}
	for _, k := range kinds {
		name := find(doc.Definitions, k.group, k.version, k.kind)
		if name == "" {
			fail(fmt.Errorf("no definition for %s/%s %s", k.group, k.version, k.kind))
		}
		s := resolve(doc.Definitions, doc.Definitions[name], map[string]bool{name: true}).(map[string]any)
		write(*out, k.group, k.version, k.kind, s, "Kubernetes "+doc.Info.Version+" api/openapi-spec/swagger.json ("+name+")")
	}
}

// writeCRD writes the schema of each served version of the
// CustomResourceDefinition in file (JSON).
func writeCRD(file, out string) {
	raw, err := os.ReadFile(file)
	if err != nil {
		fail(err)
	}
	var crd struct {
		Metadata struct{ Annotations map[string]string }
		Spec     struct {
			Group    string
			Names    struct{ Kind string }
			Versions []struct {
				Name   string
				Served bool
				Schema struct {
					OpenAPIV3Schema map[string]any
				}
			}
		}
	}
	if err := json.Unmarshal(raw, &crd); err != nil {
		fail(fmt.Errorf("%s: %w", file, err))
	}
	from := "prometheus-operator " + crd.Metadata.Annotations["operator.prometheus.io/version"] + " jsonnet/prometheus-operator/" + filepath.Base(file)
	for _, v := range crd.Spec.Versions {
		if !v.Served || v.Schema.OpenAPIV3Schema == nil {
			continue
		}
		s := resolve(nil, v.Schema.OpenAPIV3Schema, map[string]bool{}).(map[string]any)
		write(out, crd.Spec.Group, v.Name, crd.Spec.Names.Kind, s, from)
	}
}

// write fixes kind and apiVersion in the schema s of group/version kind and
// writes it where kubeconform looks for it.
func write(out, group, version, kind string, s map[string]any, from string) {
	apiVersion := version
	if group != "" {
		apiVersion = group + "/" + version
	}
	props := s["properties"].(map[string]any)
	props["kind"] = map[string]any{"type": "string", "enum": []any{kind}}
	props["apiVersion"] = map[string]any{"type": "string", "enum": []any{apiVersion}}
	s["$schema"] = "http://json-schema.org/schema#"
	s["x-generated-from"] = from
	// The file name kubeconform asks for: {{ .ResourceKind }}{{ .KindSuffix }}.json
	suffix := "-" + strings.ToLower(strings.Split(group, ".")[0]) + "-" + version
	if group == "" {
		suffix = "-" + version
	}
	file := filepath.Join(out, strings.ToLower(kind)+suffix+".json")
	b, err := json.MarshalIndent(s, "", " ")
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
		fail(err)
	}
	fmt.Println("wrote", file)
}

func find(defs map[string]map[string]any, group, version, kind string) string {
	for name, d := range defs {
		gvks, _ := d["x-kubernetes-group-version-kind"].([]any)
		for _, g := range gvks {
			m := g.(map[string]any)
			if m["group"] == group && m["version"] == version && m["kind"] == kind {
				return name
			}
		}
	}
	return ""
}

// resolve returns a copy of v with every $ref replaced by its definition,
// made strict; seen holds the definitions being resolved (a recursive type
// becomes an open schema rather than an endless one).
func resolve(defs map[string]map[string]any, v any, seen map[string]bool) any {
	switch x := v.(type) {
	case map[string]any:
		if x["x-kubernetes-int-or-string"] == true {
			return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
		}
		if ref, ok := x["$ref"].(string); ok {
			name := strings.TrimPrefix(ref, "#/definitions/")
			switch name {
			case "io.k8s.apimachinery.pkg.util.intstr.IntOrString":
				return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "integer"}}}
			case "io.k8s.apimachinery.pkg.api.resource.Quantity":
				return map[string]any{"oneOf": []any{map[string]any{"type": "string"}, map[string]any{"type": "number"}}}
			}
			if seen[name] {
				return map[string]any{}
			}
			seen[name] = true
			r := resolve(defs, defs[name], seen)
			delete(seen, name)
			return r
		}
		out := map[string]any{}
		for k, val := range x {
			if k == "description" || strings.HasPrefix(k, "x-kubernetes-") {
				continue
			}
			if k == "properties" {
				props := map[string]any{}
				for pk, pv := range val.(map[string]any) {
					props[pk] = resolve(defs, pv, seen)
				}
				out[k] = props
				continue
			}
			out[k] = resolve(defs, val, seen)
		}
		if _, ok := out["properties"]; ok && x["x-kubernetes-preserve-unknown-fields"] != true {
			if _, set := out["additionalProperties"]; !set {
				out["additionalProperties"] = false
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = resolve(defs, e, seen)
		}
		return out
	default:
		return v
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "k8s-schemas:", err)
	os.Exit(1)
}
