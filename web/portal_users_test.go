package web_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/perkshq/perks/internal/account"
	"github.com/perkshq/perks/internal/apptest"
	"github.com/perkshq/perks/internal/audit"
)

// TestPortalUsersWebhooksExportsInBrowser: acme's support user looks a user
// up, adjusts points with a reason and sees the balance change (a refused
// amount changes nothing); acme's owner sees that adjustment in the audit
// log, makes a webhook endpoint that fails (an httptest receiver answering
// 500) until its delivery is failed, then, the receiver answering 200
// again, replays it from the delivery log and sees the new delivery
// succeed; support sees the webhooks but no form to change them. axe-core
// runs on every page and state.
func TestPortalUsersWebhooksExportsInBrowser(t *testing.T) {
	t.Parallel()
	env := apptest.New(t, apptest.Options{Workers: true})
	env.App.Accounts.Argon2 = &account.Argon2Params{Memory: 64, Time: 1, Threads: 1}
	ctx := context.Background()
	acme := env.PartnerID("acme")
	invite := func(email, role string) string {
		inv, err := env.App.Accounts.InviteTx(ctx, env.DB.Bun, account.InviteParams{Realm: account.RealmPartner, RealmID: acme,
			Email: email, Role: role, Actor: audit.Actor{Kind: audit.ActorOperator, Label: "cli"}})
		require.NoError(t, err)
		return env.Server.URL + "/portal/activate?token=" + url.QueryEscape(inv.Token)
	}
	userID := env.FundedUser("acme", "browser-pu-1", "FR", 100)

	steps := newSteps(t)
	support := newPage(t, steps)
	activateInBrowser(t, env, support, invite("support@acme.example.test", account.RoleSupport), "support@acme.example.test")

	// Users: look up, adjust, see the balance change.
	support.run("open Users", chromedp.Navigate(env.Server.URL+"/portal/users"), chromedp.WaitVisible("#user-search"))
	support.axe("users search")
	support.run("look the user up", chromedp.SendKeys("#q", "browser-pu-1"), chromedp.Submit("#q"), chromedp.WaitVisible("#adjust"))
	require.Equal(t, "100", support.text("#balance"))
	support.axe("user page")
	support.run("a refused amount", chromedp.SendKeys("#points", "0"), chromedp.SendKeys("#reason", "nothing"),
		chromedp.Click(`#adjust button[type=submit]`), chromedp.WaitVisible(".error"))
	require.Contains(t, support.text(".error"), "non-zero")
	require.Equal(t, "100", support.text("#balance"))
	support.axe("user page, refused adjustment")
	support.run("adjust with a reason",
		chromedp.Evaluate(`document.querySelector("#points").value = ""; document.querySelector("#reason").value = ""`, nil),
		chromedp.SendKeys("#points", "25"), chromedp.SendKeys("#reason", "birthday goodwill"),
		chromedp.Click(`#adjust button[type=submit]`), chromedp.WaitVisible(".notice"))
	require.Equal(t, "125", support.text("#balance"))
	support.waitText("#history", "birthday goodwill")
	support.shot("user-adjusted")
	support.axe("user page, adjusted")
	require.Equal(t, 1, env.Count("ledger_entries", "user_id = ? AND kind = 'adjust' AND points = 25", userID))

	// Support sees the webhooks, without any form to change them.
	support.run("open Webhooks as support", chromedp.Navigate(env.Server.URL+"/portal/webhooks"), chromedp.WaitVisible("#endpoints"))
	var forms int
	support.eval(`document.querySelectorAll("#create-endpoint, #replay-window, form[action$='/replay'], form[action$='/delete']").length`, &forms)
	require.Zero(t, forms, "support may not change webhooks")
	support.axe("webhooks, read only")

	owner := newPage(t, steps)
	activateInBrowser(t, env, owner, invite("owner@acme.example.test", account.RoleOwner), "owner@acme.example.test")
	owner.run("open the audit log", chromedp.Navigate(env.Server.URL+"/portal/audit"), chromedp.WaitVisible("table"))
	owner.waitText("table", "user.adjust")
	owner.waitText("table", "support@acme.example.test")

	// Webhooks: an endpoint whose receiver fails.
	var ok atomic.Bool
	var hits atomic.Int32
	rcv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if ok.Load() {
			w.WriteHeader(http.StatusOK)
			return
		}
		w.WriteHeader(http.StatusInternalServerError)
	}))
	t.Cleanup(rcv.Close)
	owner.run("add an endpoint", chromedp.Navigate(env.Server.URL+"/portal/webhooks"), chromedp.WaitVisible("#create-endpoint"),
		chromedp.SendKeys("#endpoint-url", rcv.URL+"/hooks"),
		chromedp.SendKeys("#endpoint-description", "crm"),
		chromedp.Click(`#create-endpoint input[value="user.created"]`),
		chromedp.Click(`#create-endpoint button[type=submit]`),
		chromedp.WaitVisible("#webhook-secret"))
	owner.axe("webhooks, secret shown once")

	require.Equal(t, http.StatusCreated, env.Partner("acme", http.MethodPost, "/integrations/users", []byte(`{"externalUserId":"browser-pu-2"}`)).StatusCode)
	require.Eventually(t, func() bool { return hits.Load() >= 1 }, 20*time.Second, 20*time.Millisecond, "the first attempt")
	// Make the retry the last attempt, due now, so the delivery fails for
	// good (the schedule would wait minutes).
	require.Eventually(t, func() bool {
		res, err := env.DB.Bun.NewRaw(`UPDATE river_job SET max_attempts = attempt + 1, scheduled_at = now()
			WHERE kind = 'webhook_deliver' AND state = 'retryable'`).Exec(ctx)
		n, _ := res.RowsAffected()
		return err == nil && n == 1
	}, 20*time.Second, 50*time.Millisecond)
	require.Eventually(t, func() bool {
		return env.Count("webhook_deliveries", "partner_id = ? AND event_type = 'user.created' AND status = 'failed'", acme) == 1
	}, 30*time.Second, 50*time.Millisecond, "the delivery fails")

	owner.run("filter the failed deliveries", chromedp.Navigate(env.Server.URL+"/portal/webhooks"), chromedp.WaitVisible("#delivery-filter"),
		chromedp.SetValue("#f-status", "failed", chromedp.ByQuery), chromedp.Submit("#f-status", chromedp.ByQuery), chromedp.WaitVisible(`tr.delivery[data-status="failed"]`))
	owner.waitText(`tr.delivery[data-status="failed"]`, "HTTP 500")
	owner.shot("webhooks-failed")
	owner.axe("webhooks, failed delivery")
	ok.Store(true)
	owner.run("replay it", chromedp.Click(`tr.delivery[data-status="failed"] button[type=submit]`), chromedp.WaitVisible(".notice"))
	owner.waitText(".notice", "queued again")
	owner.axe("webhooks, replayed")
	require.Eventually(t, func() bool {
		return env.Count("webhook_deliveries", "partner_id = ? AND event_type = 'user.created' AND status = 'succeeded' AND generation = 1", acme) == 1
	}, 20*time.Second, 50*time.Millisecond, "the replayed delivery succeeds")
	owner.run("see it succeeded", chromedp.Navigate(env.Server.URL+"/portal/webhooks?status=succeeded"), chromedp.WaitVisible(`tr.delivery[data-status="succeeded"]`))
	owner.waitText(`tr.delivery[data-status="succeeded"]`, "HTTP 200")
	owner.shot("webhooks-replayed")

	var epID uuid.UUID
	require.NoError(t, env.DB.Bun.NewSelect().Table("webhook_endpoints").Column("id").Where("partner_id = ? AND description = 'crm'", acme).Scan(ctx, &epID))
	owner.run("edit the endpoint", chromedp.Navigate(env.Server.URL+"/portal/webhooks/"+epID.String()), chromedp.WaitVisible("#edit-endpoint"))
	owner.axe("webhook endpoint edit")

	// Exports & jobs.
	res := env.Partner("acme", http.MethodPost, "/integrations/users/multidelete", []byte(`{"externalUserIds":["browser-pu-2","nobody"]}`))
	require.Equal(t, http.StatusAccepted, res.StatusCode, "%s", res.Body)
	jobID := res.JSON(t)["jobId"].(string)
	owner.run("open Exports & jobs", chromedp.Navigate(env.Server.URL+"/portal/exports"), chromedp.WaitVisible("#export-form"))
	owner.shot("exports")
	owner.axe("exports")
	owner.run("open the jobs", chromedp.Navigate(env.Server.URL+"/portal/jobs"), chromedp.WaitVisible("#jobs"))
	owner.axe("jobs")
	owner.run("open the job", chromedp.Navigate(env.Server.URL+"/portal/jobs/"+jobID), chromedp.WaitVisible("#job"))
	// The page refreshes itself until the job ends.
	require.Eventually(t, func() bool {
		var state string
		err := chromedp.Run(owner.ctx, chromedp.Evaluate(`(document.querySelector("#job-state") || {textContent: ""}).textContent`, &state))
		return err == nil && strings.HasPrefix(state, "completed")
	}, 30*time.Second, 200*time.Millisecond, "the job page refreshes until the job completes")
	require.True(t, strings.Contains(owner.text("#job"), "1 done, 1 failed of 2"), owner.text("#job"))
	owner.shot("job")
	owner.axe("job finished")
	steps.clean()
}
