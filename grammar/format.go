package grammar

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// ResponseFormat compiles an OpenAI response_format: {"type":"text"} (and
// an absent value) give nil, no constraint; {"type":"json_object"} gives
// JSONObject; {"type":"json_schema","json_schema":{"schema":{…}}} compiles
// the schema. Anything else is an error wrapping ErrSchema (a 400).
func ResponseFormat(raw json.RawMessage) (*Grammar, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var rf struct {
		Type       string `json:"type"`
		JSONSchema *struct {
			Name   string          `json:"name"`
			Schema json.RawMessage `json:"schema"`
			Strict *bool           `json:"strict"`
		} `json:"json_schema"`
	}
	if err := json.Unmarshal(raw, &rf); err != nil {
		return nil, fmt.Errorf("%w: response_format: %v", ErrSchema, err)
	}
	switch rf.Type {
	case "text":
		return nil, nil
	case "json_object":
		return JSONObject(), nil
	case "json_schema":
		if rf.JSONSchema == nil || len(bytes.TrimSpace(rf.JSONSchema.Schema)) == 0 {
			return nil, fmt.Errorf("%w: response_format json_schema needs json_schema.schema", ErrSchema)
		}
		return CompileJSONSchema(rf.JSONSchema.Schema)
	}
	return nil, fmt.Errorf("%w: response_format type %q", ErrSchema, rf.Type)
}

// OllamaFormat compiles Ollama's format: "" or absent give nil, "json"
// gives JSONObject, a JSON object is a schema.
func OllamaFormat(raw json.RawMessage) (*Grammar, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" || string(raw) == `""` {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "json" {
			return JSONObject(), nil
		}
		return nil, fmt.Errorf("%w: format %q (want \"json\" or a JSON schema)", ErrSchema, s)
	}
	if raw[0] != '{' {
		return nil, fmt.Errorf("%w: format must be \"json\" or a JSON schema object", ErrSchema)
	}
	return CompileJSONSchema(raw)
}
