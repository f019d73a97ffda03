package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"

	"golang.org/x/term"
)

// Exit codes, documented in the top-level --help.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitVerify      = 3
	exitInterrupted = 130
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "0.1.0-dev"

// command is one subcommand. Each lives in its own cmd_<name>.go and registers itself in init.
type command struct {
	name    string
	summary string // one line for the command list
	usage   string // full help text after the "usage:" line; flags are appended
	run     func(ctx context.Context, app *app, args []string) error
	// flags, when set, declares the command's flags on fs; it lets --help list them before run.
}

var commands = map[string]*command{}

func register(c *command) {
	if _, dup := commands[c.name]; dup {
		panic("rws: command registered twice: " + c.name)
	}
	commands[c.name] = c
}

// app carries what a command needs from its environment, so tests can run commands in-process.
type app struct {
	stdout, stderr io.Writer
	stdin          io.Reader
	quiet          bool // set by a command's --quiet flag via app.flagSet
	terminal       bool // stderr is a terminal: progress may be drawn
}

func newApp() *app {
	return &app{
		stdout:   os.Stdout,
		stderr:   os.Stderr,
		stdin:    os.Stdin,
		terminal: term.IsTerminal(int(os.Stderr.Fd())),
	}
}

// json prints v as indented JSON on stdout.
func (a *app) json(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printf writes to stdout.
func (a *app) printf(format string, args ...any) {
	fmt.Fprintf(a.stdout, format, args...)
}

// logf writes a diagnostic line to stderr unless --quiet.
func (a *app) logf(format string, args ...any) {
	if a.quiet {
		return
	}
	fmt.Fprintf(a.stderr, format, args...)
}

// progress returns a function that redraws one status line on a terminal, and does nothing when
// stderr is not a terminal or --quiet is set. Call done() to end the line.
func (a *app) progress() (update func(format string, args ...any), done func()) {
	if a.quiet || !a.terminal {
		return func(string, ...any) {}, func() {}
	}
	drawn := false
	update = func(format string, args ...any) {
		fmt.Fprintf(a.stderr, "\r\033[K"+format, args...)
		drawn = true
	}
	done = func() {
		if drawn {
			fmt.Fprint(a.stderr, "\r\033[K")
		}
	}
	return update, done
}

// flagSet makes the flag set of c. It always has --help and --quiet; parse it with a.parse.
func (a *app) flagSet(c *command) *flag.FlagSet {
	fs := flag.NewFlagSet("rws "+c.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.BoolVar(&a.quiet, "quiet", false, "no progress or diagnostics on stderr")
	fs.Usage = func() {}
	return fs
}

// errHelp is returned by parse when --help was asked; the command returns it and exits 0.
var errHelp = errors.New("help requested")

// parse parses args with flags and positionals in any order ("--" ends flags) and returns the
// positionals. On --help it prints the command's help and returns errHelp.
func (a *app) parse(c *command, fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				a.help(c, fs)
				return nil, errHelp
			}
			return nil, usagef("%v", err)
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if len(args) > 0 && len(rest) < len(args) && args[len(args)-len(rest)-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, nil
}

// help prints c's usage and flags to stdout.
func (a *app) help(c *command, fs *flag.FlagSet) {
	fmt.Fprintf(a.stdout, "usage: %s\n", strings.TrimSpace(c.usage))
	if c.summary != "" {
		fmt.Fprintf(a.stdout, "\n%s\n", c.summary)
	}
	if fs != nil {
		fmt.Fprintf(a.stdout, "\nflags:\n")
		fs.SetOutput(a.stdout)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
	}
	fmt.Fprint(a.stdout, exitCodeHelp)
}

const exitCodeHelp = `
exit codes: 0 ok, 1 error, 2 usage, 3 verification failed, 130 interrupted
`

// usageError marks a bad command line (exit 2).
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// hintError carries a suggestion printed as "rws: hint: …" after the error.
type hintError struct {
	err  error
	hint string
}

func (e *hintError) Error() string { return e.err.Error() }
func (e *hintError) Unwrap() error { return e.err }

func withHint(err error, hint string) error {
	if err == nil {
		return nil
	}
	return &hintError{err: err, hint: hint}
}

// errVerify marks a verification failure (exit 3); wrap it: fmt.Errorf("%w: …", errVerify).
var errVerify = errors.New("verification failed")

// exitCode maps an error from a command to the process exit code.
func exitCode(ctx context.Context, err error) int {
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case ctx.Err() != nil || errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, errVerify):
		return exitVerify
	default:
		return exitError
	}
}

// report prints err as "rws: error: …" with its hint, if any.
func (a *app) report(err error) {
	if err == nil || errors.Is(err, errHelp) {
		return
	}
	fmt.Fprintf(a.stderr, "rws: error: %v\n", err)
	var he *hintError
	if errors.As(err, &he) {
		fmt.Fprintf(a.stderr, "rws: hint: %s\n", he.hint)
	}
	var ue *usageError
	if errors.As(err, &ue) {
		fmt.Fprintf(a.stderr, "rws: hint: run 'rws help' or 'rws COMMAND --help'\n")
	}
}

// runMain runs the command line args (without the program name) and returns the exit code.
func runMain(ctx context.Context, a *app, args []string) int {
	if len(args) == 0 {
		a.topHelp(a.stderr)
		return exitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		if len(args) > 1 {
			if c, ok := commands[args[1]]; ok {
				return runMain(ctx, a, []string{c.name, "--help"})
			}
		}
		a.topHelp(a.stdout)
		return exitOK
	case "--version", "-version", "version":
		fmt.Fprintf(a.stdout, "rws %s\n", version)
		return exitOK
	}
	c, ok := commands[args[0]]
	if !ok {
		err := usagef("unknown command %q", args[0])
		a.report(err)
		return exitUsage
	}
	err := c.run(ctx, a, args[1:])
	if ctx.Err() != nil && err != nil {
		err = fmt.Errorf("interrupted: %w", err)
	}
	a.report(err)
	return exitCode(ctx, err)
}

func (a *app) topHelp(w io.Writer) {
	fmt.Fprintf(w, "rws %s: robust weight signatures for image classifiers\n\nusage: rws COMMAND [flags] [args]\n\ncommands:\n", version)
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-13s %s\n", n, commands[n].summary)
	}
	fmt.Fprintf(w, "\nrun 'rws COMMAND --help' for a command's flags; --version prints the version.\n")
	fmt.Fprint(w, exitCodeHelp)
}
