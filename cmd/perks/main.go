// Command perks is the Perks binary: the server, migrations, demo seed and
// operator tools. main is the only place that exits the process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

type command struct {
	name, summary string
	run           func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"serve", "run the HTTP API and River workers", runServe},
		{"migrate", "apply migrations: migrate [up|down|status]", runMigrate},
		{"seed", "seed the demo partners acme and globex (idempotent)", runSeed},
		{"partner", "partners, their controls and credentials: partner create|list|show|set|credential", runPartner},
		{"key", "consumer token keys: key add|list|disable|enable|rotate", runKey},
		{"token", "development tokens: token mint --partner acme --sub usr_demo_001", runToken},
		{"export", "pull the incremental user export into a file, resumable", runExport},
		{"webhook", "webhook endpoints, deliveries and replays: webhook list --partner acme", runWebhook},
		{"merchant", "merchants and their API credentials: merchant create|list|disable --partner acme", runMerchant},
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: perks <command> [flags]\n\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-8s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun `perks <command> --help` for a command's flags; `perks serve --help` lists the environment.")
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "perks:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		if len(args) == 0 {
			return errUsage
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "perks: unknown command %q\n\n", args[0])
	usage(stderr)
	return errUsage
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	switch strings.ToLower(level) {
	case "debug":
		l = slog.LevelDebug
	case "warn":
		l = slog.LevelWarn
	case "error":
		l = slog.LevelError
	default:
		l = slog.LevelInfo
	}
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l}))
}
