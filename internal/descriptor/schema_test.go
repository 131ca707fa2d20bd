package descriptor

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

func TestJSONSchema_IsValidJSON(t *testing.T) {
	if !json.Valid(JSONSchema()) {
		t.Fatal("JSONSchema() is not valid JSON")
	}
}

// TestJSONSchema_ListsEveryKey proves each mapping of the schema has
// exactly the keys its parser table accepts, each with a description.
func TestJSONSchema_ListsEveryKey(t *testing.T) {
	var s struct {
		Properties  map[string]schemaProp `json:"properties"`
		Definitions map[string]struct {
			Properties           map[string]schemaProp `json:"properties"`
			AdditionalProperties json.RawMessage       `json:"additionalProperties"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(JSONSchema(), &s); err != nil {
		t.Fatal(err)
	}
	check := func(where string, props map[string]schemaProp, want []string) {
		t.Helper()
		got := make([]string, 0, len(props))
		for k, p := range props {
			got = append(got, k)
			if p.Description == "" {
				t.Errorf("%s.%s has no description", where, k)
			}
		}
		slices.Sort(got)
		want = slices.Sorted(slices.Values(want))
		if !slices.Equal(got, want) {
			t.Errorf("%s keys = %v, want %v", where, got, want)
		}
	}
	check("root", s.Properties, dataflowFields.names())
	tables := map[string][]string{
		"node":     nodeFields.names(),
		"custom":   customFields.names(),
		"operator": operatorFields.names(),
		"deploy":   deployFields.names(),
		"sandbox":  sandboxFields.names(),
	}
	for def, names := range tables {
		d := s.Definitions[def]
		check(def, d.Properties, names)
		if string(d.AdditionalProperties) != "false" {
			t.Errorf("%s: additionalProperties must be false, like the parser", def)
		}
	}
	// The long form of an input is nested in an anyOf; look for its keys.
	for _, k := range inputFields.names() {
		if !strings.Contains(string(JSONSchema()), `"`+k+`"`) {
			t.Errorf("schema does not mention input key %q", k)
		}
	}
}

type schemaProp struct {
	Description string `json:"description"`
}

// TestJSONSchema_PatternsAgreeWithParser checks the schema's regular
// expressions accept what the parser accepts, on the edge cases.
func TestJSONSchema_PatternsAgreeWithParser(t *testing.T) {
	src := regexp.MustCompile(sourcePattern())
	for _, s := range []string{
		"cam/image", "rt/op/out", "dora/timer/millis/10", "dora/timer/hz/30", "dora/timer/secs/007",
		"cam", "a/b/c/d", "dora/timer/milis/10", "dora/timer/secs/0", "cam/", "/x", "a b/c",
	} {
		p := &parser{}
		_, ok := p.source(loc{}, 1, "i", s)
		if ok != src.MatchString(s) {
			t.Errorf("source %q: parser ok=%v, schema pattern match=%v", s, ok, !ok)
		}
	}
	size := regexp.MustCompile(sizePattern)
	for _, s := range []string{"64MiB", "64 MiB", "512kib", "1G", "10", "10B", "0x10", "64MX", "MiB", "1.5GiB"} {
		_, err := parseSize(&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s})
		if (err == nil) != size.MatchString(s) {
			t.Errorf("size %q: parser ok=%v, schema pattern match=%v", s, err == nil, err != nil)
		}
	}
}
