package graph

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/perkshq/perks/internal/apperr"
)

// postTransport is gqlgen's POST transport (application/json bodies) with a
// safe answer to a body that does not decode. gqlgen's own transport puts
// the whole body into the error message ("json request body could not be
// decoded: … body:<the body>"), which the error presenter then saw as an
// internal error: a 500 KB log line with the tokens and emails of the body,
// and INTERNAL for what is the client's mistake. Here such a body answers
// 400 with MALFORMED_JSON (or INVALID_FIELD naming the member of the wrong
// type) and a message that quotes nothing from the body.
type postTransport struct{}

var _ graphql.Transport = postTransport{}

const graphQLResponseJSON = "application/graphql-response+json"

func (postTransport) Supports(r *http.Request) bool {
	if r.Header.Get("Upgrade") != "" || r.Method != http.MethodPost {
		return false
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

func (postTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	ctx := r.Context()
	contentType := responseContentType(r)
	w.Header().Set("Content-Type", contentType)

	start := graphql.Now()
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeProtocolError(w, exec, r, http.StatusBadRequest, apperr.New(apperr.CodeBadRequest, "could not read the request body"))
		return
	}
	params := &graphql.RawParams{Headers: r.Header, ReadTime: graphql.TraceTiming{Start: start, End: graphql.Now()}}
	if e := decodeParams(body, params); e != nil {
		writeProtocolError(w, exec, r, http.StatusBadRequest, e)
		return
	}

	oc, opErr := exec.CreateOperationContext(ctx, params)
	if opErr != nil {
		w.WriteHeader(statusFor(opErr, contentType))
		writeResponse(w, exec.DispatchError(graphql.WithOperationContext(ctx, oc), opErr))
		return
	}
	responses, ctx := exec.DispatchOperation(ctx, oc)
	writeResponse(w, responses(ctx))
}

// otherTransport answers every request postTransport does not support
// (another content type, a websocket upgrade) with 415 and a code, instead
// of gqlgen's code-less "transport not supported".
type otherTransport struct{}

func (otherTransport) Supports(*http.Request) bool { return true }

func (otherTransport) Do(w http.ResponseWriter, r *http.Request, exec graphql.GraphExecutor) {
	w.Header().Set("Content-Type", "application/json")
	writeProtocolError(w, exec, r, http.StatusUnsupportedMediaType,
		apperr.New(apperr.CodeUnsupportedMediaType, "send the GraphQL request as a POST with Content-Type: application/json"))
}

// decodeParams decodes a GraphQL-over-HTTP request body. Unknown members are
// ignored, as gqlgen does (clients add their own, e.g. Apollo's `id`).
func decodeParams(body []byte, p *graphql.RawParams) *apperr.Error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return apperr.New(apperr.CodeMalformedJSON, "the request body is empty; send a JSON object with a `query`")
	}
	if trimmed[0] != '{' {
		return apperr.New(apperr.CodeMalformedJSON, "the request body must be a JSON object with a `query`")
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	err := dec.Decode(p)
	if err == nil {
		if _, err := dec.Token(); !errors.Is(err, io.EOF) {
			return apperr.New(apperr.CodeMalformedJSON, "unexpected data after the JSON object")
		}
		return nil
	}
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return apperr.New(apperr.CodeMalformedJSON, "the request body is not valid JSON (syntax error at byte %d)", syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.New(apperr.CodeMalformedJSON, "the request body ends before its JSON object does")
	case errors.As(err, &typ) && typ.Field != "":
		name := typ.Field
		if i := strings.IndexByte(name, '.'); i >= 0 {
			name = name[:i]
		}
		want := map[string]string{"query": "a string", "operationName": "a string", "variables": "an object", "extensions": "an object"}[name]
		if want == "" {
			want = "of another type"
		}
		return apperr.Field(apperr.CodeInvalidField, name, "%s must be %s, not %s", name, want, typ.Value)
	}
	return apperr.New(apperr.CodeMalformedJSON, "the request body is not a GraphQL request (a JSON object with a `query` string)")
}

