// Package openapi holds the OpenAPI 3.1 document of the partner and merchant
// REST API (openapi.yaml, written by hand next to the handlers it
// describes) and serves it as JSON. Tests check that every route the router
// serves is documented and that the requests and responses of the whole
// test suite validate against it.
package openapi

import (
	_ "embed"
	"encoding/json"
	"fmt"

	"gopkg.in/yaml.v3"
)

//go:embed openapi.yaml
var source []byte

var document []byte

func init() {
	var v any
	if err := yaml.Unmarshal(source, &v); err != nil {
		panic(fmt.Sprintf("openapi.yaml: %v", err))
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("openapi.yaml to JSON: %v", err))
	}
	document = b
}

// JSON returns the document as JSON.
func JSON() []byte { return document }
