package descriptor

import (
	"encoding/json"
	"strings"
)

// JSONSchema returns a JSON Schema (draft-07) of the dataflow format, for
// editors: the YAML extension of VS Code completes and checks keys with it
// (`# yaml-language-server: $schema=dora.schema.json`). It is generated from
// the same key tables the parser dispatches on. Rules that need the whole
// graph (inputs naming declared outputs) are only checked by Parse.
func JSONSchema() []byte {
	defs := map[string]any{
		"id": map[string]any{
			"type": "string", "pattern": idPattern,
			"description": "An id: letters, digits, `_`, `.` and `-`.",
		},
		"source": map[string]any{
			"type": "string", "pattern": sourcePattern(),
			"description": "`node/output`, `node/operator/output` (an operator of a runtime node) or `dora/timer/<" +
				strings.Join(timerUnitNames(), "|") + ">/<n>`.",
		},
		"input": map[string]any{
			"anyOf": []any{ref("source"), object("An input with options.", inputFields, "source")},
		},
		"inputs": map[string]any{
			"type": "object", "propertyNames": ref("id"), "additionalProperties": ref("input"),
		},
		"outputs": map[string]any{
			"type": "array", "uniqueItems": true, "items": ref("id"),
		},
		"args": map[string]any{
			"anyOf": []any{
				map[string]any{"type": "string"},
				map[string]any{"type": "array", "items": scalarSchema()},
			},
		},
		"env": map[string]any{
			"anyOf": []any{
				map[string]any{"type": "object", "additionalProperties": scalarSchema()},
				map[string]any{"type": "array", "items": map[string]any{
					"type": "object", "minProperties": 1, "additionalProperties": scalarSchema(),
				}},
			},
		},
		"custom":  object("Seed form of a custom node.", customFields, "source"),
		"deploy":  object("Where and how a node runs.", deployFields),
		"sandbox": object("Isolation of a wasm operator.", sandboxFields),
		"node": withOneOfRequired(object("A node: a custom executable or a runtime node hosting operators.", nodeFields, "id"),
			nodeKinds),
		"operator": withOneOfRequired(object("An operator, run by a runtime node.", operatorFields),
			sourceFields().names()),
		"listedOperator": map[string]any{
			"allOf": []any{ref("operator"), map[string]any{"required": []string{"id"}}},
		},
	}
	root := object("A dora dataflow: nodes and the messages they exchange.", dataflowFields, "nodes")
	root["$schema"] = "http://json-schema.org/draft-07/schema#"
	root["title"] = "dora dataflow"
	root["definitions"] = defs
	out, err := json.MarshalIndent(root, "", "  ")
	if err != nil {
		// Only static maps of strings, numbers and slices go in.
		panic("descriptor: JSON schema does not marshal: " + err.Error())
	}
	return out
}

func ref(def string) map[string]any {
	return map[string]any{"$ref": "#/definitions/" + def}
}

// object is the schema of a mapping whose keys are exactly fs.
func object[T any](doc string, fs fields[T], required ...string) map[string]any {
	s := map[string]any{
		"type":                 "object",
		"description":          doc,
		"properties":           fs.properties(),
		"additionalProperties": false,
	}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

// withOneOfRequired says exactly one of keys must be present.
func withOneOfRequired(s map[string]any, keys []string) map[string]any {
	alts := make([]any, len(keys))
	for i, k := range keys {
		alts[i] = map[string]any{"required": []string{k}}
	}
	s["oneOf"] = alts
	return s
}

func scalarSchema() map[string]any {
	return map[string]any{"type": []string{"string", "number", "boolean"}}
}

// sourcePattern matches the input sources the parser accepts.
func sourcePattern() string {
	id := `[` + idChars + `]+`
	timer := reservedNodeID + `/timer/(` + strings.Join(timerUnitNames(), "|") + `)/0*[1-9][0-9]*`
	return `^(` + timer + `|` + id + `/` + id + `(/` + id + `)?)$`
}
