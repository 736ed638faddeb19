package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"
	"github.com/urfave/cli/v3"

	"github.com/perkshq/perks/internal/webhook"
)

func webhookCommand() *cli.Command {
	id := &cli.StringFlag{Name: "id", Usage: "endpoint `ID`"}
	sub := func(name, usage string, flags ...cli.Flag) *cli.Command {
		return &cli.Command{
			Name: name, Usage: usage, Flags: append([]cli.Flag{partnerFlag()}, flags...),
			Action: func(ctx context.Context, cmd *cli.Command) error { return runWebhook(ctx, cmd, name) },
		}
	}
	return &cli.Command{
		Name:  "webhook",
		Usage: "webhook endpoints, deliveries and replays",
		Description: "Manages endpoints and deliveries with the same service methods as the REST API. Jobs it\n" +
			"inserts (replays) are worked by the running servers.",
		Commands: []*cli.Command{
			sub("list", "list the partner's endpoints", jsonFlag()),
			sub("add", "add an endpoint (prints the signing secret, once)",
				&cli.StringFlag{Name: "url", Usage: "endpoint `URL`"},
				&cli.StringFlag{Name: "events", Usage: "comma-separated event types (default: every type)"},
				&cli.StringFlag{Name: "description", Usage: "endpoint description"},
				&cli.BoolFlag{Name: "disabled", Usage: "create the endpoint disabled"}),
			sub("rotate", "new signing secret (the old one keeps signing during the grace)", id,
				&cli.DurationFlag{Name: "grace", Value: webhook.DefaultGracePeriod, Usage: "how long the previous secret keeps signing"}),
			sub("enable", "enable an endpoint", id),
			sub("disable", "disable an endpoint", id),
			sub("delete", "delete an endpoint with its delivery log", id),
			sub("deliveries", "the delivery log",
				&cli.StringFlag{Name: "event", Usage: "event `ID`"},
				&cli.StringFlag{Name: "endpoint", Usage: "endpoint `ID`"},
				&cli.StringFlag{Name: "status", Usage: "delivery status: pending, succeeded, failed, disabled"},
				&cli.IntFlag{Name: "limit", Value: webhook.DefaultPageSize, Usage: "deliveries to show"},
				jsonFlag()),
			sub("replay", "re-send one event now (--event), or a window as a River job (--from, --to)",
				&cli.StringFlag{Name: "event", Usage: "event `ID`"},
				&cli.StringFlag{Name: "endpoint", Usage: "only to this endpoint `ID`"},
				&cli.StringFlag{Name: "from", Usage: "window start (RFC 3339)"},
				&cli.StringFlag{Name: "to", Usage: "window end (RFC 3339)"},
				&cli.StringFlag{Name: "status", Usage: "only deliveries with this status"}),
		},
	}
}

