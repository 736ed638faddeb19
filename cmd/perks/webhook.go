package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/database"
	"github.com/perkshq/perks/internal/partner"
	"github.com/perkshq/perks/internal/webhook"
)

func webhookCommand() *cli.Command {
	id := &cli.StringFlag{Name: "id", Usage: "endpoint `ID`"}
	sub := func(name, usage string, run webhookAction, flags ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, Flags: append([]cli.Flag{partnerFlag()}, flags...),
			Action: func(ctx context.Context, cmd *cli.Command) error { return withWebhooks(ctx, cmd, run) },
		}
	}
	return &cli.Command{
		Name:  "webhook",
		Usage: "webhook endpoints, deliveries and replays",
		Description: "Manages endpoints and deliveries with the same service methods as the REST API. Jobs it\n" +
			"inserts (replays) are worked by the running servers.",
		Commands: []*cli.Command{
			sub("list", "list the partner's endpoints", webhookList, jsonFlag()),
			sub("add", "add an endpoint (prints the signing secret, once)", webhookAdd,
				&cli.StringFlag{Name: "url", Usage: "endpoint `URL`"},
				&cli.StringFlag{Name: "events", Usage: "comma-separated event types (default: every type)"},
				&cli.StringFlag{Name: "description", Usage: "endpoint description"},
				&cli.BoolFlag{Name: "disabled", Usage: "create the endpoint disabled"}),
			sub("rotate", "new signing secret (the old one keeps signing during the grace)", webhookRotate, id,
				&cli.DurationFlag{Name: "grace", Value: webhook.DefaultGracePeriod, Usage: "how long the previous secret keeps signing"}),
			sub("enable", "enable an endpoint", webhookSetEnabled(true), id),
			sub("disable", "disable an endpoint", webhookSetEnabled(false), id),
			sub("delete", "delete an endpoint with its delivery log", webhookDelete, id),
			sub("deliveries", "the delivery log", webhookDeliveries,
				&cli.StringFlag{Name: "event", Usage: "event `ID`"},
				&cli.StringFlag{Name: "endpoint", Usage: "endpoint `ID`"},
				&cli.StringFlag{Name: "status", Usage: "delivery status: pending, succeeded, failed, disabled"},
				&cli.IntFlag{Name: "limit", Value: webhook.DefaultPageSize, Usage: "deliveries to show"},
				jsonFlag()),
			sub("replay", "re-send one event now (--event), or a window as a River job (--from, --to)", webhookReplay,
				&cli.StringFlag{Name: "event", Usage: "event `ID`"},
				&cli.StringFlag{Name: "endpoint", Usage: "only to this endpoint `ID`"},
				&cli.StringFlag{Name: "from", Usage: "window start (RFC 3339)"},
				&cli.StringFlag{Name: "to", Usage: "window end (RFC 3339)"},
				&cli.StringFlag{Name: "status", Usage: "only deliveries with this status"}),
		},
	}
}

// webhookCLI is what every webhook subcommand works with: the partner, the
// webhook service of the one service wiring, and where to print.
type webhookCLI struct {
	cmd    *cli.Command
	stdout io.Writer
	db     *database.DB
	p      *partner.Partner
	svc    *webhook.Service
}

type webhookAction func(ctx context.Context, w *webhookCLI) error

// inTx runs f in one transaction, as the REST handlers do.
func (w *webhookCLI) inTx(ctx context.Context, f func(ctx context.Context, tx bun.Tx) error) error {
	return w.db.Bun.RunInTx(ctx, nil, f)
}

// optUUID parses the flag name when it is set.
func (w *webhookCLI) optUUID(name string) (*uuid.UUID, error) {
	v := w.cmd.String(name)
	if v == "" {
		return nil, nil
	}
	u, err := uuid.Parse(v)
	if err != nil {
		return nil, fmt.Errorf("--%s must be a UUID", name)
	}
	return &u, nil
}