// writeProtocolError answers a request refused before it reached gqlgen,
// through the executor so the error presenter and response middleware see it.
func writeProtocolError(w http.ResponseWriter, exec graphql.GraphExecutor, r *http.Request, status int, e *apperr.Error) {
	gqlErr := &gqlerror.Error{Message: e.Message, Extensions: map[string]any{"code": string(e.Code)}}
	if e.Field != "" {
		gqlErr.Extensions["field"] = e.Field
	}
	w.WriteHeader(status)
	writeResponse(w, exec.DispatchError(r.Context(), gqlerror.List{gqlErr}))
}

// writeResponse writes resp exactly as json.Marshal(resp) would. Marshal
// re-encodes Data (a json.RawMessage gqlgen wrote) character by character
// to compact it and escape <, >, &, U+2028 and U+2029; when Data contains
// none of those (compactAsIs), it is copied as it is, which saved a
// catalog page about a twentieth of its CPU (docs/benchmarks.md, "Issue
// 18, session 7: catalog page"). TestWriteResponseIsMarshal.
func writeResponse(w io.Writer, resp *graphql.Response) {
	if len(resp.Data) == 0 || !compactAsIs(resp.Data) {
		b, err := json.Marshal(resp)
		if err != nil {
			panic(err) // as gqlgen's transport: the recover of handler.Server answers
		}
		_, _ = w.Write(b)
		return
	}
	// The members of graphql.Response in their order, omitempty as tagged.
	b := make([]byte, 0, len(resp.Data)+64)
	b = append(b, '{')
	if len(resp.Errors) > 0 {
		b = appendMember(b, "errors", resp.Errors)
		b = append(b, ',')
	}
	b = append(b, `"data":`...)
	b = append(b, resp.Data...)
	if resp.Label != "" {
		b = appendMember(append(b, ','), "label", resp.Label)
	}
	if len(resp.Path) > 0 {
		b = appendMember(append(b, ','), "path", resp.Path)
	}
	if resp.HasNext != nil {
		b = appendMember(append(b, ','), "hasNext", *resp.HasNext)
	}
	if len(resp.Extensions) > 0 {
		b = appendMember(append(b, ','), "extensions", resp.Extensions)
	}
	_, _ = w.Write(append(b, '}'))
}

// appendMember appends "name":v, v as json.Marshal writes it.
func appendMember(b []byte, name string, v any) []byte {
	raw, err := json.Marshal(v)
	if err != nil {
		panic(err) // as json.Marshal(resp) would fail
	}
	b = append(b, '"')
	b = append(b, name...)
	b = append(b, '"', ':')
	return append(b, raw...)
}

// compactAsIs reports whether json.Marshal writes the JSON document data
// unchanged: no whitespace outside strings, and none of the characters it
// escapes (<, >, & and 0xE2, the first byte of U+2028 and U+2029 and of
// other characters, which then take the slow path for nothing).
func compactAsIs(data []byte) bool {
	inString := false
	for i := 0; i < len(data); i++ {
		c := data[i]
		switch {
		case c == '<' || c == '>' || c == '&' || c == 0xE2:
			return false
		case inString:
			if c == '\\' {
				i++ // the escaped character
			} else if c == '"' {
				inString = false
			}
		case c == '"':
			inString = true
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			return false
		}
	}
	return true
}

// responseContentType is application/graphql-response+json when the client
// asks for it before application/json or names neither, application/json
// otherwise (as gqlgen's POST transport).
func responseContentType(r *http.Request) string {
	accept := r.Header.Get("Accept")
	if accept == "" {
		return "application/json"
	}
	for _, part := range strings.Split(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case graphQLResponseJSON:
			return graphQLResponseJSON
		case "application/json", "application/*", "*/*":
			return "application/json"
		}
	}
	return graphQLResponseJSON
}

// statusFor is the status of a request refused before execution: 422 for
// parse, validation and limit errors (400 under
// application/graphql-response+json, as the GraphQL-over-HTTP draft says),
// 200 for the rest.
func statusFor(errs gqlerror.List, contentType string) int {
	if errcode.GetErrorKind(errs) != errcode.KindProtocol {
		return http.StatusOK
	}
	if contentType == graphQLResponseJSON {
		return http.StatusBadRequest
	}
	return http.StatusUnprocessableEntity
}
