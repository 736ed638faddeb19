package rest

import (
	"context"
	"encoding/json"
	"errors"
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

	claim *idempotency.Claim
}

// Claim makes the write exactly-once under an extra key (for example the
// partner's reference of an earn), claimed when the write completes.
func (w *Write) Claim(key string) { w.claim.Defer(key) }

// WriteHandler does the work of a write inside its transaction and returns
// the status and the value to encode (nil for no body).
type WriteHandler func(w *Write) (int, any, error)

var errReplay = errors.New("replay stored response")

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
func (a *API) PartnerWriteLimit(limit int64, h WriteHandler) http.Handler {
	return a.partnerLimit(limit, true, func(rw http.ResponseWriter, r *http.Request, p *auth.PartnerPrincipal) error {
		body := Body(r.Context())
		headerKey := r.Header.Get(HeaderIdempotencyKey)
		if headerKey != "" {
			if err := idempotency.ValidateKey(HeaderIdempotencyKey, headerKey); err != nil {
				return err
			}
		}
		fp := idempotency.Fingerprint([]byte(r.Method), []byte(r.URL.RequestURI()), body)
		var status int
		var out []byte
		var replay *idempotency.Stored
		var claim *idempotency.Claim
		err := a.DB.Bun.RunInTx(r.Context(), nil, func(ctx context.Context, tx bun.Tx) error {
			// The signature is remembered with the write's effects: one
			// commit instead of two.
			if err := a.PartnerAuth.Remember(ctx, tx, p.Replay); err != nil {
				return err
			}
			claim = idempotency.Begin(tx, p.Partner.ID, fp, a.now())
			if headerKey != "" {
				claim.Defer("key:" + headerKey)
			}
			w := &Write{Ctx: ctx, Tx: tx, R: r, Partner: p, Body: body, claim: claim}
			st, v, err := h(w)
			if err != nil {
				return err
			}
			status = st
			if v != nil {
				b, err := json.Marshal(v)
				if err != nil {
					return err
				}
				out = append(b, '\n')
			}
			stored, err := claim.Complete(ctx, status, out, w.UserID)
			if err != nil {
				return err
			}
			if stored != nil { // a concurrent or earlier request with the key won
				replay = stored
				return errReplay
			}
			return nil
		})
		if err != nil && !errors.Is(err, errReplay) && claim != nil && !apperr.Is(err, apperr.CodeSignatureReplayed) {
			// The write failed, perhaps because an earlier request with the
			// same key already did it (a retried earn hitting its own daily
			// cap, a reference already used): answer with that request's
			// response. The transaction may be aborted, so ask the pool.
			prior, perr := claim.Prior(context.WithoutCancel(r.Context()), a.DB.Bun)
			switch {
			case perr != nil:
				err = perr
			case prior != nil:
				replay, err = prior, errReplay
			}
		}
		if err != nil && !apperr.Is(err, apperr.CodeSignatureReplayed) {
			// The write failed and rolled back its replay-cache entry: burn
			// the signature anyway, so the refused request cannot be
			// replayed later, when it might succeed.
			if rerr := a.PartnerAuth.Remember(context.WithoutCancel(r.Context()), a.DB.Bun, p.Replay); rerr != nil && !apperr.Is(rerr, apperr.CodeSignatureReplayed) {
				a.Log.ErrorContext(r.Context(), "replay cache after failed write", "error", rerr.Error())
			}
		}
		if errors.Is(err, errReplay) {
			rw.Header().Set("Idempotent-Replayed", "true")
			writeRaw(rw, replay.Status, replay.Body)
			return nil
		}
		if err != nil {
			return err
		}
		writeRaw(rw, status, out)
		return nil
	})
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	if len(body) > 0 {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
