package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/rws-project/rws/experiment"
	"github.com/rws-project/rws/report"
)

func init() {
	register(&command{
		name:    "demo",
		summary: "run the whole robust-weight-signature study on MNIST and MNIST-C and write a report",
		usage: `rws demo [--config FILE] [--quick] [-o DIR] [--force] [--json]
       rws demo --print-config

Trains θ0, θ_std and one robust model per corruption, extracts their signatures, and measures
patching, the paper's observations, scaling and exact removal, composition, transfer to an
updated backbone and to Fashion-MNIST (when installed), and size against accuracy. DIR receives
report.md, report.html (self-contained), results.json, plots/, models/ and signatures/.
The default study takes about a quarter of an hour on two cores; --quick a few minutes.
Trained models are cached in DIR/models by content: rerunning with --force into the same DIR
retrains only the models whose settings, data or parent changed.`,
		run: runDemo,
	})
}

type demoOptions struct {
	config      string
	quick       bool
	out         string
	force       bool
	json        bool
	printConfig bool
}

func runDemo(ctx context.Context, a *app, args []string) error {
	c := commands["demo"]
	fs := a.flagSet(c)
	var o demoOptions
	fs.StringVar(&o.config, "config", "", "study configuration (TOML) on top of the default one (see --print-config)")
	fs.BoolVar(&o.quick, "quick", false, "the configuration's [quick] variant: fewer corruptions, smaller data (a few minutes)")
	fs.StringVar(&o.out, "o", "rws-demo", "output folder")
	fs.BoolVar(&o.force, "force", false, "write into an output folder that is not empty (its cached models are reused)")
	fs.BoolVar(&o.json, "json", false, "print a JSON summary on stdout: {dir, seconds, summary, patching, targets}")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the default configuration (with its comments) and exit")
	pos, err := a.parse(c, fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("demo: unexpected argument %q", pos[0])
	}
	if o.printConfig {
		a.printf("%s", experiment.DefaultTOML())
		return nil
	}
	cfg, err := experiment.Load(o.config, o.quick)
	if err != nil {
		return withHint(err, "rws demo --print-config shows every key with its meaning")
	}
	update, done := a.progress()
	opts := experiment.Options{
		Dir:   o.out,
		Force: o.force,
		Quick: o.quick,
		Log: func(line string) {
			done()
			a.logf("rws: %s\n", line)
		},
		Progress: func(line string) { update("%s", line) },
	}
	a.logf("rws: study %q: %d corruptions, output in %s\n", cfg.Name, len(cfg.Corruptions), o.out)
	res, err := experiment.Run(ctx, cfg, opts)
	done()
	if errors.Is(err, experiment.ErrExists) {
		return withHint(err, fmt.Sprintf("add --force to reuse %s (models with unchanged settings are not retrained), or name another folder with -o", o.out))
	}
	if err != nil {
		return err
	}
	if err := report.Write(o.out, res); err != nil {
		return err
	}
	if o.json {
		return a.json(struct {
			Dir      string                  `json:"dir"`
			Report   string                  `json:"report"`
			Seconds  float64                 `json:"seconds"`
			Summary  experiment.PatchSummary `json:"summary"`
			Patching []experiment.Patching   `json:"patching"`
			Targets  []experiment.Target     `json:"targets"`
		}{o.out, filepath.Join(o.out, "report.html"), res.Seconds, res.Summary, res.Patching, res.Targets})
	}
	printDemoSummary(a, o.out, res)
	return nil
}

func printDemoSummary(a *app, dir string, res *experiment.Results) {
	s := res.Summary
	a.printf("study %q: %d corruptions in %.0f s (%.1f min)\n", res.Config.Name, len(res.Patching), res.Seconds, res.Seconds/60)
	a.printf("θ_std clean %.1f %%; mean over corruptions: θ_std %.1f %%, θ_std + RWS %.1f %%, θ_c %.1f %%\n",
		100*s.StdClean, 100*s.MeanStd, 100*s.MeanPatched, 100*s.MeanRobust)
	a.printf("gap closed: mean %.3f, non-geometric %.3f, geometric %.3f; patched clean drop: mean %.2f pt, max %.2f ± %.2f pt\n",
		s.MeanGapClosed, s.MeanGapClosedNonGeometric, s.MeanGapClosedGeometric, s.MeanCleanDrop, s.MaxCleanDrop, s.MaxCleanDropSE)
	met := 0
	for _, t := range res.Targets {
		if t.Met {
			met++
		}
	}
	a.printf("claims: %d of %d hold\n", met, len(res.Targets))
	for _, t := range res.Targets {
		mark := "ok  "
		if !t.Met {
			mark = "FAIL"
		}
		a.printf("  %s %s: %s (target %s)\n", mark, t.Claim, t.Shown, t.Want)
	}
	a.printf("report: %s\n", filepath.Join(dir, "report.html"))
}