// runWebhook manages webhook endpoints and deliveries with the same service
// methods as the REST API. It builds the app without workers: jobs it
// inserts (replays) are worked by the running servers.
func runWebhook(ctx context.Context, cmd *cli.Command, sub string) error {
	stdout := cmd.Root().Writer
	_, err := requirePartner(cmd) // before any database work
	if err != nil {
		return err
	}
	id, url, events, description, disabled := cmd.String("id"), cmd.String("url"), cmd.String("events"), cmd.String("description"), cmd.Bool("disabled")
	grace, eventID, endpointID, status, limit := cmd.Duration("grace"), cmd.String("event"), cmd.String("endpoint"), cmd.String("status"), cmd.Int("limit")
	from, to := cmd.String("from"), cmd.String("to")
	optUUID := func(name, v string) (*uuid.UUID, error) {
		if v == "" {
			return nil, nil
		}
		u, err := uuid.Parse(v)
		if err != nil {
			return nil, fmt.Errorf("--%s must be a UUID", name)
		}
		return &u, nil
	}
	needID := func() (uuid.UUID, error) {
		u, err := optUUID("id", id)
		if err != nil {
			return uuid.Nil, err
		}
		if u == nil {
			return uuid.Nil, errors.New("--id is required")
		}
		return *u, nil
	}

	o, p, closeDB, err := openPartner(ctx, cmd, withKeysLogged)
	if err != nil {
		return err
	}
	defer closeDB()
	// Insert-only River clients: jobs it inserts (replays) are worked by
	// the running servers.
	o.cfg.Workers = false
	if _, err := o.svc.ConnectJobs(o.cfg, o.log, o.db, time.Now); err != nil {
		return err
	}
	db := o.db
	svc := o.svc.Webhooks
	inTx := func(f func(ctx context.Context, tx bun.Tx) error) error { return db.Bun.RunInTx(ctx, nil, f) }

	switch sub {
	case "list":
		eps, err := svc.Endpoints(ctx, db.Bun, p.ID)
		if err != nil {
			return err
		}
		if cmd.Bool("json") {
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
			return printJSON(stdout, out)
		}
		tw := newTable(stdout, "ID", "ENABLED", "EVENTS", "URL", "DESCRIPTION")
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

	case "add":
		var types []string
		for _, t := range strings.Split(events, ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
		var ep *webhook.Endpoint
		var secret string
		err := inTx(func(ctx context.Context, tx bun.Tx) error {
			ep, secret, err = svc.CreateEndpointTx(ctx, tx, p.ID, webhook.EndpointParams{URL: url, Description: description, EventTypes: types, Enabled: !disabled})
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "endpoint: %s\nsecret:   %s\n(the secret is shown only now; verify deliveries with it, see docs/webhooks.md)\n", ep.ID, secret)
		return nil

	case "rotate":
		epID, err := needID()
		if err != nil {
			return err
		}
		var secret string
		var expires *time.Time
		err = inTx(func(ctx context.Context, tx bun.Tx) error {
			secret, expires, err = svc.RotateSecretTx(ctx, tx, p.ID, epID, grace)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "secret: %s\n", secret)
		if expires != nil {
			fmt.Fprintf(stdout, "the previous secret keeps signing until %s\n", expires.Format(time.RFC3339))
		}
		return nil

	case "enable", "disable":
		epID, err := needID()
		if err != nil {
			return err
		}
		return inTx(func(ctx context.Context, tx bun.Tx) error {
			_, err := svc.SetEndpointEnabledTx(ctx, tx, p.ID, epID, sub == "enable")
			return err
		})

	case "delete":
		epID, err := needID()
		if err != nil {
			return err
		}
		return svc.DeleteEndpoint(ctx, db.Bun, p.ID, epID)

	case "deliveries":
		f := webhook.DeliveryFilter{Status: status, Limit: limit}
		if f.EventID, err = optUUID("event", eventID); err != nil {
			return err
		}
		if f.EndpointID, err = optUUID("endpoint", endpointID); err != nil {
			return err
		}
		ds, _, err := svc.Deliveries(ctx, db.Bun, p.ID, f)
		if err != nil {
			return err
		}
		if cmd.Bool("json") {
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
			return printJSON(stdout, out)
		}
		tw := newTable(stdout, "DELIVERY", "EVENT", "TYPE", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST")
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

	case "replay":
		target, err := optUUID("endpoint", endpointID)
		if err != nil {
			return err
		}
		if eventID != "" {
			ev, err := optUUID("event", eventID)
			if err != nil {
				return err
			}
			var rows []webhook.DeliverArgs
			err = inTx(func(ctx context.Context, tx bun.Tx) error {
				rows, err = svc.ReplayEventTx(ctx, tx, p.ID, *ev, target)
				return err
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "queued %d deliveries of event %s\n", len(rows), ev)
			return nil
		}
		f := webhook.ReplayFilter{Status: status, EndpointID: target}
		if f.From, err = time.Parse(time.RFC3339Nano, from); err != nil {
			return errors.New("--event, or --from and --to (RFC 3339), are required")
		}
		if f.To, err = time.Parse(time.RFC3339Nano, to); err != nil {
			return errors.New("--to must be an RFC 3339 time")
		}
		var jobID int64
		err = inTx(func(ctx context.Context, tx bun.Tx) error {
			jobID, err = svc.ScheduleReplayTx(ctx, tx, p.ID, f)
			return err
		})
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replay queued as River job %d\n", jobID)
		return nil
	}
	return fmt.Errorf("%w: unknown webhook command %q", errUsage, sub)
}
