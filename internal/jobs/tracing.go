package jobs

import (
	"context"
	"encoding/json"
	"slices"

	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// propagator is W3C trace context only, as tracing.Propagator (this
// package imports no other internal package but the database's: see
// internal/layering).
var propagator propagation.TextMapPropagator = propagation.TraceContext{}

// Tracing carries a trace from the code that inserts a job to the job's
// work, through the job's metadata (W3C "traceparent", the key River's
// otelriver uses too), and makes a span of each insert and each attempt.
//
// Why not rivercontrib/otelriver (v0.12.0 fits River v0.51): its work span
// only *links* to the inserting span and starts a trace of its own, while
// an operator following an earn wants one trace from the request to the
// webhook delivery it caused. Here the work span is the insert span's
// child: same trace, even for a retry hours later (the span's start time
// says when). Jobs inserted outside any trace (periodic jobs, the CLI)
// start a trace of their own when worked.
//
// Installed only when tracing is on (Options.TracerProvider): off, River
// runs without it and the metadata stays as it was.
type Tracing struct {
	river.MiddlewareDefaults
	tracer trace.Tracer
}

var (
	_ rivertype.JobInsertMiddleware = (*Tracing)(nil)
	_ rivertype.WorkerMiddleware    = (*Tracing)(nil)
)

// NewTracing returns the middleware with tracer.
func NewTracing(tracer trace.Tracer) *Tracing { return &Tracing{tracer: tracer} }

// InsertMany makes a producer span of the insert, child of the caller's
// span, and writes its context into every job's metadata. Outside any
// span it does nothing.
func (t *Tracing) InsertMany(ctx context.Context, params []*rivertype.JobInsertParams, doInner func(context.Context) ([]*rivertype.JobInsertResult, error)) ([]*rivertype.JobInsertResult, error) {
	if !trace.SpanFromContext(ctx).SpanContext().IsValid() {
		return doInner(ctx)
	}
	kinds := make([]string, 0, len(params))
	for _, p := range params {
		kinds = append(kinds, p.Kind)
	}
	slices.Sort(kinds)
	ctx, span := t.tracer.Start(ctx, "river.insert", trace.WithSpanKind(trace.SpanKindProducer),
		trace.WithAttributes(attribute.StringSlice("river.job.kinds", slices.Compact(kinds)), attribute.Int("river.job.count", len(params))))
	defer span.End()
	carrier := propagation.MapCarrier{}
	propagator.Inject(ctx, carrier)
	for _, p := range params {
		p.Metadata = withTraceContext(p.Metadata, carrier)
	}
	res, err := doInner(ctx)
	if err != nil {
		span.SetStatus(codes.Error, "")
	}
	return res, err
}

// Work makes a consumer span of the attempt, child of the inserting span
// when the metadata carries one.
func (t *Tracing) Work(ctx context.Context, job *rivertype.JobRow, doInner func(context.Context) error) error {
	if carrier := traceContextOf(job.Metadata); carrier != nil {
		ctx = propagator.Extract(ctx, carrier)
	}
	ctx, span := t.tracer.Start(ctx, "river.work/"+job.Kind, trace.WithSpanKind(trace.SpanKindConsumer),
		trace.WithAttributes(
			attribute.String("river.job.kind", job.Kind),
			attribute.Int64("river.job.id", job.ID),
			attribute.Int("river.job.attempt", job.Attempt),
			attribute.String("river.queue", job.Queue),
		))
	defer span.End()
	err := doInner(ctx)
	if err != nil {
		// The error's text may quote data; its presence is enough here
		// (River's job row keeps the message).
		span.SetStatus(codes.Error, "")
	}
	return err
}

// withTraceContext adds carrier's keys to the job's JSON metadata object,
// keeping everything else; metadata that is not an object is left alone.
func withTraceContext(metadata []byte, carrier propagation.MapCarrier) []byte {
	if len(carrier) == 0 {
		return metadata
	}
	m := map[string]json.RawMessage{}
	if len(metadata) > 0 {
		if err := json.Unmarshal(metadata, &m); err != nil {
			return metadata
		}
	}
	for k, v := range carrier {
		b, _ := json.Marshal(v)
		m[k] = b
	}
	b, err := json.Marshal(m)
	if err != nil {
		return metadata
	}
	return b
}

// traceContextOf reads the trace context keys of a job's metadata (nil
// when there is none).
func traceContextOf(metadata []byte) propagation.MapCarrier {
	if len(metadata) == 0 {
		return nil
	}
	var m struct {
		TraceParent string `json:"traceparent"`
		TraceState  string `json:"tracestate"`
	}
	if err := json.Unmarshal(metadata, &m); err != nil || m.TraceParent == "" {
		return nil
	}
	c := propagation.MapCarrier{"traceparent": m.TraceParent}
	if m.TraceState != "" {
		c["tracestate"] = m.TraceState
	}
	return c
}
