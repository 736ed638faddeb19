package webhook

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/perkshq/perks/internal/tracing"
)

// Timeout bounds one delivery attempt: connect, send, and the receiver's
// answer. Receivers should answer at once and process asynchronously.
const Timeout = 10 * time.Second

// maxResponseLog is how much of a receiver's answer the log keeps.
const maxResponseLog = 1024

// UserAgent identifies deliveries.
const UserAgent = "Perks-Webhooks/1"

// Sender POSTs signed deliveries. It never follows redirects (a 3xx is a
// failed attempt: a redirect could point anywhere, and receivers must give
// the URL they want), never uses an HTTP proxy from the environment, and
// connects only where its URLPolicy allows.
type Sender struct {
	client *http.Client
	policy *URLPolicy
	// Tracer, when set (tracing on), makes a client span of every attempt;
	// the request then carries its traceparent, so a receiver that traces
	// continues the trace that caused the event (docs/tracing.md).
	Tracer trace.Tracer
}

// NewSender returns a Sender enforcing policy.
func NewSender(policy *URLPolicy) *Sender {
	tr := &http.Transport{
		Proxy:                 nil,
		DialContext:           policy.DialContext,
		ForceAttemptHTTP2:     true,
		TLSHandshakeTimeout:   5 * time.Second,
		ResponseHeaderTimeout: Timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          256,
		// Many deliveries go to the same few partner hosts at once; the
		// default of 2 idle connections per host would redial constantly.
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     90 * time.Second,
	}
	return &Sender{
		policy: policy,
		client: &http.Client{
			Transport:     tr,
			Timeout:       Timeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
}

// Message is one signed POST.
type Message struct {
	URL       string
	ID        string // webhook-id: the event id, stable across retries
	Timestamp time.Time
	Body      []byte
	Keys      [][]byte // signing keys, newest first
}

// Result is what the receiver did with a Message.
type Result struct {
	// StatusCode is 0 when no HTTP answer arrived.
	StatusCode int
	Latency    time.Duration
	// Body is the start of the answer, valid UTF-8, at most 1 KiB.
	Body string
	// RetryAfter is the receiver's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Err describes a failure to get an answer (refused address, timeout,
	// connection reset); it is empty when an answer arrived.
	Err string
}

// Succeeded reports a 2xx answer.
func (r *Result) Succeeded() bool { return r.StatusCode >= 200 && r.StatusCode < 300 }

// Send POSTs m. Failures are reported in the Result, not as an error: every
// outcome is an attempt to log.
func (s *Sender) Send(ctx context.Context, m Message) Result {
	start := time.Now()
	if s.Tracer != nil {
		var span trace.Span
		ctx, span = s.startSpan(ctx, m.URL)
		res := s.send(ctx, m)
		res.Latency = time.Since(start)
		endSpan(span, &res)
		return res
	}
	res := s.send(ctx, m)
	res.Latency = time.Since(start)
	return res
}

// startSpan starts the attempt's client span. Its only attributes are the
// method and the receiver's host: never the URL's path or query, where
// receivers put tokens of their own.
func (s *Sender) startSpan(ctx context.Context, rawURL string) (context.Context, trace.Span) {
	host := ""
	if u, err := url.Parse(rawURL); err == nil {
		host = u.Hostname()
	}
	return s.Tracer.Start(ctx, "webhook POST", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(tracing.KeyHTTPMethod.String(http.MethodPost), tracing.KeyServerAddress.String(host)))
}

// endSpan records the outcome (status code, or that no answer came) and
// ends span.
func endSpan(span trace.Span, res *Result) {
	if res.StatusCode != 0 {
		span.SetAttributes(tracing.KeyHTTPStatus.Int(res.StatusCode))
	}
	if !res.Succeeded() {
		span.SetStatus(codes.Error, "")
	}
	span.End()
}

func (s *Sender) send(ctx context.Context, m Message) Result {
	if strings.HasPrefix(m.URL, "http:") && s.policy.RequireHTTPS {
		return Result{Err: "refusing to deliver over plain http"}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, m.URL, bytes.NewReader(m.Body))
	if err != nil {
		return Result{Err: "invalid endpoint URL"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", UserAgent)
	req.Header.Set(HeaderID, m.ID)
	req.Header.Set(HeaderTimestamp, strconv.FormatInt(m.Timestamp.Unix(), 10))
	req.Header.Set(HeaderSignature, Sign(m.Keys, m.ID, m.Timestamp, m.Body))
	// traceparent of the attempt's span; nothing when tracing is off (no
	// span in ctx).
	tracing.Propagator.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := s.client.Do(req)
	if err != nil {
		return Result{Err: describe(err)}
	}
	defer resp.Body.Close()
	head, _ := io.ReadAll(io.LimitReader(resp.Body, maxResponseLog))
	// Drain a little more so the connection can be reused; give up on
	// receivers that stream large answers.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return Result{
		StatusCode: resp.StatusCode,
		Body:       cleanText(head),
		RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
}

// describe turns a transport error into a short message for the delivery
// log, without the request URL that url.Error repeats.
func describe(err error) string {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			err = inner
		}
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("no answer within %s", Timeout)
	case errors.Is(err, context.Canceled):
		return "delivery cancelled"
	}
	msg := err.Error()
	if len(msg) > 500 {
		msg = msg[:500]
	}
	return msg
}

// cleanText makes b storable as PostgreSQL text: valid UTF-8 without NULs.
func cleanText(b []byte) string {
	s := string(b)
	if !utf8.ValidString(s) {
		// The 1 KiB cut may split a rune; ToValidUTF8 replaces the remains.
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.ReplaceAll(s, "\x00", "")
}

// maxRetryAfter caps how long a receiver can push a retry back.
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	var d time.Duration
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter
		}
		d = time.Duration(n) * time.Second
	} else if t, err := http.ParseTime(v); err == nil {
		d = t.Sub(now)
	}
	if d <= 0 {
		return 0
	}
	return min(d, maxRetryAfter)
}
