// Package tracing turns on OpenTelemetry tracing when the operator asks for
// it, and holds the pieces the other packages share: the scope name, the
// SQL span hook for bun and the SQL text sanitiser.
//
// Tracing is off by default and then costs nothing: app.New installs no
// hook, no middleware and no River middleware at all without a
// TracerProvider (docs/tracing.md). It is switched on with the standard
// OpenTelemetry variables: OTEL_EXPORTER_OTLP_ENDPOINT (or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, and neither OTEL_SDK_DISABLED=true
// nor OTEL_TRACES_EXPORTER=none. The exporter speaks OTLP over HTTP
// (protobuf); it reads the other OTEL_EXPORTER_OTLP_* variables (headers,
// timeout, TLS, compression) itself, and the SDK reads OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES and OTEL_TRACES_SAMPLER(_ARG).
package tracing

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Scope is the instrumentation scope of every span Perks makes.
const Scope = "github.com/perkshq/perks"

// Propagator is the one propagator Perks uses: W3C trace context
// (traceparent, tracestate), in requests, job metadata and webhook
// deliveries. Baggage is deliberately not propagated: it is free text a
// caller could fill with anything, and would be forwarded to partners.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Enabled reports whether the environment asks for tracing, and why not
// when it does not.
func Enabled(getenv func(string) string) (bool, string) {
	switch {
	case strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true"):
		return false, "OTEL_SDK_DISABLED=true"
	case strings.EqualFold(strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")), "none"):
		return false, "OTEL_TRACES_EXPORTER=none"
	case getenv("OTEL_EXPORTER_OTLP_ENDPOINT") == "" && getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == "":
		return false, "OTEL_EXPORTER_OTLP_ENDPOINT is unset"
	}
	return true, ""
}

// FromEnv returns the TracerProvider the environment asks for, or nil when
// tracing is off. The caller must call the provider's Shutdown on exit: it
// flushes the spans still batched.
func FromEnv(ctx context.Context, getenv func(string) string, version string) (*sdktrace.TracerProvider, error) {
	if on, _ := Enabled(getenv); !on {
		return nil, nil
	}
	proto := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if proto == "" {
		proto = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	if proto != "" && proto != "http/protobuf" {
		return nil, fmt.Errorf("OTEL_EXPORTER_OTLP_PROTOCOL=%q is not supported: Perks exports OTLP over HTTP (http/protobuf, the collector's port 4318)", proto)
	}
	if e := strings.TrimSpace(getenv("OTEL_TRACES_EXPORTER")); e != "" && e != "otlp" {
		return nil, fmt.Errorf("OTEL_TRACES_EXPORTER=%q is not supported: use otlp or none", e)
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("otlp trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(serviceAttrs(version)...),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		return nil, fmt.Errorf("tracing resource: %w", err)
	}
	return sdktrace.NewTracerProvider(sdktrace.WithBatcher(exp), sdktrace.WithResource(res)), nil
}

// Tracer returns Perks' tracer of tp, nil when tp is nil (tracing off): the
// instrumented code checks for nil and skips all work.
func Tracer(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(Scope)
}
