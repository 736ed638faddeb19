package rest

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/apperr"
	"github.com/perkshq/perks/internal/auth"
	"github.com/perkshq/perks/internal/idempotency"
)

// HeaderIdempotencyKey names the client's idempotency key.
const HeaderIdempotencyKey = "Idempotency-Key"

// Write is one partner write in progress: its transaction, request and
// idempotency claim.
type Write struct {
	Ctx     context.Context
	Tx      bun.Tx
	R       *http.Request
	Partner *auth.PartnerPrincipal
	Body    []byte
	// UserID, when the write concerns one user, ties the stored response to
	// them so erasing the user erases it too.
	UserID *uuid.UUID

	op    *idempotency.Op
	store any
}

// Claim makes the write exactly-once under an extra key (for example the
// partner's reference of an earn), claimed when the write completes.
func (w *Write) Claim(key string) { w.op.Defer(key) }

// StoreInstead stores v for retries instead of the answer: for an answer
// that shows a secret once, so the secret is not kept at rest and a retry
// does not show it again.
func (w *Write) StoreInstead(v any) { w.store = v }

// WriteHandler does the work of a write inside its transaction and returns
// the status and the value to encode (nil for no body).
type WriteHandler func(w *Write) (int, any, error)

// PartnerWrite wraps a partner write: authentication, one transaction, and
// the idempotency layer. With an Idempotency-Key header (or keys claimed by
// the handler) the response is stored with the effects, and a retry with the
// same key and request gets the same bytes back, marked with
// Idempotent-Replayed: true.
func (a *API) PartnerWrite(h WriteHandler) http.Handler {
	return a.PartnerWriteLimit(a.MaxBodyBytes, h)
}

// PartnerWriteLimit is PartnerWrite with a route-specific body limit, for
// the bulk endpoints whose bodies legitimately exceed the default.
//
// Ordering (docs/auth.md, "Replays"): the signature is remembered in the
// write's transaction after the idempotency layer stored the response and
// found no earlier one, so a retry of the same signed request with a key
// (or an earn reference) gets the stored answer, while a retry without one
// is refused with SIGNATURE_REPLAYED. A write that fails rolls back its
// replay-cache entry; the signature is then burnt on the pool, so the
// refused request cannot be replayed later, when it might succeed.
func (a *API) PartnerWriteLimit(limit int64, h WriteHandler) http.Handler {
	return a.partnerLimit(limit, true, func(rw http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
		body := Body(r.Context())
		headerKey := r.Header.Get(HeaderIdempotencyKey)
		if headerKey != "" {
			if err := idempotency.ValidateKey(HeaderIdempotencyKey, headerKey); err != nil {
				return err
			}
		}
		req := idempotency.Request{
			PartnerID:   p.Partner.ID,
			Fingerprint: idempotency.Fingerprint([]byte(r.Method), []byte(r.URL.RequestURI()), body),
			Now:         a.now(),
			Companion: &idempotency.Companion{
				SQL: func(first int) (string, []any) { return a.PartnerAuth.RememberSQL(p.Replay, first) },
				Judge: func(ctx context.Context, tx bun.Tx, inserted []string) error {
					return a.PartnerAuth.JudgeRemembered(ctx, tx, p.Replay, inserted)
				},
			},
		}
		if headerKey != "" {
			req.Deferred = []string{"key:" + headerKey}
		}
		res, err := idempotency.Run(r.Context(), a.DB.Bun, req, func(ctx context.Context, op *idempotency.Op) (idempotency.Response, error) {
			w := &Write{Ctx: ctx, Tx: op.Tx, R: r, Partner: p, Body: body, op: op}
			st, v, err := h(w)
			if err != nil {
				return idempotency.Response{}, err
			}
			if a.Audit != nil {
				if err := a.auditWrite(ctx, op.Tx, r, p, body); err != nil {
					return idempotency.Response{}, err
				}
			}
			out := idempotency.Response{Status: st, UserID: w.UserID}
			if out.Body, err = encodeBody(v); err != nil {
				return idempotency.Response{}, err
			}
			if w.store != nil {
				if out.Store, err = encodeBody(w.store); err != nil {
					return idempotency.Response{}, err
				}
			}
			return out, nil
		})
		if err != nil && !apperr.Is(err, apperr.CodeSignatureReplayed) && !apperr.Is(err, apperr.CodeSignatureReused) {
			if rerr := a.PartnerAuth.Remember(context.WithoutCancel(r.Context()), a.DB.Bun, p.Replay); rerr != nil && !auth.IsAuthError(rerr) {
				a.Log.ErrorContext(r.Context(), "replay cache after failed write", "error", rerr.Error())
			}
		}
		if err != nil {
			return err
		}
		if res.Replayed {
			rw.Header().Set("Idempotent-Replayed", "true")
		}
		writeRaw(rw, res.Status, res.Body)
		return nil
	})
}

// encodeBody is the JSON answer of v, with a final newline; nil for none.
func encodeBody(v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	if len(body) > 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