// endpointID is the required --id.
func (w *webhookCLI) endpointID() (uuid.UUID, error) {
	u, err := w.optUUID("id")
	if err != nil {
		return uuid.Nil, err
	}
	if u == nil {
		return uuid.Nil, errors.New("--id is required")
	}
	return *u, nil
}

// withWebhooks opens the partner and the services (without workers: jobs
// it inserts, replays, are worked by the running servers) and runs one
// subcommand.
func withWebhooks(ctx context.Context, cmd *cli.Command, run webhookAction) error {
	if _, err := requirePartner(cmd); err != nil { // before any database work
		return err
	}
	o, p, closeDB, err := openPartner(ctx, cmd, withKeysLogged)
	if err != nil {
		return err
	}
	defer closeDB()
	o.cfg.Workers = false
	if _, err := o.svc.ConnectJobs(o.cfg, o.log, o.db, time.Now); err != nil {
		return err
	}
	return run(ctx, &webhookCLI{cmd: cmd, stdout: cmd.Root().Writer, db: o.db, p: p, svc: o.svc.Webhooks})
}

func webhookList(ctx context.Context, w *webhookCLI) error {
	eps, err := w.svc.Endpoints(ctx, w.db.Bun, w.p.ID)
	if err != nil {
		return err
	}
	if w.cmd.Bool("json") {
		type row struct {
			ID             string   `json:"id"`
			Enabled        bool     `json:"enabled"`
			DisabledReason *string  `json:"disabledReason"`
			EventTypes     []string `json:"eventTypes"`
			URL            string   `json:"url"`
			Description    string   `json:"description"`
		}
		out := make([]row, 0, len(eps))
		for _, ep := range eps {
			out = append(out, row{ep.ID.String(), ep.Enabled, ep.DisabledReason, orEmpty(ep.EventTypes), ep.URL, ep.Description})
		}
		return printJSON(w.stdout, out)
	}
	tw := newTable(w.stdout, "ID", "ENABLED", "EVENTS", "URL", "DESCRIPTION")
	for _, ep := range eps {
		types := strings.Join(ep.EventTypes, ",")
		if types == "" {
			types = "(all)"
		}
		state := fmt.Sprint(ep.Enabled)
		if ep.DisabledReason != nil {
			state += " (" + *ep.DisabledReason + ")"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ep.ID, state, types, ep.URL, ep.Description)
	}
	return tw.Flush()
}

func webhookAdd(ctx context.Context, w *webhookCLI) error {
	var types []string
	for _, t := range strings.Split(w.cmd.String("events"), ",") {
		if t = strings.TrimSpace(t); t != "" {
			types = append(types, t)
		}
	}
	params := webhook.EndpointParams{URL: w.cmd.String("url"), Description: w.cmd.String("description"), EventTypes: types, Enabled: !w.cmd.Bool("disabled")}
	var ep *webhook.Endpoint
	var secret string
	err := w.inTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		ep, secret, err = w.svc.CreateEndpointTx(ctx, tx, w.p.ID, params)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w.stdout, "endpoint: %s\nsecret:   %s\n(the secret is shown only now; verify deliveries with it, see docs/webhooks.md)\n", ep.ID, secret)
	return nil
}

func webhookRotate(ctx context.Context, w *webhookCLI) error {
	epID, err := w.endpointID()
	if err != nil {
		return err
	}
	var secret string
	var expires *time.Time
	err = w.inTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		secret, expires, err = w.svc.RotateSecretTx(ctx, tx, w.p.ID, epID, w.cmd.Duration("grace"))
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w.stdout, "secret: %s\n", secret)
	if expires != nil {
		fmt.Fprintf(w.stdout, "the previous secret keeps signing until %s\n", expires.Format(time.RFC3339))
	}
	return nil
}

