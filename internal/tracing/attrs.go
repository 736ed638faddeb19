package tracing

import "go.opentelemetry.io/otel/attribute"

// Attribute keys of the OpenTelemetry semantic conventions that Perks sets.
// The list is short on purpose: nothing a caller sends (paths, queries,
// headers, bodies, addresses) becomes an attribute, only what Perks chose
// (route patterns, operations, status codes, job kinds).
const (
	KeyServiceName    = attribute.Key("service.name")
	KeyServiceVersion = attribute.Key("service.version")
	KeyDBSystem       = attribute.Key("db.system.name")
	KeyDBOperation    = attribute.Key("db.operation.name")
	KeyDBQueryText    = attribute.Key("db.query.text")
	KeyHTTPMethod     = attribute.Key("http.request.method")
	KeyHTTPRoute      = attribute.Key("http.route")
	KeyHTTPStatus     = attribute.Key("http.response.status_code")
	KeyURLScheme      = attribute.Key("url.scheme")
	KeyServerAddress  = attribute.Key("server.address")
	KeyErrorType      = attribute.Key("error.type")
	KeyRequestID      = attribute.Key("perks.request_id")
	KeyErrorCode      = attribute.Key("perks.error_code")
)

func serviceAttrs(version string) []attribute.KeyValue {
	kv := []attribute.KeyValue{KeyServiceName.String("perks")}
	if version != "" {
		kv = append(kv, KeyServiceVersion.String(version))
	}
	return kv
}
