package rostiv1

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"sort"
	"strings"
	"sync"
)

// CoreJSON is the schema format of Django REST framework's CoreAPI, which
// Rosti's API documents itself in and which its documented client
// (`coreapi`, Debian's python3-coreapi) reads: a document whose keys group
// links, each link a URL template, a method and its fields. rosti derives
// it from openapi.json, so the two never disagree: the operation with id
// "apps_create" is the link apps > create, "apps-action_update" is
// apps-action > update, as DRF names them.
const coreJSONType = "application/coreapi+json"

// wantsCoreJSON says whether the client asks for CoreJSON (coreapi sends
// "application/coreapi+json, application/vnd.coreapi+json, */*").
func wantsCoreJSON(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err == nil && (mt == coreJSONType || mt == "application/vnd.coreapi+json") {
			return true
		}
	}
	return false
}

var coreJSONDoc = sync.OnceValues(func() ([]byte, error) { return coreJSONFromOpenAPI(openAPI) })

// serveSchema answers CoreJSON to a client that asks for it, and OpenAPI 3
// otherwise.
func serveSchema(w http.ResponseWriter, r *http.Request) {
	w.Header().Add("Vary", "Accept")
	if wantsCoreJSON(r) {
		doc, err := coreJSONDoc()
		if err == nil {
			w.Header().Set("Content-Type", coreJSONType)
			_, _ = w.Write(doc)
			return
		}
	}
	w.Header().Set("Content-Type", "application/vnd.oai.openapi+json")
	_, _ = w.Write(openAPI)
}

type openAPIDoc struct {
	Info struct {
		Title       string `json:"title"`
		Description string `json:"description"`
	} `json:"info"`
	Paths      map[string]map[string]openAPIOperation `json:"paths"`
	Components struct {
		Parameters map[string]openAPIParameter `json:"parameters"`
		Schemas    map[string]openAPISchema    `json:"schemas"`
	} `json:"components"`
}

type openAPIOperation struct {
	Summary     string             `json:"summary"`
	Description string             `json:"description"`
	OperationID string             `json:"operationId"`
	Parameters  []openAPIParameter `json:"parameters"`
	RequestBody *struct {
		Content map[string]struct {
			Schema openAPISchema `json:"schema"`
		} `json:"content"`
	} `json:"requestBody"`
}

type openAPIParameter struct {
	Ref         string        `json:"$ref"`
	Name        string        `json:"name"`
	In          string        `json:"in"`
	Required    bool          `json:"required"`
	Description string        `json:"description"`
	Schema      openAPISchema `json:"schema"`
}

type openAPISchema struct {
	Ref         string                   `json:"$ref"`
	Type        string                   `json:"type"`
	Description string                   `json:"description"`
	Required    []string                 `json:"required"`
	Properties  map[string]openAPISchema `json:"properties"`
	Enum        []any                    `json:"enum"`
}

type coreLink struct {
	Type        string      `json:"_type"`
	URL         string      `json:"url"`
	Action      string      `json:"action"`
	Encoding    string      `json:"encoding,omitempty"`
	Title       string      `json:"title,omitempty"`
	Description string      `json:"description,omitempty"`
	Fields      []coreField `json:"fields,omitempty"`
}

type coreField struct {
	Name     string     `json:"name"`
	Required bool       `json:"required,omitempty"`
	Location string     `json:"location"`
	Schema   coreSchema `json:"schema"`
}

type coreSchema struct {
	Type        string `json:"_type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Enum        []any  `json:"enum,omitempty"`
}

func coreJSONFromOpenAPI(raw []byte) ([]byte, error) {
	var doc openAPIDoc
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("corejson: %w", err)
	}
	groups := map[string]map[string]coreLink{}
	paths := make([]string, 0, len(doc.Paths))
	for p := range doc.Paths {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	for _, path := range paths {
		for method, op := range doc.Paths[path] {
			group, action, ok := strings.Cut(op.OperationID, "_")
			if !ok {
				return nil, fmt.Errorf("corejson: %s %s: want an operationId <group>_<action>, got %q", method, path, op.OperationID)
			}
			link := coreLink{Type: "link", URL: path, Action: method, Title: op.Summary, Description: op.Description}
			for _, prm := range op.Parameters {
				if ref, ok := strings.CutPrefix(prm.Ref, "#/components/parameters/"); ok {
					prm = doc.Components.Parameters[ref]
				}
				link.Fields = append(link.Fields, coreField{
					Name: prm.Name, Required: prm.Required || prm.In == "path", Location: prm.In,
					Schema: coreSchemaOf(prm.Name, prm.Description, prm.Schema),
				})
			}
			if op.RequestBody != nil {
				body := op.RequestBody.Content["application/json"].Schema
				if ref, ok := strings.CutPrefix(body.Ref, "#/components/schemas/"); ok {
					body = doc.Components.Schemas[ref]
				}
				link.Encoding = "application/json"
				required := map[string]bool{}
				if method != "patch" {
					for _, name := range body.Required {
						required[name] = true
					}
				}
				names := make([]string, 0, len(body.Properties))
				for name := range body.Properties {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, name := range names {
					if name == "id" {
						continue // in the path, never in a body
					}
					prop := body.Properties[name]
					link.Fields = append(link.Fields, coreField{
						Name: name, Required: required[name], Location: "form",
						Schema: coreSchemaOf(name, prop.Description, prop),
					})
				}
			}
			if groups[group] == nil {
				groups[group] = map[string]coreLink{}
			}
			groups[group][action] = link
		}
	}
	out := map[string]any{
		"_type": "document",
		"_meta": map[string]string{"url": "/api/schema/", "title": doc.Info.Title, "description": doc.Info.Description},
	}
	for group, links := range groups {
		out[group] = links
	}
	return json.Marshal(out)
}

func coreSchemaOf(name, description string, s openAPISchema) coreSchema {
	title := strings.ToUpper(name[:1]) + strings.ReplaceAll(name[1:], "_", " ")
	if description == "" {
		description = s.Description
	}
	cs := coreSchema{Type: s.Type, Title: title, Description: description}
	switch {
	case len(s.Enum) > 0:
		cs.Type, cs.Enum = "enum", s.Enum
	case cs.Type == "":
		cs.Type = "anything"
	}
	return cs
}
