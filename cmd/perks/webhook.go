package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"
	"github.com/uptrace/bun"

	"github.com/perkshq/perks/internal/app"
	"github.com/perkshq/perks/internal/webhook"
)

const webhookUsage = `Usage: perks webhook <command> --partner SLUG [flags]

Commands:
  list        list the partner's endpoints
  add         add an endpoint: --url URL [--events user.created,...] [--description TEXT] [--disabled]
              (prints the signing secret, once)
  rotate      new signing secret: --id ID [--grace 24h] (the old one keeps signing during the grace)
  enable      --id ID
  disable     --id ID
  delete      --id ID (with its delivery log)
  deliveries  the delivery log: [--event ID] [--endpoint ID] [--status failed] [--limit 50]
  replay      --event ID [--endpoint ID]: re-send one event now
              --from RFC3339 --to RFC3339 [--status failed] [--endpoint ID]: re-send a window (River job)
`

// runWebhook manages webhook endpoints and deliveries with the same service
// methods as the REST API. It builds the app without workers: jobs it
// inserts (replays) are worked by the running servers.
func runWebhook(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, webhookUsage)
		return errUsage
	}
	sub := args[0]
	fs := flag.NewFlagSet("webhook "+sub, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, webhookUsage) }
	slug := fs.String("partner", "", "partner slug (required)")
	id := fs.String("id", "", "endpoint id")
	url := fs.String("url", "", "endpoint URL")
	events := fs.String("events", "", "comma-separated event types (default: every type)")
	description := fs.String("description", "", "endpoint description")
	disabled := fs.Bool("disabled", false, "create the endpoint disabled")
	grace := fs.Duration("grace", webhook.DefaultGracePeriod, "how long the previous secret keeps signing")
	eventID := fs.String("event", "", "event id")
	endpointID := fs.String("endpoint", "", "endpoint id")
	status := fs.String("status", "", "delivery status: pending, succeeded, failed, disabled")
	limit := fs.Int("limit", webhook.DefaultPageSize, "deliveries to show")
	from := fs.String("from", "", "window start (RFC 3339)")
	to := fs.String("to", "", "window end (RFC 3339)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if *slug == "" {
		return errors.New("--partner is required")
	}
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
		u, err := optUUID("id", *id)
		if err != nil {
			return uuid.Nil, err
		}
		if u == nil {
			return uuid.Nil, errors.New("--id is required")
		}
		return *u, nil
	}

	cfg, db, closeDB, err := open(ctx, stderr)
	if err != nil {
		return err
	}
	defer closeDB()
	log := newLogger(stderr, "warn")
	keys, err := app.LoadKeyringFor(ctx, cfg, log, db.Bun)
	if err != nil {
		return err
	}
	cfg.Workers = false
	a, err := app.New(cfg, log, db, keys)
	if err != nil {
		return err
	}
	p, err := a.Partners.BySlug(ctx, db.Bun, *slug)
	if err != nil {
		return fmt.Errorf("partner %s: %w", *slug, err)
	}
	svc := a.Webhooks
	inTx := func(f func(ctx context.Context, tx bun.Tx) error) error { return db.Bun.RunInTx(ctx, nil, f) }

	switch sub {
	case "list":
		eps, err := svc.Endpoints(ctx, db.Bun, p.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tENABLED\tEVENTS\tURL\tDESCRIPTION")
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
		for _, t := range strings.Split(*events, ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
		var ep *webhook.Endpoint
		var secret string
		err := inTx(func(ctx context.Context, tx bun.Tx) error {
			ep, secret, err = svc.CreateEndpoint(ctx, tx, p.ID, webhook.EndpointParams{URL: *url, Description: *description, EventTypes: types, Enabled: !*disabled})
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
			secret, expires, err = svc.RotateSecret(ctx, tx, p.ID, epID, *grace)
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
			ep, err := svc.Endpoint(ctx, tx, p.ID, epID)
			if err != nil {
				return err
			}
			_, _, _, err = svc.PutEndpoint(ctx, tx, p.ID, epID, webhook.EndpointParams{
				URL: ep.URL, Description: ep.Description, EventTypes: ep.EventTypes, Enabled: sub == "enable",
			})
			return err
		})

	case "delete":
		epID, err := needID()
		if err != nil {
			return err
		}
		return svc.DeleteEndpoint(ctx, db.Bun, p.ID, epID)

	case "deliveries":
		f := webhook.DeliveryFilter{Status: *status, Limit: *limit}
		if f.EventID, err = optUUID("event", *eventID); err != nil {
			return err
		}
		if f.EndpointID, err = optUUID("endpoint", *endpointID); err != nil {
			return err
		}
		ds, _, err := svc.Deliveries(ctx, db.Bun, p.ID, f)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "DELIVERY\tEVENT\tTYPE\tENDPOINT\tSTATUS\tATTEMPTS\tLAST")
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
		target, err := optUUID("endpoint", *endpointID)
		if err != nil {
			return err
		}
		if *eventID != "" {
			ev, err := optUUID("event", *eventID)
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
		f := webhook.ReplayFilter{Status: *status, EndpointID: target}
		if f.From, err = time.Parse(time.RFC3339Nano, *from); err != nil {
			return errors.New("--event, or --from and --to (RFC 3339), are required")
		}
		if f.To, err = time.Parse(time.RFC3339Nano, *to); err != nil {
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
	fmt.Fprint(stderr, webhookUsage)
	return errUsage
}
