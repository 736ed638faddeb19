package rest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/audit"
	"github.com/perkshq/perks/internal/auth"
)

// auditWrite records a successful partner API write in the audit log, in
// the write's own transaction (so a rolled-back write leaves no entry and
// an idempotent replay, which does not run the handler, adds none).
//
// First step (issue 16): the entry names the route (action), the path
// (target) and the credential (actor), and summarises the body by its
// top-level field names, size and SHA-256, never its values: bodies carry
// end users' personal data, which must disappear when a user is erased,
// and secrets, which must never be stored. Routes that know their
// before/after state can call audit.Log.RecordTx themselves later.
//
// Not audited: the high-volume routes whose own rows are already their
// trail (earns and multistore earns are ledger entries with their
// reference, user upserts happen at every sign-in of a consumer); adding an
// insert to each would tax the hot path for no new information.
var notAudited = map[string]bool{
	"POST /integrations/actions":            true,
	"POST /integrations/actions/multistore": true,
	"POST /integrations/users":              true,
}

func (a *API) auditWrite(ctx context.Context, tx bun.IDB, r *http.Request, p *auth.PartnerPrincipal, body []byte) error {
	if notAudited[r.Pattern] {
		return nil
	}
	summary := map[string]any{"bytes": len(body)}
	if len(body) > 0 {
		var top map[string]json.RawMessage
		secret := false
		if json.Unmarshal(body, &top) == nil {
			fields := make([]string, 0, len(top))
			for k := range top {
				fields = append(fields, k)
				secret = secret || audit.IsSecretField(k)
			}
			slices.Sort(fields)
			summary["fields"] = fields
		}
		// A body holding a secret (an uploaded HMAC or HS256 secret) gets
		// no digest: a short secret could be found again from it.
		if !secret {
			sum := sha256.Sum256(body)
			summary["sha256"] = hex.EncodeToString(sum[:])
		}
	}
	action := r.Pattern
	if action == "" {
		action = r.Method + " " + r.URL.Path
	}
	// The end user's external id is personal data that erasure removes
	// everywhere: the target names the route's user slot instead.
	target := r.URL.Path
	if ext := r.PathValue("externalUserId"); ext != "" {
		target = strings.Replace(target, "/users/"+ext, "/users/{externalUserId}", 1)
	}
	_, err := a.Audit.RecordTx(ctx, tx, audit.Change{
		Realm: audit.RealmPartner, RealmID: p.Partner.ID,
		Actor:  audit.Actor{Kind: audit.ActorCredential, ID: p.CredentialID.String(), Label: p.Scheme + " credential"},
		Action: action, Target: target, After: map[string]any{"request": summary},
	})
	return err
}
