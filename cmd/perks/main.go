// Command perks is the Perks binary: the server, migrations, demo seed and
// operator tools. main is the only place that exits the process.
//
// The command tree is built with github.com/urfave/cli/v3, so every command
// and subcommand parses its own flags, answers --help (and -h, and `help`)
// without running, and refuses unknown flags and stray arguments. Before it,
// a hand-written dispatcher passed `migrate down --help` to the rollback as an
// ignored argument and dropped the database.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"

	"github.com/urfave/cli/v3"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := runner{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, lookupEnv: os.LookupEnv}.run(ctx, os.Args[1:]...)
	stop()
	switch {
	case err == nil:
	case errors.Is(err, errUsage):
		fmt.Fprintln(os.Stderr, "perks:", err)
		os.Exit(2)
	default:
		fmt.Fprintln(os.Stderr, "perks:", err)
		os.Exit(1)
	}
}

// errUsage marks a command line that does not parse (unknown command, flag
// or argument, missing subcommand): exit status 2.
var errUsage = errors.New("usage")

// version is set at build time (go build -ldflags "-X main.version=v1.2.3");
// otherwise it comes from the module's build information.
var version = ""

// buildVersion is the version `perks --version` prints: the ldflags value,
// else the main module's version, else the VCS revision Go stamped into the
// binary, else "devel".
func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "-dirty"
			}
		}
	}
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "devel-" + rev + dirty
	}
	return "devel"
}

// newApp builds the command tree for one command line of r.
func newApp(r runner) *cli.Command {
	root := &cli.Command{
		Name:    "perks",
		Usage:   "the Perks loyalty engine: server, migrations and operator tools",
		Version: buildVersion(),
		Description: "Configuration comes from the environment (`perks serve --help` lists it).\n" +
			"Operator commands take the partner as --partner SLUG; lists print a table, or JSON with --json.",
		Reader: r.stdin, Writer: r.stdout, ErrWriter: r.stderr,
		Metadata: map[string]any{envMetadata: r.lookup(), waitMetadata: r.wait, nowMetadata: r.now},
		Commands: []*cli.Command{
			serveCommand(),
			migrateCommand(),
			seedCommand(),
			withSub(partnerCommand(), partnerStatusCommands()...),
			keyCommand(),
			tokenCommand(),
			exportCommand(r.lookup()),
			webhookCommand(),
			merchantCommand(),
			portalCommand(),
			adminCommand(),
			jobsCommand(),
			doctorCommand(),
		},
		// urfave/cli must never exit the process: main decides.
		ExitErrHandler: func(context.Context, *cli.Command, error) {},
	}
	root.Action = groupAction
	setup(root)
	return root
}

// setup walks the tree: usage errors (bad flags) become errUsage, groups
// without an action refuse a missing or unknown subcommand, and leaves
// refuse positional arguments they do not take.
func setup(cmd *cli.Command) {
	cmd.OnUsageError = func(_ context.Context, _ *cli.Command, err error, _ bool) error {
		return fmt.Errorf("%w: %v (see --help)", errUsage, err)
	}
	if len(cmd.Commands) > 0 {
		if cmd.Action == nil {
			cmd.Action = groupAction
		}
		for _, c := range cmd.Commands {
			setup(c)
		}
		return
	}
	if act := cmd.Action; act != nil && cmd.ArgsUsage == "" {
		cmd.Action = func(ctx context.Context, c *cli.Command) error {
			if c.Args().Present() {
				return fmt.Errorf("%w: unexpected argument %q to `%s` (see --help)", errUsage, c.Args().First(), c.FullName())
			}
			return act(ctx, c)
		}
	}
}

// groupAction answers a group command run without a (known) subcommand:
// its help on stdout and a usage error.
func groupAction(_ context.Context, cmd *cli.Command) error {
	if cmd.Root() == cmd {
		_ = cli.ShowRootCommandHelp(cmd)
	} else {
		_ = cli.ShowSubcommandHelp(cmd)
	}
	if cmd.Args().Present() {
		return fmt.Errorf("%w: unknown command %q for `%s`", errUsage, cmd.Args().First(), cmd.FullName())
	}
	return fmt.Errorf("%w: `%s` needs a subcommand", errUsage, cmd.FullName())
}

// Shared flags, spelled the same everywhere.
func partnerFlag() cli.Flag {
	return &cli.StringFlag{Name: "partner", Usage: "partner `SLUG`"}
}

func jsonFlag() cli.Flag {
	return &cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}
}

// requirePartner returns the --partner flag or the error every command
// gives without it.
func requirePartner(cmd *cli.Command) (string, error) {
	if s := cmd.String("partner"); s != "" {
		return s, nil
	}
	return "", errors.New("--partner is required")
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
