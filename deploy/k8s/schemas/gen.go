//go:build ignore

// gen writes the JSON schemas that kubeconform validates deploy/k8s against,
// so that CI needs no network: one standalone, strict schema per kind the
// manifests use, from the OpenAPI (swagger 2) document of one Kubernetes
// release. Run it with `make k8s-schemas`, which takes that document from the
// k8s.io/kubernetes Go module (api/openapi-spec/swagger.json).
//
// What it does to each kind, as kubeconform's own schema set does: every
// $ref resolved in place (standalone), additionalProperties false on every
// object that lists its properties (strict: a misspelt field is an error),
// IntOrString as string or integer, Quantity as string or number, kind and
// apiVersion fixed. Descriptions and x-kubernetes-* extensions are dropped to
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

func main() {
	swagger := flag.String("swagger", "", "path of Kubernetes' api/openapi-spec/swagger.json")
	out := flag.String("out", "deploy/k8s/schemas", "directory to write the schemas to")
	flag.Parse()
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
		apiVersion := k.version
		if k.group != "" {
			apiVersion = k.group + "/" + k.version
		}
		props := s["properties"].(map[string]any)
		props["kind"] = map[string]any{"type": "string", "enum": []any{k.kind}}
		props["apiVersion"] = map[string]any{"type": "string", "enum": []any{apiVersion}}
		s["$schema"] = "http://json-schema.org/schema#"
		s["x-generated-from"] = "Kubernetes " + doc.Info.Version + " api/openapi-spec/swagger.json (" + name + ")"
		// The file name kubeconform asks for: {{ .ResourceKind }}{{ .KindSuffix }}.json
		suffix := "-" + strings.ToLower(strings.Split(k.group, ".")[0]) + "-" + k.version
		if k.group == "" {
			suffix = "-" + k.version
		}
		file := filepath.Join(*out, strings.ToLower(k.kind)+suffix+".json")
		b, err := json.MarshalIndent(s, "", " ")
		if err != nil {
			fail(err)
		}
		if err := os.WriteFile(file, append(b, '\n'), 0o644); err != nil {
			fail(err)
		}
		fmt.Println("wrote", file)
	}
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
		if _, ok := out["properties"]; ok {
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