func webhookSetEnabled(enabled bool) webhookAction {
	return func(ctx context.Context, w *webhookCLI) error {
		epID, err := w.endpointID()
		if err != nil {
			return err
		}
		return w.inTx(ctx, func(ctx context.Context, tx bun.Tx) error {
			_, err := w.svc.SetEndpointEnabledTx(ctx, tx, w.p.ID, epID, enabled)
			return err
		})
	}
}

func webhookDelete(ctx context.Context, w *webhookCLI) error {
	epID, err := w.endpointID()
	if err != nil {
		return err
	}
	return w.svc.DeleteEndpoint(ctx, w.db.Bun, w.p.ID, epID)
}

func webhookDeliveries(ctx context.Context, w *webhookCLI) error {
	f := webhook.DeliveryFilter{Status: w.cmd.String("status"), Limit: int(w.cmd.Int("limit"))}
	var err error
	if f.EventID, err = w.optUUID("event"); err != nil {
		return err
	}
	if f.EndpointID, err = w.optUUID("endpoint"); err != nil {
		return err
	}
	ds, _, err := w.svc.Deliveries(ctx, w.db.Bun, w.p.ID, f)
	if err != nil {
		return err
	}
	if w.cmd.Bool("json") {
		type row struct {
			ID             string     `json:"id"`
			EventID        string     `json:"eventId"`
			EventType      string     `json:"eventType"`
			EndpointID     string     `json:"endpointId"`
			Status         string     `json:"status"`
			Attempts       int        `json:"attempts"`
			LastAttemptAt  *time.Time `json:"lastAttemptAt"`
			LastStatusCode *int       `json:"lastStatusCode"`
			LastError      *string    `json:"lastError"`
			NextAttemptAt  *time.Time `json:"nextAttemptAt"`
		}
		out := make([]row, 0, len(ds))
		for _, d := range ds {
			out = append(out, row{d.ID.String(), d.EventID.String(), d.EventType, d.EndpointID.String(), d.Status, d.AttemptCount, d.LastAttemptAt, d.LastStatusCode, d.LastError, d.NextAttemptAt})
		}
		return printJSON(w.stdout, out)
	}
	tw := newTable(w.stdout, "DELIVERY", "EVENT", "TYPE", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST")
	for _, d := range ds {
		last := ""
		if d.LastStatusCode != nil {
			last = fmt.Sprint(*d.LastStatusCode)
		} else if d.LastError != nil {
			last = *d.LastError
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%s\n", d.ID, d.EventID, d.EventType, d.EndpointID, d.Status, d.AttemptCount, last)
	}
	return tw.Flush()
}

// webhookReplay re-sends one event now, or schedules a window's replay as a
// River job.
func webhookReplay(ctx context.Context, w *webhookCLI) error {
	target, err := w.optUUID("endpoint")
	if err != nil {
		return err
	}
	ev, err := w.optUUID("event")
	if err != nil {
		return err
	}
	if ev != nil {
		var rows []webhook.DeliverArgs
		err = w.inTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
			rows, err = w.svc.ReplayEventTx(ctx, tx, w.p.ID, *ev, target)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(w.stdout, "queued %d deliveries of event %s\n", len(rows), ev)
		return nil
	}
	f := webhook.ReplayFilter{Status: w.cmd.String("status"), EndpointID: target}
	if f.From, err = time.Parse(time.RFC3339Nano, w.cmd.String("from")); err != nil {
		return errors.New("--event, or --from and --to (RFC 3339), are required")
	}
	if f.To, err = time.Parse(time.RFC3339Nano, w.cmd.String("to")); err != nil {
		return errors.New("--to must be an RFC 3339 time")
	}
	var jobID int64
	err = w.inTx(ctx, func(ctx context.Context, tx bun.Tx) (err error) {
		jobID, err = w.svc.ScheduleReplayTx(ctx, tx, w.p.ID, f)
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(w.stdout, "replay queued as River job %d\n", jobID)
	return nil
}
